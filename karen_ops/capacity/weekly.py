"""The weekly capacity report: Monday's recount of the week, then the report, as a chain.

Dagster runs one partitions definition per run, so the week's daily inputs and its weekly
report cannot share a run, nor a job. They form a chain that reads in order in the UI:

1. ``weekly_capacity_report_schedule`` (Monday 06:00) launches ``weekly_capacity_report``:
   one run over the seven days Monday to Sunday of the week that ended, which counts
   ``user_growth``, ``daily_active_users`` and ``chat_activity`` again from the application's
   timestamps, so rows written late and days a nightly run missed are in the report.
2. ``weekly_capacity_report_on_success`` sees that run succeed and launches
   ``weekly_capacity_report_publish``, which materializes ``capacity_report`` for the week.
   A run that fails publishes nothing; ``run_failure_alerts`` reports it.

The schedule's job keeps the name ``weekly_capacity_report``: starting it is how the weekly
report is made, and the report job shares its name as a prefix so the two sort side by side.

The chain takes no capacity snapshot. A snapshot observes the platform once, at the moment it
runs, so it cannot join a run over seven days, and six of the week's days can no longer be
observed at all. ``daily_capacity`` recorded Sunday at 00:30, hours before the chain starts.
A day without a snapshot stays a gap, counted in the report's ``gap_days``, rather than holding
numbers observed on another day; while Sunday is within the snapshot's one-day grace an
operator can still record it and materialize the week's report again.
"""

from datetime import UTC, datetime

import dagster as dg

from karen_ops.errors import CapacityError
from karen_ops.partitions import (
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    last_complete_partition,
)
from karen_ops.settings import DATABASE_TAG, ScheduleSettings, application_database, load_fleet

GROWTH_ASSETS = ["user_growth", "daily_active_users", "chat_activity"]

WEEKLY_CRON = "0 6 * * 1"

# On a report run: the recount run it follows, so an operator can walk the chain backwards.
RECOUNT_RUN_TAG = "karen-ops/capacity-recount-run"


def build_weekly_chain(
    daily: dg.DailyPartitionsDefinition,
    weekly: dg.WeeklyPartitionsDefinition,
    settings: ScheduleSettings,
) -> dg.Definitions:
    """The recount job and its Monday schedule, and the sensor that launches the report job."""
    recount_job = dg.define_asset_job(
        name="weekly_capacity_report",
        selection=dg.AssetSelection.assets(*GROWTH_ASSETS),
        description="Weekly capacity report, step 1 of 2: count user growth, daily active "
        "users and chat activity again for the week's seven days, in one run. When it "
        "succeeds, weekly_capacity_report_on_success launches weekly_capacity_report_publish.",
        # The counts read the application's database; keep them off that database while
        # a backup or maintenance of it runs (under its fleet name, when it has one).
        tags={DATABASE_TAG: application_database(load_fleet())},
    )
    publish_job = dg.define_asset_job(
        name="weekly_capacity_report_publish",
        selection=dg.AssetSelection.assets("capacity_report"),
        description="Weekly capacity report, step 2 of 2: chart, forecast and judge the "
        "scaling triggers for the week that weekly_capacity_report counted; launched by "
        "weekly_capacity_report_on_success when that run succeeds.",
    )

    @dg.schedule(
        name="weekly_capacity_report_schedule",
        job=recount_job,
        cron_schedule=WEEKLY_CRON,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every Monday at 06:00, counts the week that ended on Sunday again; its "
        "success launches the week's report (weekly_capacity_report_on_success).",
    )
    def weekly_capacity_report_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        week = last_complete_partition(weekly, context.scheduled_execution_time)
        days = daily.get_partition_key_range_for_time_window(
            weekly.time_window_for_partition_key(week)
        )
        return dg.RunRequest(
            run_key=week, tags={RANGE_START_TAG: days.start, RANGE_END_TAG: days.end}
        )

    @dg.run_status_sensor(
        name="weekly_capacity_report_on_success",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[recount_job],
        request_job=publish_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="When weekly_capacity_report succeeds, launches "
        "weekly_capacity_report_publish for the weeks it counted, once per run.",
    )
    def weekly_capacity_report_on_success(
        context: dg.RunStatusSensorContext,
    ) -> dg.RunRequest | dg.SkipReason:
        run = context.dagster_run
        try:
            weeks = counted_weeks(run, daily, weekly, datetime.now(UTC))
        except CapacityError as exc:
            return dg.SkipReason(str(exc))
        if weeks is None:
            return dg.SkipReason(
                f"run {run.run_id} of {run.job_name} counted no week that has ended; "
                f"there is no weekly report to make"
            )
        context.log.info(
            f"capacity report requested weeks={weeks.start}..{weeks.end} recount_run={run.run_id}"
        )
        return report_request(run.run_id, weeks)

    return dg.Definitions(
        jobs=[recount_job, publish_job],
        schedules=[weekly_capacity_report_schedule],
        sensors=[weekly_capacity_report_on_success],
    )


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


def report_request(recount_run_id: str, weeks: dg.PartitionKeyRange) -> dg.RunRequest:
    """One report run for the weeks, keyed on the recount run so each success reports once."""
    tags = {RECOUNT_RUN_TAG: recount_run_id}
    if weeks.start == weeks.end:
        return dg.RunRequest(run_key=recount_run_id, partition_key=weeks.start, tags=tags)
    # Several weeks, as after a recount over a month: one run, as the report's policy allows.
    tags |= {RANGE_START_TAG: weeks.start, RANGE_END_TAG: weeks.end}
    return dg.RunRequest(run_key=recount_run_id, tags=tags)
