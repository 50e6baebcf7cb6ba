"""The three file archives as partitioned assets: configuration, application and logs."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import dagster as dg

from karen_ops.archives.archive import ArchiveRequest, ArchiveResult, take_verified_archive
from karen_ops.archives.checks import CHECK_SPECS, secrets_are_encrypted
from karen_ops.archives.collect import Selection, select_paths, select_rotated_logs
from karen_ops.archives.config import SECTION, ArchiveSettings, load_archive_settings
from karen_ops.archives.logs import remove_archived_logs
from karen_ops.archives.manifest import ArchiveKind
from karen_ops.archives.metadata import (
    archive_metadata,
    nothing_to_archive_metadata,
    removal_metadata,
)
from karen_ops.archives.partitions import require_recent_partition
from karen_ops.failures import expected_failures
from karen_ops.resources.store import BackupStore, BackupStoreResource

GROUP = "file_archives"
OWNERS = ["team:platform-ops"]


def build_archive_assets(
    daily: dg.DailyPartitionsDefinition, weekly: dg.WeeklyPartitionsDefinition
) -> list[dg.AssetsDefinition]:
    @dg.asset(
        partitions_def=daily,
        check_specs=CHECK_SPECS,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"tar"},
        description="The host's configuration (the app's .env, nginx site, systemd units, TLS "
        "certificate) as a zstd-compressed tar with a manifest, read back and verified.",
    )
    def config_backup(
        context: dg.AssetExecutionContext, backup_store: BackupStoreResource
    ) -> Iterator[dg.MaterializeResult]:
        store = backup_store.open()
        config, selection = _select(context, daily, ArchiveKind.CONFIG, _config_selection)
        result = _take(context, store, ArchiveKind.CONFIG, config, selection)
        paths = [str(entry["path"]) for entry in result.manifest.files]
        check = secrets_are_encrypted(paths, config.secret_files, encrypted=store.encrypted)
        yield dg.MaterializeResult(metadata=archive_metadata(result, store), check_results=[check])

    @dg.asset(
        partitions_def=weekly,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"tar"},
        description="The application folder without virtual environments, node_modules, "
        "caches and version-control data, as a verified zstd-compressed tar.",
    )
    def application_backup(
        context: dg.AssetExecutionContext, backup_store: BackupStoreResource
    ) -> dg.MaterializeResult:
        store = backup_store.open()
        config, selection = _select(context, weekly, ArchiveKind.APPLICATION, _app_selection)
        result = _take(context, store, ArchiveKind.APPLICATION, config, selection)
        return dg.MaterializeResult(metadata=archive_metadata(result, store))

    @dg.asset(
        partitions_def=weekly,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"tar"},
        description="Rotated logs shipped to the store as a verified zstd-compressed tar; "
        "the local copies are removed only once the stored archive has been read back.",
    )
    def log_archive(
        context: dg.AssetExecutionContext, backup_store: BackupStoreResource
    ) -> dg.MaterializeResult:
        store = backup_store.open()
        config, selection = _select(context, weekly, ArchiveKind.LOGS, _log_selection)
        if not selection.sources:
            context.log.info("no rotated logs to archive; nothing stored")
            return dg.MaterializeResult(metadata=nothing_to_archive_metadata(selection.missing))
        metadata: dict[str, object] = {}
        # Security logs go to an archive of their own: retention keeps them for a year.
        for kind, part in _split_security_logs(selection):
            result = _take(context, store, kind, config, part)
            removal = remove_archived_logs(result.files, result.read_back, context.log)
            prefix = "" if kind is ArchiveKind.LOGS else f"{kind.value}_"
            shown = {**archive_metadata(result, store), **removal_metadata(removal)}
            metadata.update({prefix + key: value for key, value in shown.items()})
        return dg.MaterializeResult(metadata=metadata)

    return [config_backup, application_backup, log_archive]


def _split_security_logs(selection: Selection) -> list[tuple[ArchiveKind, Selection]]:
    security = [s for s in selection.sources if s.path.name.startswith("security")]
    others = [s for s in selection.sources if not s.path.name.startswith("security")]
    parts = [
        (ArchiveKind.LOGS, Selection(others, selection.missing, selection.excluded)),
        (ArchiveKind.SECURITY_LOGS, Selection(security, [], [])),
    ]
    return [(kind, part) for kind, part in parts if part.sources]


def _config_selection(config: ArchiveSettings) -> Selection:
    return select_paths(config.config_paths, setting=f"{SECTION}.config_paths")


def _app_selection(config: ArchiveSettings) -> Selection:
    return select_paths(
        config.application_paths,
        setting=f"{SECTION}.application_paths",
        excludes=config.application_excludes,
        skip_virtualenvs=True,
    )


def _log_selection(config: ArchiveSettings) -> Selection:
    return select_rotated_logs(config.log_paths, config.log_patterns)


_SETTINGS = {
    ArchiveKind.CONFIG: f"{SECTION}.config_paths",
    ArchiveKind.APPLICATION: f"{SECTION}.application_paths",
    ArchiveKind.LOGS: f"{SECTION}.log_paths",
    ArchiveKind.SECURITY_LOGS: f"{SECTION}.log_paths",
}


def _select(
    context: dg.AssetExecutionContext,
    partitions: dg.TimeWindowPartitionsDefinition,
    kind: ArchiveKind,
    select: Callable[[ArchiveSettings], Selection],
) -> tuple[ArchiveSettings, Selection]:
    """The settings of this run and what they select; missing paths logged as warnings."""
    with expected_failures():
        require_recent_partition(partitions, context.partition_key, datetime.now(UTC))
        config = load_archive_settings()
        selection = select(config)
    for path in selection.missing:
        context.log.warning(
            "archive path missing kind=%s path=%s setting=%s", kind.value, path, _SETTINGS[kind]
        )
    return config, selection


def _take(
    context: dg.AssetExecutionContext,
    store: BackupStore,
    kind: ArchiveKind,
    config: ArchiveSettings,
    selection: Selection,
) -> ArchiveResult:
    request = ArchiveRequest(
        kind=kind,
        name=config.name,
        partition=context.partition_key,
        selection=selection,
        store=store,
        setting=_SETTINGS[kind],
        compression_level=config.compression_level,
    )
    with expected_failures():
        result = take_verified_archive(request, context.log)
    for path in result.manifest.vanished:
        context.log.warning("archive path vanished kind=%s path=%s", kind.value, path)
    return result
