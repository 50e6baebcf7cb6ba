"""postgres_base_backup, wal_archive and pitr_drill as Dagster assets with blocking checks."""

import math
import os
import shutil
import tempfile
from pathlib import Path

import dagster as dg

from karen_ops import settings
from karen_ops.failures import expected_failures
from karen_ops.pitr.basebackup import BaseBackupRequest, take_base_backup
from karen_ops.pitr.basemanifest import newest_base_backup
from karen_ops.pitr.continuity import describe_missing
from karen_ops.pitr.drill import DrillRequest, run_drill
from karen_ops.pitr.resource import PitrResource
from karen_ops.pitr.status import ArchiveStatus, archive_status
from karen_ops.pitr.unpack import VerifyOutcome, unpack_base_backup, verify_unpacked
from karen_ops.resources.postgres import PostgresResource, connect
from karen_ops.resources.store import BackupStoreResource
from karen_ops.resources.store.catalog import mark_verified

GROUP = "pitr"
OWNERS = ["team:platform-ops"]
ERROR = dg.AssetCheckSeverity.ERROR


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres"},
    check_specs=[dg.AssetCheckSpec("base_backup_verified", asset="postgres_base_backup")],
    description="A physical base backup (pg_basebackup) streamed into the store with a "
    "manifest of its WAL range and SHA-256, unpacked again and checked with pg_verifybackup.",
)
def postgres_base_backup(
    context: dg.AssetExecutionContext,
    postgres: PostgresResource,
    backup_store: BackupStoreResource,
    pitr: PitrResource,
) -> dg.MaterializeResult:
    with expected_failures():
        store = backup_store.open()
        request = BaseBackupRequest(
            postgres.source(), store, pitr.cluster_name(), postgres.bin_dir(), pitr.fast_checkpoint
        )
        manifest = take_base_backup(request, context.log)
        folder = Path(tempfile.mkdtemp(prefix="karen-base-verify-", dir=pitr.drill_work_dir))
        try:
            unpack_base_backup(store, manifest, folder / "data")
            verification = verify_unpacked(folder / "data", manifest, postgres.bin_dir())
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if verification.outcome is VerifyOutcome.PASSED:
        mark_verified(store, manifest.folder, {"pg_verifybackup": verification.tool})
    check = dg.AssetCheckResult(
        check_name="base_backup_verified",
        passed=verification.outcome is not VerifyOutcome.FAILED,
        severity=ERROR
        if verification.outcome is VerifyOutcome.FAILED
        else dg.AssetCheckSeverity.WARN,
        description=None
        if verification.outcome is not VerifyOutcome.FAILED
        else (
            f"pg_verifybackup {verification.tool} found base backup {manifest.backup_id} "
            f"differing from PostgreSQL's manifest: {verification.detail[:500]}; it cannot be "
            "trusted for a restore: materialize postgres_base_backup again, and check the "
            "backup store's disk if the next one differs too"
        ),
        metadata={"outcome": verification.outcome.value, "detail": verification.detail[:2000]},
    )
    return dg.MaterializeResult(
        metadata={
            "backup_id": manifest.backup_id,
            "location": dg.MetadataValue.url(store.location(manifest.archive_key)),
            "size_bytes": dg.MetadataValue.int(manifest.size_bytes),
            "sha256": manifest.sha256,
            "start_lsn": manifest.start_lsn,
            "end_lsn": manifest.end_lsn,
            "timeline": manifest.timeline,
            "duration_seconds": dg.MetadataValue.float(manifest.duration_seconds),
            "pg_verifybackup": verification.outcome.value,
        },
        check_results=[check],
    )


def build_wal_archive(hourly: dg.HourlyPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=hourly,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"postgres"},
        deps=[postgres_base_backup],
        check_specs=[
            dg.AssetCheckSpec("wal_archive_continuous", asset="wal_archive"),
            dg.AssetCheckSpec("archive_lag_within_hour", asset="wal_archive"),
        ],
        description="Every WAL segment from the newest base backup's start to now is in the "
        "store (across timeline changes); an idle server's segment is switched out first.",
    )
    def wal_archive(
        context: dg.AssetExecutionContext,
        postgres: PostgresResource,
        backup_store: BackupStoreResource,
        pitr: PitrResource,
    ) -> dg.MaterializeResult:
        with expected_failures():
            store = backup_store.open()
            base = newest_base_backup(store, pitr.cluster_name())
            with connect(postgres.source(), setting=settings.DATABASE_URL, autocommit=True) as conn:
                status = archive_status(
                    conn,
                    store,
                    pitr.cluster_name(),
                    base,
                    idle_seconds=pitr.idle_switch_seconds,
                    wait_seconds=60,
                    log=context.log,
                )
        continuity = status.continuity
        lag = status.lag_seconds
        checks = [
            dg.AssetCheckResult(
                check_name="wal_archive_continuous",
                passed=continuity.continuous,
                severity=ERROR,
                description=None
                if continuity.continuous
                else (
                    f"{len(continuity.missing)} WAL segment(s) missing from the archive after "
                    f"base backup {base.backup_id}: {describe_missing(continuity.missing)}"
                ),
                metadata={
                    "missing_segments": len(continuity.missing),
                    "missing": ", ".join(continuity.missing[:50]) or "none",
                    "first_segment": continuity.first_segment,
                    "last_segment": continuity.last_segment,
                },
            ),
            dg.AssetCheckResult(
                check_name="archive_lag_within_hour",
                passed=lag <= pitr.max_lag_seconds,
                severity=ERROR,
                description=_lag_description(status, pitr.max_lag_seconds),
                metadata={
                    "lag_seconds": dg.MetadataValue.float(lag if math.isfinite(lag) else -1.0),
                    "lag_segments": status.lag_segments,
                },
            ),
        ]
        return dg.MaterializeResult(
            metadata={
                "base_backup_id": base.backup_id,
                "segments_checked": continuity.segments_checked,
                "timelines": ", ".join(str(t) for t in continuity.timelines),
                "newest_archived": status.newest_archived or "none",
                "switched_segment": status.switched_segment or "none",
                "archive_lag_seconds": dg.MetadataValue.float(lag if math.isfinite(lag) else -1.0),
            },
            check_results=checks,
        )

    return wal_archive


def _lag_description(status: ArchiveStatus, limit_seconds: float) -> str | None:
    """What a failed archive_lag_within_hour saw and where to look; None when it passed."""
    if status.lag_seconds <= limit_seconds:
        return None
    if math.isfinite(status.lag_seconds):
        waited = f"the server last archived a segment {_span(status.lag_seconds)} ago"
    else:
        waited = "the server has not archived a segment since its statistics were reset"
    return (
        f"WAL archiving is behind: {status.lag_segments} completed segment(s) are not in the "
        f"archive and {waited}, over the limit of {_span(limit_seconds)}; newest archived: "
        f"{status.newest_archived or 'none'}. A restore would lose the changes since then: "
        "see pg_stat_archiver (last_failed_wal) and the server log for why archive_command "
        "('karen-ops wal-push %p') fails"
    )


def _span(seconds: float) -> str:
    return f"{seconds:.0f} seconds" if seconds < 120 else f"{seconds / 60:.0f} minutes"


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres"},
    deps=[postgres_base_backup],
    check_specs=[dg.AssetCheckSpec("recovered_row_counts_match", asset="pitr_drill")],
    description="The newest base backup plus archived WAL recovered in a private temporary "
    "server to the nightly dump's snapshot position; its row counts must equal the dump's. "
    "rto_seconds and rpo_seconds are plotted over time.",
)
def pitr_drill(
    context: dg.AssetExecutionContext,
    postgres: PostgresResource,
    backup_store: BackupStoreResource,
    pitr: PitrResource,
) -> dg.MaterializeResult:
    with expected_failures():
        store = backup_store.open()
        request = DrillRequest(
            store=store,
            cluster=pitr.cluster_name(),
            source=postgres.source(),
            karen_ops_command=pitr.command(),
            env=drill_environment(backup_store, store.url, pitr.cluster_name()),
            os_user=pitr.os_user(),
            bin_dir=postgres.bin_dir(),
            work_dir=pitr.drill_work_dir,
            timeout_seconds=pitr.drill_timeout_seconds,
        )
        result = run_drill(request, context.log)
    mismatches = result.mismatches
    check = dg.AssetCheckResult(
        check_name="recovered_row_counts_match",
        passed=not mismatches,
        severity=ERROR,
        description=None
        if not mismatches
        else "; ".join(
            f"{table}: {expected} in the dump, {found} recovered"
            for table, (expected, found) in sorted(mismatches.items())[:20]
        ),
        metadata={"tables": len(result.expected), "mismatched_tables": len(mismatches)},
    )
    return dg.MaterializeResult(
        metadata={
            "rto_seconds": dg.MetadataValue.float(result.rto_seconds),
            "rpo_seconds": dg.MetadataValue.float(result.rpo_seconds or 0.0),
            "target_lsn": result.target_lsn,
            "replayed_lsn": result.replayed_lsn,
            "base_backup_id": result.base_backup_id,
            "logical_backup_id": result.logical_backup_id,
            "rows_recovered": sum(v or 0 for v in result.recovered.values()),
        },
        check_results=[check],
    )


def drill_environment(resource: BackupStoreResource, url: str, cluster: str) -> dict[str, str]:
    """The drill server's environment: its wal-fetch must open the same store as this run."""
    env = {**os.environ, settings.BACKUP_URL: url, "KAREN_PITR_CLUSTER": cluster}
    if resource.s3_endpoint_url:
        env[settings.S3_ENDPOINT_URL] = resource.s3_endpoint_url
    if resource.encryption_key:
        env["KAREN_BACKUP_ENCRYPTION_KEY"] = resource.encryption_key
    return env
