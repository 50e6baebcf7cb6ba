"""The daily_config_backup and weekly_file_archives jobs, each with its schedule.

Dagster runs one partitions definition per run, so the daily configuration archive and the
weekly application and log archives are two jobs. Neither carries the per-database run tag:
they read files on the host, never the database, and may run beside a backup or maintenance.
"""

from __future__ import annotations

import dagster as dg

from karen_ops.partitions import last_complete_partition
from karen_ops.settings import ScheduleSettings

# Defaults for the schedule settings ``config_backup_cron`` and ``file_archives_cron``.
# 01:30: the day has ended, and the archive is done before the 02:00 database backup starts.
CONFIG_BACKUP_CRON = "30 1 * * *"
# Monday 04:00: the week has ended and the night's database backup is over.
FILE_ARCHIVES_CRON = "0 4 * * 1"


def build_archive_jobs(
    daily: dg.DailyPartitionsDefinition,
    weekly: dg.WeeklyPartitionsDefinition,
    settings: ScheduleSettings,
) -> tuple[list[object], list[dg.ScheduleDefinition]]:
    daily_job = dg.define_asset_job(
        name="daily_config_backup",
        selection=dg.AssetSelection.assets("config_backup"),
        description="Archive the host's configuration files for the day that just ended.",
    )
    weekly_job = dg.define_asset_job(
        name="weekly_file_archives",
        selection=dg.AssetSelection.assets("application_backup", "log_archive"),
        description="Archive the application folder and ship the rotated logs to the store.",
    )

    @dg.schedule(
        name="daily_config_backup_schedule",
        job=daily_job,
        cron_schedule=getattr(settings, "config_backup_cron", CONFIG_BACKUP_CRON),
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Archives the configuration files every night.",
    )
    def daily_config_backup_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = last_complete_partition(daily, context.scheduled_execution_time)
        return dg.RunRequest(run_key=day, partition_key=day)

    @dg.schedule(
        name="weekly_file_archives_schedule",
        job=weekly_job,
        cron_schedule=getattr(settings, "file_archives_cron", FILE_ARCHIVES_CRON),
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Archives the application and the rotated logs of the week that ended.",
    )
    def weekly_file_archives_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        week = last_complete_partition(weekly, context.scheduled_execution_time)
        return dg.RunRequest(run_key=week, partition_key=week)

    return [daily_job, weekly_job], [daily_config_backup_schedule, weekly_file_archives_schedule]
