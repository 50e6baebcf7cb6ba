"""wal_retention: delete the base backups and WAL that the policy no longer needs, plan first."""

import logging
from datetime import UTC, datetime

import dagster as dg

from karen_ops.pitr.basemanifest import list_base_backups
from karen_ops.pitr.resource import PitrResource
from karen_ops.pitr.retention import (
    BaseBackup,
    WalPlan,
    WalRetentionConfig,
    plan_markdown,
    plan_wal_retention,
    wal_names_in,
)
from karen_ops.pitr.walnames import cluster_prefix
from karen_ops.resources.store import BackupStore, BackupStoreResource
from karen_ops.resources.store.catalog import MANIFEST_NAME

WAL_RETENTION = dg.AssetKey("wal_retention")


def load_base_backups(store: BackupStore, cluster: str) -> list[BaseBackup]:
    return [BaseBackup(entry, manifest) for manifest, entry in list_base_backups(store, cluster)]


def plan_for_store(
    store: BackupStore, cluster: str, config: WalRetentionConfig, now: datetime
) -> tuple[WalPlan, dict[str, list[str]]]:
    """The plan for ``cluster``'s backups in ``store``, and the store keys of each WAL file."""
    wal_keys = wal_names_in(list(store.list_keys(cluster_prefix(cluster))))
    plan = plan_wal_retention(load_base_backups(store, cluster), set(wal_keys), config, now)
    return plan, wal_keys


def apply_plan(
    store: BackupStore, plan: WalPlan, wal_keys: dict[str, list[str]], log: logging.Logger
) -> tuple[int, int]:
    """Delete what the plan deletes: base backups first, then WAL oldest first."""
    for decision in plan.deleting:
        folder = decision.backup.entry.folder
        # The manifest goes first: a folder half deleted is then a leftover, never a backup.
        store.delete(folder + MANIFEST_NAME)
        for key in list(store.list_keys(folder)):
            store.delete(key)
        log.info("deleted base backup folder=%s", folder)
    for name in plan.wal_deleted:
        # Sidecar first: a WAL file without its sidecar is no longer counted as archived.
        for key in sorted(wal_keys[name], key=lambda k: not k.endswith(".json")):
            store.delete(key)
    if plan.wal_deleted:
        log.info(
            "deleted WAL files=%d first=%s last=%s",
            len(plan.wal_deleted),
            plan.wal_deleted[0],
            plan.wal_deleted[-1],
        )
    return len(plan.deleting), len(plan.wal_deleted)


@dg.asset(
    deps=[dg.AssetKey("postgres_base_backup")],
    group_name="pitr",
    owners=["team:platform-ops"],
    kinds={"postgres"},
    description="Base backups and WAL deleted under the retention policy (newest N base "
    "backups or younger than D days, pins, never the newest verified one; WAL from the oldest "
    "kept base backup's start onward), with the reason for every decision.",
)
def wal_retention(
    context: dg.AssetExecutionContext,
    config: WalRetentionConfig,
    backup_store: BackupStoreResource,
    pitr: PitrResource,
) -> dg.MaterializeResult:
    store = backup_store.open()
    plan, wal_keys = plan_for_store(store, pitr.cluster_name(), config, datetime.now(UTC))
    summary = {
        "base_backups_kept": len(plan.decisions) - len(plan.deleting),
        "base_backups_to_delete": len(plan.deleting),
        "wal_files_to_delete": len(plan.wal_deleted),
        "wal_files_kept": plan.wal_kept,
        "wal_cutoff_segment": plan.cutoff_segment or "none",
        "dry_run": config.dry_run,
        "plan": dg.MetadataValue.md(plan_markdown(plan)),
    }
    # The plan is in the event log before the first object is deleted.
    context.log_event(dg.AssetObservation(asset_key=WAL_RETENTION, metadata=summary))
    deleted_bases = deleted_wal = 0
    if not config.dry_run:
        deleted_bases, deleted_wal = apply_plan(store, plan, wal_keys, context.log)
    return dg.MaterializeResult(
        metadata={
            **summary,
            "base_backups_deleted": deleted_bases,
            "wal_files_deleted": deleted_wal,
        }
    )
