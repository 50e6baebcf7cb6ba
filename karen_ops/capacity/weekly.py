"""The weekly capacity report: Monday's recount of the week, Sunday's snapshot, then the report.

Dagster runs one partitions definition per run, so the week's daily inputs and its weekly
report cannot share a run, nor a job. They form a chain that reads in order in the UI:

1. ``weekly_capacity_report_schedule`` (Monday 06:00) launches ``weekly_capacity_report``:
   one run over the seven days Monday to Sunday of the week that ended, which counts
   ``user_growth``, ``daily_active_users`` and ``chat_activity`` again from the application's
   timestamps, so rows written late and days a nightly run missed are in the report.
2. ``weekly_capacity_report_on_success`` sees that run succeed. When Sunday has no
   ``capacity_snapshot`` yet and can still be observed, it launches
   ``weekly_capacity_report_snapshot`` for Sunday first; otherwise it goes straight to step 3.
3. ``weekly_capacity_report_publish`` materializes ``capacity_report`` for the week: launched
   by the same sensor, after the recount or after Sunday's snapshot succeeds, or by
   ``weekly_capacity_report_on_snapshot_failure`` or ``..._on_snapshot_canceled`` when that
   snapshot ends otherwise, since one missing day is a gap in a report of ninety, not a reason
   to have no report.

A recount that fails publishes nothing; ``run_failure_alerts`` reports it, as it reports a
snapshot that fails.

A snapshot observes the platform once, at the moment it runs, so it cannot join a run over
seven days, and six of the week's days can no longer be observed at all. ``daily_capacity``
records each day at 00:30; the chain only fills in Sunday when that run did not, within the
snapshot's one-day grace. A day without a snapshot stays a gap, counted in the report's
``gap_days``, rather than holding numbers observed on another day.

The schedule's job keeps the name ``weekly_capacity_report``: starting it is how the weekly
report is made, and the other jobs share its name as a prefix so the chain sorts side by side.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

# What define_asset_job returns; Dagster exports the class only from here.
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from karen_ops.capacity.history import newest_metadata
from karen_ops.capacity.partitions import is_observable
from karen_ops.errors import CapacityError
from karen_ops.partitions import (
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    last_complete_partition,
)
from karen_ops.settings import DATABASE_TAG, ScheduleSettings, application_database, load_fleet

GROWTH_ASSETS = ["user_growth", "daily_active_users", "chat_activity"]
SNAPSHOT_ASSET = "capacity_snapshot"

WEEKLY_CRON = "0 6 * * 1"

# The chain's jobs share the schedule job's name as a prefix, so they sort side by side.
RECOUNT_JOB = "weekly_capacity_report"
SNAPSHOT_JOB = "weekly_capacity_report_snapshot"
PUBLISH_JOB = "weekly_capacity_report_publish"
SNAPSHOT_FAILED_SENSOR = "weekly_capacity_report_on_snapshot_failure"
SNAPSHOT_CANCELED_SENSOR = "weekly_capacity_report_on_snapshot_canceled"
FAILED, CANCELED = dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED

# On the snapshot and report runs: the recount run they follow, so an operator can walk the
# chain backwards, and the sensors can tell the chain's snapshot from one launched by hand.
RECOUNT_RUN_TAG = "karen-ops/capacity-recount-run"


@dataclass(frozen=True)
class WeeklyChain:
    """The chain's partitions and jobs, which its schedule and sensors share."""

    daily: dg.DailyPartitionsDefinition
    weekly: dg.WeeklyPartitionsDefinition
    recount: UnresolvedAssetJobDefinition
    snapshot: UnresolvedAssetJobDefinition
    publish: UnresolvedAssetJobDefinition


def build_weekly_chain(
    daily: dg.DailyPartitionsDefinition,
    weekly: dg.WeeklyPartitionsDefinition,
    settings: ScheduleSettings,
) -> dg.Definitions:
    """The chain's three jobs, its Monday schedule, and the sensors that lead from step to step."""
    chain = WeeklyChain(daily, weekly, *_chain_jobs())
    return dg.Definitions(
        jobs=[chain.recount, chain.snapshot, chain.publish],
        schedules=[_monday_schedule(chain, settings)],
        sensors=[
            _on_success_sensor(chain),
            _after_snapshot_sensor(chain, FAILED, SNAPSHOT_FAILED_SENSOR, "failed"),
            _after_snapshot_sensor(chain, CANCELED, SNAPSHOT_CANCELED_SENSOR, "canceled"),
        ],
    )


def _chain_jobs() -> list[UnresolvedAssetJobDefinition]:
    # The recount and the snapshot read the application's database; keep them off it while a
    # backup or maintenance of it runs (under its fleet name, when it has one).
    on_application_database = {DATABASE_TAG: application_database(load_fleet())}
    recount = dg.define_asset_job(
        name=RECOUNT_JOB,
        selection=dg.AssetSelection.assets(*GROWTH_ASSETS),
        description="Weekly capacity report, step 1 of 3: count user growth, daily active "
        "users and chat activity again for the week's seven days, in one run. When it "
        "succeeds, weekly_capacity_report_on_success launches the next step.",
        tags=on_application_database,
    )
    snapshot = dg.define_asset_job(
        name=SNAPSHOT_JOB,
        selection=dg.AssetSelection.assets(SNAPSHOT_ASSET),
        description="Weekly capacity report, step 2 of 3, only when needed: record Sunday's "
        "capacity snapshot, which daily_capacity did not, while Sunday can still be observed. "
        "However it ends, the week's report follows.",
        tags=on_application_database,
    )
    publish = dg.define_asset_job(
        name=PUBLISH_JOB,
        selection=dg.AssetSelection.assets("capacity_report"),
        description="Weekly capacity report, step 3 of 3: chart, forecast and judge the "
        "scaling triggers for the week that weekly_capacity_report counted; launched by "
        "weekly_capacity_report_on_success, or after a snapshot that failed or was canceled.",
    )
    return [recount, snapshot, publish]


def _monday_schedule(chain: WeeklyChain, settings: ScheduleSettings) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="weekly_capacity_report_schedule",
        job=chain.recount,
        cron_schedule=WEEKLY_CRON,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every Monday at 06:00, counts the week that ended on Sunday again; its "
        "success leads to Sunday's snapshot, when missing, and the week's report.",
    )
    def weekly_capacity_report_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        week = last_complete_partition(chain.weekly, context.scheduled_execution_time)
        days = chain.daily.get_partition_key_range_for_time_window(
            chain.weekly.time_window_for_partition_key(week)
        )
        return dg.RunRequest(
            run_key=week, tags={RANGE_START_TAG: days.start, RANGE_END_TAG: days.end}
        )

    return weekly_capacity_report_schedule


def _on_success_sensor(chain: WeeklyChain) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name="weekly_capacity_report_on_success",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[chain.recount, chain.snapshot],
        request_jobs=[chain.snapshot, chain.publish],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="When weekly_capacity_report succeeds, launches Sunday's snapshot if it "
        "is missing and still observable, else the report for the weeks counted; when that "
        "snapshot succeeds, launches the report. Once per recount run.",
    )
    def weekly_capacity_report_on_success(
        context: dg.RunStatusSensorContext,
    ) -> dg.RunRequest | dg.SkipReason:
        run, now = context.dagster_run, datetime.now(UTC)
        if run.job_name == chain.snapshot.name:
            return _report_after_snapshot(context, chain, run, now)
        return _step_after_count(context, chain, run, now)

    return weekly_capacity_report_on_success


def _step_after_count(
    context: dg.RunStatusSensorContext, chain: WeeklyChain, run: dg.DagsterRun, now: datetime
) -> dg.RunRequest | dg.SkipReason:
    """Sunday's snapshot when it is missing and still observable, else the weeks' report."""
    try:
        weeks = counted_weeks(run, chain.daily, chain.weekly, now)
    except CapacityError as exc:
        return dg.SkipReason(str(exc))
    if weeks is None:
        return dg.SkipReason(
            f"run {run.run_id} of {run.job_name} counted no week that has ended; "
            f"there is no weekly report to make"
        )
    sunday = last_day(chain, weeks)
    if _has_snapshot(context.instance, sunday):
        return _report(context, run.run_id, weeks)
    if is_observable(chain.daily, sunday, now):
        context.log.info(f"capacity snapshot requested day={sunday} recount_run={run.run_id}")
        return snapshot_request(run.run_id, sunday)
    context.log.warning(
        f"no capacity snapshot for {sunday}, and that day can no longer be observed; "
        f"the report counts it as a gap"
    )
    return _report(context, run.run_id, weeks)


def _after_snapshot_sensor(
    chain: WeeklyChain, status: dg.DagsterRunStatus, name: str, outcome: str
) -> dg.SensorDefinition:
    """The report after the chain's snapshot ended without success: failed, or canceled while
    it waited behind a backup of the same database, say. One missing day is a gap in a report
    of ninety, not a reason to have no report."""

    @dg.run_status_sensor(
        name=name,
        run_status=status,
        monitored_jobs=[chain.snapshot],
        request_job=chain.publish,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"When the chain's Sunday snapshot is {outcome}, launches the week's report "
        "all the same, with Sunday as a gap.",
    )
    def after_snapshot(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
        run = context.dagster_run
        request = _report_after_snapshot(context, chain, run, datetime.now(UTC))
        if isinstance(request, dg.RunRequest):
            context.log.warning(
                f"capacity snapshot run {run.run_id} was {outcome}; the week's report counts "
                f"{run.tags.get(PARTITION_TAG)} as a gap"
            )
        return request

    return after_snapshot


def _report_after_snapshot(
    context: dg.RunStatusSensorContext,
    chain: WeeklyChain,
    snapshot_run: dg.DagsterRun,
    now: datetime,
) -> dg.RunRequest | dg.SkipReason:
    """The report that follows the chain's snapshot run, for the weeks its recount counted."""
    recount_run_id = snapshot_run.tags.get(RECOUNT_RUN_TAG)
    recount_run = context.instance.get_run_by_id(recount_run_id) if recount_run_id else None
    if recount_run is None:
        return dg.SkipReason(
            f"run {snapshot_run.run_id} of {snapshot_run.job_name} follows no recount run of "
            f"this instance, so it reports no week; materialize capacity_report for the week "
            f"to report it"
        )
    weeks = counted_weeks(recount_run, chain.daily, chain.weekly, now)
    if weeks is None:
        return dg.SkipReason(f"recount run {recount_run.run_id} counted no week that has ended")
    return _report(context, recount_run.run_id, weeks)


def _report(
    context: dg.RunStatusSensorContext, recount_run_id: str, weeks: dg.PartitionKeyRange
) -> dg.RunRequest:
    context.log.info(
        f"capacity report requested weeks={weeks.start}..{weeks.end} recount_run={recount_run_id}"
    )
    return report_request(recount_run_id, weeks)


def _has_snapshot(instance: dg.DagsterInstance, day: str) -> bool:
    return day in newest_metadata(instance, dg.AssetKey(SNAPSHOT_ASSET), [day])


def last_day(chain: WeeklyChain, weeks: dg.PartitionKeyRange) -> str:
    """The daily partition that ends the last of the weeks: its Sunday."""
    window = chain.weekly.time_window_for_partition_key(weeks.end)
    return chain.daily.get_partition_key_range_for_time_window(window).end


def run_days(run: dg.DagsterRun) -> dg.PartitionKeyRange | None:
    """The daily partitions a run covered: its range, its one partition, or none."""
    start, end = run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)
    if start and end:
        return dg.PartitionKeyRange(start, end)
    partition = run.tags.get(PARTITION_TAG)
    return dg.PartitionKeyRange(partition, partition) if partition else None


def counted_weeks(
    run: dg.DagsterRun,
    daily: dg.DailyPartitionsDefinition,
    weekly: dg.WeeklyPartitionsDefinition,
    now: datetime,
) -> dg.PartitionKeyRange | None:
    """The weeks that hold the run's days and have ended at ``now``: their reports changed.

    Raises CapacityError when the run's partition tags name something other than days, as a
    run launched by hand with a mistyped partition does: it counted nothing a report covers.
    """
    days = run_days(run)
    if days is None:
        return None
    first = weekly.get_partition_key_for_timestamp(_day_start(run, daily, days.start))
    last = weekly.get_partition_key_for_timestamp(_day_start(run, daily, days.end))
    # The week still under way has no partition yet; its report comes next Monday. Keys are
    # ISO dates, so they compare in calendar order.
    last = min(last, last_complete_partition(weekly, now))
    if first > last:
        return None
    return dg.PartitionKeyRange(first, last)


def _day_start(run: dg.DagsterRun, daily: dg.DailyPartitionsDefinition, key: str) -> float:
    try:
        return daily.time_window_for_partition_key(key).start.timestamp()
    except ValueError as exc:
        raise CapacityError(
            f"run {run.run_id} of {run.job_name} names partition {key!r}, which is not a day "
            f"(YYYY-MM-DD), so it counted no day a weekly report covers; launch "
            f"{run.job_name} from its schedule or as a backfill of days to report a week"
        ) from exc


def snapshot_request(recount_run_id: str, day: str) -> dg.RunRequest:
    """The chain's snapshot of ``day``; its run key differs from the report's, which follows."""
    return dg.RunRequest(
        run_key=f"{recount_run_id}:snapshot",
        job_name=SNAPSHOT_JOB,
        partition_key=day,
        tags={RECOUNT_RUN_TAG: recount_run_id},
    )


def report_request(recount_run_id: str, weeks: dg.PartitionKeyRange) -> dg.RunRequest:
    """One report run for the weeks, keyed on the recount run so each success reports once."""
    tags = {RECOUNT_RUN_TAG: recount_run_id}
    if weeks.start == weeks.end:
        return dg.RunRequest(
            run_key=recount_run_id,
            job_name=PUBLISH_JOB,
            partition_key=weeks.start,
            tags=tags,
        )
    # Several weeks, as after a recount over a month: one run, as the report's policy allows.
    tags |= {RANGE_START_TAG: weeks.start, RANGE_END_TAG: weeks.end}
    return dg.RunRequest(run_key=recount_run_id, job_name=PUBLISH_JOB, tags=tags)
