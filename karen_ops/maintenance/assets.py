"""Weekly maintenance assets: table health, vacuum and reindex, each with its evidence."""

import dagster as dg

from karen_ops.maintenance.evidence import steps_table
from karen_ops.maintenance.health import indexes_markdown, judge, tables_markdown
from karen_ops.maintenance.reindex import reindex_indexes
from karen_ops.maintenance.settings import HealthThresholds, MaintenanceConfig
from karen_ops.maintenance.statements import Outcome
from karen_ops.maintenance.stats import database_xid_age, index_stats, table_stats
from karen_ops.maintenance.vacuum import vacuum_tables
from karen_ops.resources.postgres import PostgresResource, connect
from karen_ops.settings import DATABASE_URL, FleetDatabase

GROUP = "maintenance"
OWNERS = ["team:platform-ops"]
HEALTH = dg.AssetKey("table_health")

_HEALTH_CHECKS = {
    "dead_tuples_within_threshold": "No table is over the dead-tuple threshold (WARN).",
    "no_large_unused_indexes": "No large non-unique index goes unscanned (WARN).",
    "xid_age_within_limit": "No table is near transaction-ID wraparound (ERROR).",
    "no_invalid_indexes": "No index is left invalid by a failed build (ERROR).",
}


def build_maintenance_assets(
    fleet: tuple[FleetDatabase, ...] = (),
) -> list[dg.AssetsDefinition]:
    """The three maintenance assets; with a fleet, one partition per database."""
    partitions = dg.StaticPartitionsDefinition([d.name for d in fleet]) if fleet else None
    by_name = {d.name: d for d in fleet}

    def database(context: dg.AssetExecutionContext) -> FleetDatabase | None:
        return by_name[context.partition_key] if fleet else None

    @dg.asset(
        partitions_def=partitions,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"postgres"},
        check_specs=[
            dg.AssetCheckSpec(n, asset=HEALTH, description=d) for n, d in _HEALTH_CHECKS.items()
        ],
        description="Per table and index: live and dead tuples, estimated bloat, sizes, last "
        "(auto)vacuum and (auto)analyze, index scans, transaction-ID age, invalid indexes.",
    )
    def table_health(
        context: dg.AssetExecutionContext, config: HealthThresholds, postgres: PostgresResource
    ) -> dg.MaterializeResult:
        with connect(
            postgres.source(database(context)), setting=DATABASE_URL, autocommit=True
        ) as conn:
            tables, indexes = table_stats(conn), index_stats(conn)
            xid_age = database_xid_age(conn)

        findings = judge(tables, indexes, config)
        checks = [
            dg.AssetCheckResult(
                check_name=finding.check,
                passed=finding.passed,
                severity=dg.AssetCheckSeverity(finding.severity),
                description=None
                if finding.passed
                else f"{finding.summary}: " + "; ".join(finding.offenders[:20]),
                metadata={"offenders": len(finding.offenders)},
            )
            for finding in findings
        ]
        context.log.info("table health tables=%d indexes=%d", len(tables), len(indexes))
        return dg.MaterializeResult(
            metadata={
                "tables": len(tables),
                "indexes": len(indexes),
                "dead_tuples": sum(t.dead_tuples for t in tables),
                "invalid_indexes": sum(1 for i in indexes if not i.valid),
                "database_xid_age": xid_age,
                "table_stats": dg.MetadataValue.md(tables_markdown(tables)),
                "index_stats": dg.MetadataValue.md(indexes_markdown(indexes)),
            },
            check_results=checks,
        )

    @dg.asset(
        partitions_def=partitions,
        deps=[table_health],
        group_name=GROUP,
        owners=OWNERS,
        kinds={"postgres"},
        description="VACUUM (ANALYZE) table by table, most dead tuples first, within the lock "
        "timeout and the maintenance window, with dead tuples and sizes before and after.",
    )
    def postgres_vacuum(
        context: dg.AssetExecutionContext, config: MaintenanceConfig, postgres: PostgresResource
    ) -> dg.MaterializeResult:
        with connect(
            postgres.source(database(context)), setting=DATABASE_URL, autocommit=True
        ) as conn:
            report = vacuum_tables(conn, config, context.log)
        return dg.MaterializeResult(
            metadata={
                "vacuumed": report.count(Outcome.DONE),
                "skipped_lock": report.count(Outcome.SKIPPED_LOCK),
                "skipped_window": report.count(Outcome.SKIPPED_WINDOW),
                "failed": report.count(Outcome.FAILED),
                "dead_tuples_removed": sum(
                    s.before.dead_tuples - s.after.dead_tuples
                    for s in report.steps
                    if s.before and s.after
                ),
                "reclaimed_bytes": report.reclaimed_bytes,
                "holding_back_cleanup": "; ".join(str(h) for h in report.holding_back) or "none",
                "steps": dg.MetadataValue.md(steps_table(report.steps)),
            }
        )

    @dg.asset(
        partitions_def=partitions,
        deps=[postgres_vacuum],
        group_name=GROUP,
        owners=OWNERS,
        kinds={"postgres"},
        description="REINDEX INDEX CONCURRENTLY for invalid or bloated indexes; invalid leftovers "
        "of interrupted rebuilds found and reported.",
    )
    def postgres_reindex(
        context: dg.AssetExecutionContext, config: MaintenanceConfig, postgres: PostgresResource
    ) -> dg.MaterializeResult:
        with connect(
            postgres.source(database(context)), setting=DATABASE_URL, autocommit=True
        ) as conn:
            report = reindex_indexes(conn, config, context.log)
        return dg.MaterializeResult(
            metadata={
                "rebuilt": sum(1 for s in report.steps if s.outcome is Outcome.DONE),
                "skipped": sum(1 for s in report.steps if s.outcome is not Outcome.DONE),
                "reclaimed_bytes": report.reclaimed_bytes,
                "leftover_invalid_indexes": ", ".join(report.leftovers) or "none",
                "dropped_leftovers": ", ".join(report.dropped) or "none",
                "steps": dg.MetadataValue.md(steps_table(report.steps)),
            }
        )

    return [table_health, postgres_vacuum, postgres_reindex]


# The single-database assets, for callers that need no fleet.
table_health, postgres_vacuum, postgres_reindex = build_maintenance_assets()
