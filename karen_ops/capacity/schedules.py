"""The daily capacity job and its schedule; the weekly report's chain is in ``weekly``.

Dagster runs one partitions definition per run, so the daily assets and the weekly report
are separate jobs: the daily one records each day shortly after it ends, and the weekly
chain counts the week again and then reports it from what the daily assets recorded.
"""

import dagster as dg

from karen_ops.partitions import last_complete_partition
from karen_ops.settings import DATABASE_TAG, ScheduleSettings, application_database, load_fleet

DAILY_ASSETS = ["capacity_snapshot", "user_growth", "daily_active_users", "chat_activity"]

# 00:30: the day has ended, and the snapshot is still within its one-day grace.
DAILY_CRON = "30 0 * * *"


def build_daily_job(
    daily: dg.DailyPartitionsDefinition, settings: ScheduleSettings
) -> dg.Definitions:
    daily_job = dg.define_asset_job(
        name="daily_capacity",
        selection=dg.AssetSelection.assets(*DAILY_ASSETS),
        description="Record the day that just ended: capacity snapshot and growth counts.",
        # The snapshot reads the application's database; keep it off that database while
        # a backup or maintenance of it runs (under its fleet name, when it has one).
        tags={DATABASE_TAG: application_database(load_fleet())},
    )

    @dg.schedule(
        name="daily_capacity_schedule",
        job=daily_job,
        cron_schedule=DAILY_CRON,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Records the day that just ended, every night at 00:30.",
    )
    def daily_capacity_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = last_complete_partition(daily, context.scheduled_execution_time)
        return dg.RunRequest(run_key=day, partition_key=day)

    return dg.Definitions(jobs=[daily_job], schedules=[daily_capacity_schedule])
