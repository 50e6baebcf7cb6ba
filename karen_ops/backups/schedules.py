"""The nightly_backup job and the schedule that runs it for the day that just ended."""

import dagster as dg

from karen_ops.backups.partitions import last_complete_day
from karen_ops.settings import DATABASE_TAG, PRIMARY_DATABASE, ScheduleSettings


def build_nightly_backup(
    partitions: dg.DailyPartitionsDefinition, settings: ScheduleSettings
) -> tuple[object, dg.ScheduleDefinition]:
    job = dg.define_asset_job(
        name="nightly_backup",
        selection=dg.AssetSelection.groups("backups"),
        description="Back up the AI Karen database and prove the backup restores.",
        # dagster.yaml allows one run at a time per value of this tag: backups, verification
        # restores and maintenance of one database never overlap.
        tags={DATABASE_TAG: PRIMARY_DATABASE},
    )

    @dg.schedule(
        name="nightly_backup_schedule",
        job=job,
        cron_schedule=settings.nightly_backup_cron,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Backs up the day that just ended, every night.",
    )
    def nightly_backup_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = last_complete_day(partitions, context.scheduled_execution_time)
        return dg.RunRequest(run_key=day, partition_key=day)

    return job, nightly_backup_schedule
