"""The daily capacity job and the weekly report job, each with its schedule.

Dagster runs one partitions definition per run, so the daily assets and the weekly report
are two jobs: the daily one records each day shortly after it ends, and the weekly one
reports the week that ended on Sunday from what the daily runs recorded.
"""

from __future__ import annotations

import dagster as dg

from karen_ops.partitions import last_complete_partition
from karen_ops.settings import DATABASE_TAG, PRIMARY_DATABASE, ScheduleSettings

DAILY_ASSETS = ["capacity_snapshot", "user_growth", "daily_active_users", "chat_activity"]

# 00:30: the day has ended, and the snapshot is still within its one-day grace.
DAILY_CRON = "30 0 * * *"
WEEKLY_CRON = "0 6 * * 1"


def build_capacity_jobs(
    daily: dg.DailyPartitionsDefinition,
    weekly: dg.WeeklyPartitionsDefinition,
    settings: ScheduleSettings,
) -> tuple[list[object], list[dg.ScheduleDefinition]]:
    daily_job = dg.define_asset_job(
        name="daily_capacity",
        selection=dg.AssetSelection.assets(*DAILY_ASSETS),
        description="Record the day that just ended: capacity snapshot and growth counts.",
        # The snapshot reads the database; keep it off the database while a backup runs.
        tags={DATABASE_TAG: PRIMARY_DATABASE},
    )
    weekly_job = dg.define_asset_job(
        name="weekly_capacity_report",
        selection=dg.AssetSelection.assets("capacity_report"),
        description="Chart, forecast and judge the scaling triggers for the week that ended.",
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

    @dg.schedule(
        name="weekly_capacity_report_schedule",
        job=weekly_job,
        cron_schedule=WEEKLY_CRON,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Reports the week that ended on Sunday, every Monday at 06:00.",
    )
    def weekly_capacity_report_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        week = last_complete_partition(weekly, context.scheduled_execution_time)
        return dg.RunRequest(run_key=week, partition_key=week)

    return [daily_job, weekly_job], [daily_capacity_schedule, weekly_capacity_report_schedule]
