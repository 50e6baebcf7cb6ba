"""The weekly_maintenance job and its Sunday schedule."""

import dagster as dg

from karen_ops.settings import DATABASE_TAG, PRIMARY_DATABASE, FleetDatabase, ScheduleSettings


def build_weekly_maintenance(
    settings: ScheduleSettings, fleet: tuple[FleetDatabase, ...] = ()
) -> tuple[object, dg.ScheduleDefinition]:
    job = dg.define_asset_job(
        name="weekly_maintenance",
        selection=dg.AssetSelection.groups("maintenance"),
        description="Measure table health, vacuum and reindex the AI Karen database(s).",
        # Shares the per-database run limit with nightly_backup (dagster.yaml): maintenance
        # never runs beside a backup or another maintenance run of the same database. In a
        # fleet the partition is the database, and the tag follows it.
        tags={} if fleet else {DATABASE_TAG: PRIMARY_DATABASE},
        config=_tagged_by_database(fleet) if fleet else None,
    )

    @dg.schedule(
        name="weekly_maintenance_schedule",
        job=job,
        cron_schedule=settings.weekly_maintenance_cron,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Vacuums and reindexes every Sunday morning; one run per database.",
    )
    def weekly_maintenance_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        stamp = f"{context.scheduled_execution_time:%Y-%m-%d}"
        if not fleet:
            return [dg.RunRequest(run_key=stamp)]
        return [
            dg.RunRequest(run_key=f"{stamp}|{database.name}", partition_key=database.name)
            for database in fleet
        ]

    return job, weekly_maintenance_schedule


def _tagged_by_database(fleet: tuple[FleetDatabase, ...]) -> dg.PartitionedConfig:
    """No run config, and the partition (a database's name) as the run's DATABASE_TAG, for
    runs of the schedule, the launchpad and backfills started from the job's page."""
    return dg.PartitionedConfig(
        # Equal to the maintenance assets' partitions: Dagster compares static ones by keys.
        partitions_def=dg.StaticPartitionsDefinition([database.name for database in fleet]),
        run_config_for_partition_key_fn=lambda _: {},
        tags_for_partition_key_fn=lambda name: {DATABASE_TAG: name},
    )
