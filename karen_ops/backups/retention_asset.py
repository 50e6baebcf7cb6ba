"""backup_retention: delete what the policy no longer needs, after recording the plan."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg

from karen_ops.backups.leftovers import find_leftovers, remove_leftovers
from karen_ops.backups.retention import (
    Action,
    Decision,
    RetentionConfig,
    plan_markdown,
    plan_retention,
    verified_restore_points,
)
from karen_ops.resources.store import BackupStore, BackupStoreResource
from karen_ops.resources.store.catalog import (
    MANIFEST_NAME,
    Catalog,
    CatalogEntry,
    read_catalog,
)

RETENTION = dg.AssetKey("backup_retention")
ENOUGH_RESTORE_POINTS = "verified_restore_points_remain"
# Base backups are kept together with the WAL that recovers them, by wal_retention.
RETAINED_ELSEWHERE = frozenset({"base"})


@dg.asset(
    deps=[dg.AssetKey("backup_verification")],
    group_name="backups",
    owners=["team:platform-ops"],
    check_specs=[
        dg.AssetCheckSpec(
            ENOUGH_RESTORE_POINTS,
            asset=RETENTION,
            blocking=True,
            description="The plan leaves every database enough verified restore points.",
        )
    ],
    description="Backups deleted under the retention policy (daily, weekly and monthly "
    "restore points, age rules per kind, pins), with the reason for every decision.",
)
def backup_retention(
    context: dg.AssetExecutionContext, config: RetentionConfig, backup_store: BackupStoreResource
) -> Iterator[dg.MaterializeResult]:
    store = backup_store.open()
    now = datetime.now(UTC)
    catalog = read_catalog(store)
    decisions = plan_retention(_retained_here(catalog), config, now)
    # A database with an unreadable manifest is left exactly as found, leftovers included: the
    # operator who repairs it sees all that was there, and "nothing was deleted" holds.
    leftovers = find_leftovers(store, now - timedelta(hours=config.incomplete_after_hours))
    leftovers = leftovers.outside(catalog.damaged_scopes)
    points = verified_restore_points(decisions)
    short = [p for p in points if not p.enough(config.min_verified_restore_points)]

    deleting = [d for d in decisions if d.action is Action.DELETE]
    plan = {
        "keep": len(decisions) - len(deleting),
        "delete": len(deleting),
        "leftovers": "; ".join(leftovers.describe()) or "none",
        "held_back": "; ".join(_held_back(catalog)) or "none",
        "dry_run": config.dry_run,
        "plan": dg.MetadataValue.md(plan_markdown(decisions)),
    }
    # The plan is in the event log before the first object is deleted.
    context.log_event(dg.AssetObservation(asset_key=RETENTION, metadata=plan))

    deleted = removed = 0
    if not short and not config.dry_run:
        deleted = _delete(store, deleting, context)
        removed = remove_leftovers(store, leftovers)

    yield dg.MaterializeResult(
        metadata={**plan, "deleted": deleted, "leftovers_removed": removed},
        check_results=[
            dg.AssetCheckResult(
                check_name=ENOUGH_RESTORE_POINTS,
                passed=not short,
                description="; ".join(
                    f"{p.name} would keep {p.after} of {p.before} verified backups "
                    f"(minimum {config.min_verified_restore_points}); nothing was deleted"
                    for p in short
                )
                or None,
                metadata={p.name: f"{p.after} of {p.before}" for p in points},
            )
        ],
    )
    if catalog.unreadable:
        # The run fails so the damage is seen, after every other database's retention ran.
        raise dg.Failure(description="; ".join(_held_back(catalog)), allow_retries=False)


def _retained_here(catalog: Catalog) -> list[CatalogEntry]:
    """Backups this asset decides on: none of a database with an unreadable manifest, since
    its unread backup could be the one the policy must keep."""
    damaged = catalog.damaged_scopes
    return [
        entry
        for entry in catalog.entries
        if entry.kind not in RETAINED_ELSEWHERE
        and not any(entry.folder.startswith(scope) for scope in damaged)
    ]


def _held_back(catalog: Catalog) -> list[str]:
    return [
        f"nothing under {manifest.scope} was deleted: {manifest.describe()}"
        for manifest in catalog.unreadable
    ]


def _delete(store: BackupStore, deleting: list[Decision], context: dg.AssetExecutionContext) -> int:
    for decision in deleting:
        folder = decision.entry.folder
        # The manifest goes first: a folder half deleted is then a leftover, never a backup.
        store.delete(folder + MANIFEST_NAME)
        for key in list(store.list_keys(folder)):
            store.delete(key)
        context.log.info("deleted backup folder=%s created=%s", folder, decision.entry.created_at)
    return len(deleting)
