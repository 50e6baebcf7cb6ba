"""The weekly capacity report as an asset: read back, drawn, forecast, stored and shown."""

import dagster as dg

from karen_ops.capacity.forecast import ForecastStatus
from karen_ops.capacity.report import (
    GIB,
    WEEK_DAYS,
    CapacityReport,
    build_report,
    load_history,
    render_markdown,
    write_report,
)
from karen_ops.capacity.resource import CapacityResource
from karen_ops.failures import expected_failures
from karen_ops.resources.store import BackupStore, BackupStoreResource

GROUP = "capacity"
DAILY_INPUTS = ["capacity_snapshot", "user_growth", "daily_active_users", "chat_activity"]


def build_report_asset(weekly: dg.WeeklyPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=weekly,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[dg.AssetKey(name) for name in DAILY_INPUTS],
        group_name=GROUP,
        owners=["team:platform-ops"],
        kinds={"matplotlib"},
        description="Charts of the 90 days up to the week's end, linear forecasts of database "
        "size and disk use with their threshold dates, and the runbook's scaling triggers; "
        "stored under reports/capacity/<week> in the backup store.",
    )
    def capacity_report(
        context: dg.AssetExecutionContext,
        capacity: CapacityResource,
        backup_store: BackupStoreResource,
    ) -> dg.MaterializeResult:
        with expected_failures():
            store = backup_store.open()
        # A backfill of many weeks is one run; each week's report lands on its own partition.
        for week in context.partition_keys:
            metadata = _report_week(context, week, weekly, capacity, store)
            context.add_asset_metadata(metadata, partition_key=week)
        return dg.MaterializeResult()

    return capacity_report


def _report_week(
    context: dg.AssetExecutionContext,
    week: str,
    weekly: dg.WeeklyPartitionsDefinition,
    capacity: CapacityResource,
    store: BackupStore,
) -> dict[str, object]:
    window = weekly.time_window_for_partition_key(week)
    history = load_history(context.instance, window.end.date())
    report = build_report(
        week,
        history,
        disk_threshold_percent=capacity.disk_threshold_percent,
        database_size_limit_bytes=capacity.database_size_limit_gib * GIB,
    )
    _warn_of_uncounted_days(context, report)
    with expected_failures():
        key = write_report(report, store)
    size, disk = report.forecasts
    context.log.info(
        f"capacity report week={report.week} stored={key} "
        f"database_crossing={size.crossing} disk_crossing={disk.crossing}"
    )
    metadata: dict[str, object] = {
        "report": dg.MetadataValue.md(render_markdown(report, inline_charts=True)),
        "location": dg.MetadataValue.url(store.location(key)),
        "as_of": report.as_of.isoformat(),
        "database_size_crossing": size.crossing_text(report.as_of),
        "disk_use_crossing": disk.crossing_text(report.as_of),
    }
    for trigger in report.triggers:
        metadata[f"trigger: {trigger.rule}"] = trigger.state.value
    for name, series in report.history.items():
        metadata[f"gap_days: {name}"] = series.gaps
    if disk.status is ForecastStatus.PROJECTED:
        metadata["disk_used_percent_in_12_months"] = round(disk.projections[12], 1)
    return metadata


def _warn_of_uncounted_days(context: dg.AssetExecutionContext, report: CapacityReport) -> None:
    """Name the week's days whose growth was never counted: they can still be, unlike a
    snapshot, so an empty chart here is a step not yet run rather than a platform at rest."""
    week = report.history["new_users"].observed()
    week_days = report.history["new_users"].days[-WEEK_DAYS:]
    counted_days = {day for day, _ in week}
    uncounted = [day for day in week_days if day not in counted_days]
    if uncounted:
        context.log.warning(
            f"capacity report week={report.week}: growth was not counted for "
            f"{len(uncounted)} of its days ({', '.join(map(str, uncounted))}); launch "
            f"weekly_capacity_report over {week_days[0]}...{week_days[-1]}, whose success "
            f"makes this report again"
        )
