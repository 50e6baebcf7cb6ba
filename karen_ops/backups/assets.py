"""The nightly logical backup and its verification restore, as daily-partitioned assets."""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from karen_ops.backups.checks import CHECK_SPECS, check_results
from karen_ops.backups.dump import BackupRequest, take_backup
from karen_ops.backups.manifest import Manifest, recorded_manifest
from karen_ops.backups.partitions import (
    backup_target,
    daily_dimension,
    require_recent_partition,
)
from karen_ops.backups.verify import Verification, VerifyRequest, verify_backup
from karen_ops.failures import expected_failures
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.store import BackupStore, BackupStoreResource
from karen_ops.resources.store.catalog import mark_verified
from karen_ops.settings import FleetDatabase

GROUP = "backups"
OWNERS = ["team:platform-ops"]


def build_backup_assets(
    partitions: dg.PartitionsDefinition, fleet: tuple[FleetDatabase, ...] = ()
) -> list[dg.AssetsDefinition]:
    """The backup and its verification, per day, and per database when there is a fleet."""
    days = daily_dimension(partitions)

    @dg.asset(
        partitions_def=partitions,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"postgres"},
        description="A custom-format pg_dump of the AI Karen database, zstd-compressed, with "
        "a manifest of its SHA-256 and the exact row counts of its snapshot.",
    )
    def postgres_backup(
        context: dg.AssetExecutionContext,
        postgres: PostgresResource,
        backup_store: BackupStoreResource,
    ) -> dg.MaterializeResult:
        target = backup_target(partitions, context.partition_key, fleet)
        with expected_failures():
            store = backup_store.open()
            require_recent_partition(days, target.day, datetime.now(UTC))
            request = BackupRequest(
                source=postgres.source(target.database),
                store=store,
                partition=target.day,
                bin_dir=postgres.bin_dir(),
                lock_wait_timeout_seconds=postgres.lock_wait_timeout_seconds,
                label=target.database.name if target.database else None,
            )
            manifest = take_backup(request, context.log)
        return dg.MaterializeResult(metadata=backup_metadata(manifest, store))

    @dg.asset(
        partitions_def=partitions,
        deps=[postgres_backup],
        check_specs=CHECK_SPECS,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"postgres"},
        description="The day's newest backup restored into a scratch database and compared "
        "with its manifest: checksum, restore, exact row counts, sequences, large objects.",
    )
    def backup_verification(
        context: dg.AssetExecutionContext,
        postgres: PostgresResource,
        backup_store: BackupStoreResource,
    ) -> Iterator[dg.MaterializeResult]:
        target = backup_target(partitions, context.partition_key, fleet)
        with expected_failures():
            store = backup_store.open()
            source = postgres.source(target.database)
            name = target.database.name if target.database else source.dbname
            backup_id = _recorded_backup_id(
                context.instance, postgres_backup.key, context.partition_key
            )
            request = VerifyRequest(
                manifest=recorded_manifest(store, name, target.day, backup_id),
                store=store,
                source=source,
                verify_server=postgres.verify_server(target.database),
                bin_dir=postgres.bin_dir(),
                jobs=postgres.restore_jobs,
            )
            result = verify_backup(request, context.log)
        checks = check_results(result)
        if all(check.passed for check in checks):
            # Retention keeps verified restore points; the mark lives beside the backup.
            mark_verified(store, result.manifest.folder, verification_record(result, context))
        yield dg.MaterializeResult(
            metadata=verification_metadata(result, store), check_results=checks
        )

    return [postgres_backup, backup_verification]


def _recorded_backup_id(
    instance: dg.DagsterInstance, backup: dg.AssetKey, partition_key: str
) -> str | None:
    """The backup id of the partition's newest postgres_backup materialization, if any."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=backup, asset_partitions=[partition_key]),
        limit=1,
    ).records
    if not records:
        return None
    recorded = records[0].asset_materialization.metadata.get("backup_id")
    return str(recorded.value) if recorded is not None else None


def backup_metadata(manifest: Manifest, store: BackupStore) -> dict[str, object]:
    seconds = max(manifest.duration_seconds, 0.001)
    return {
        "database": manifest.database,
        "location": dg.MetadataValue.url(store.location(manifest.archive_key)),
        "backup_id": manifest.backup_id,
        "size_bytes": dg.MetadataValue.int(manifest.size_bytes),
        "size": _human_bytes(manifest.size_bytes),
        "sha256": manifest.sha256,
        "duration_seconds": dg.MetadataValue.float(manifest.duration_seconds),
        "throughput_mb_per_s": round(manifest.dump_bytes / seconds / 1e6, 1),
        "compression_ratio": round(manifest.dump_bytes / max(manifest.size_bytes, 1), 2),
        "tables": len(manifest.inventory.row_counts),
        "rows": manifest.inventory.total_rows,
        "row_counts": dg.MetadataValue.md(_counts_table(manifest.inventory.row_counts)),
        "server_version": manifest.server_version,
        "pg_dump_version": manifest.pg_dump_version,
    }


def verification_metadata(result: Verification, store: BackupStore) -> dict[str, object]:
    manifest = result.manifest
    metadata: dict[str, object] = {
        "backup_id": manifest.backup_id,
        "location": dg.MetadataValue.url(store.location(manifest.archive_key)),
        "verified": result.checksum_ok and result.restore_ok,
        "scratch_database": result.scratch_database or "none",
        "pg_restore_version": result.pg_restore_version or "not run",
    }
    for phase, seconds in result.seconds.items():
        metadata[f"{phase}_seconds"] = dg.MetadataValue.float(seconds)
    if result.restored is not None:
        metadata["tables_verified"] = len(result.restored.row_counts)
        metadata["rows_verified"] = result.restored.total_rows
    return metadata


def verification_record(result: Verification, context: dg.AssetExecutionContext) -> dict:
    return {
        "verified_at": datetime.now(UTC).isoformat(),
        "run_id": context.run.run_id,
        "pg_restore_version": result.pg_restore_version,
        "rows_verified": result.restored.total_rows if result.restored else 0,
    }


def _counts_table(row_counts: dict[str, int]) -> str:
    lines = ["| table | rows |", "|---|---:|"]
    lines += [f"| {table} | {count:,} |" for table, count in sorted(row_counts.items())]
    return "\n".join(lines)


def _human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
