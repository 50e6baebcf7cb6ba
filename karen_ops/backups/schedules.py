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
        # the database of its partition instead, so different databases proceed in parallel.
        tags={} if fleet else {DATABASE_TAG: PRIMARY_DATABASE},
        config=_tagged_by_database(partitions) if fleet else None,
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
            )
            for database in fleet
        ]

    return job, nightly_backup_schedule


def _tagged_by_database(partitions: dg.PartitionsDefinition) -> dg.PartitionedConfig:
    """No run config, and the partition's database as the run's DATABASE_TAG.

    Dagster asks this for every run of one partition of the job: the schedule's, one launched
    from the launchpad, and each run of a backfill started from the job's page.
    """
    assert isinstance(partitions, dg.MultiPartitionsDefinition)

    def database_tag(partition_key: str) -> dict[str, str]:
        key = partitions.get_partition_key_from_str(partition_key)
        return {DATABASE_TAG: key.keys_by_dimension[DATABASE]}

    return dg.PartitionedConfig(
        partitions_def=partitions,
        run_config_for_partition_key_fn=lambda _: {},
        tags_for_partition_key_fn=database_tag,
    )
