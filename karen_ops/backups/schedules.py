"""The nightly_backup job and the schedule that runs it for the day that just ended."""

import dagster as dg

from karen_ops.backups.partitions import DATABASE, DATE, daily_dimension
from karen_ops.partitions import last_complete_partition
from karen_ops.settings import DATABASE_TAG, PRIMARY_DATABASE, FleetDatabase, ScheduleSettings


def build_nightly_backup(
    partitions: dg.PartitionsDefinition,
    settings: ScheduleSettings,
    fleet: tuple[FleetDatabase, ...] = (),
) -> tuple[object, dg.ScheduleDefinition]:
    job = dg.define_asset_job(
        name="nightly_backup",
        selection=dg.AssetSelection.groups("backups"),
        description="Back up the AI Karen database(s) and prove each backup restores.",
        # dagster.yaml allows one run at a time per value of this tag: backups, verification
        # restores and maintenance of one database never overlap. A fleet tags each run with
        # its own database instead, so different databases proceed in parallel.
        tags={} if fleet else {DATABASE_TAG: PRIMARY_DATABASE},
    )
    days = daily_dimension(partitions)

    @dg.schedule(
        name="nightly_backup_schedule",
        job=job,
        cron_schedule=settings.nightly_backup_cron,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Backs up the day that just ended, every night; one run per database.",
    )
    def nightly_backup_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        day = last_complete_partition(days, context.scheduled_execution_time)
        if not fleet:
            return [dg.RunRequest(run_key=day, partition_key=day)]
        # One run per database: a failure in one leaves the others to finish.
        return [
            dg.RunRequest(
                run_key=f"{day}|{database.name}",
                partition_key=dg.MultiPartitionKey({DATE: day, DATABASE: database.name}),
                tags={DATABASE_TAG: database.name},
            )
            for database in fleet
        ]

    return job, nightly_backup_schedule
