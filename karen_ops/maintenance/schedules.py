"""The weekly_maintenance job and its Sunday schedule."""

import dagster as dg

from karen_ops.settings import DATABASE_TAG, PRIMARY_DATABASE, ScheduleSettings


def build_weekly_maintenance(settings: ScheduleSettings) -> tuple[object, dg.ScheduleDefinition]:
    job = dg.define_asset_job(
        name="weekly_maintenance",
        selection=dg.AssetSelection.groups("maintenance"),
        description="Measure table health, vacuum and reindex the AI Karen database.",
        # Shares the per-database run limit with nightly_backup (dagster.yaml): maintenance
        # never runs beside a backup or another maintenance run of the same database.
        tags={DATABASE_TAG: PRIMARY_DATABASE},
    )
    schedule = dg.ScheduleDefinition(
        name="weekly_maintenance_schedule",
        job=job,
        cron_schedule=settings.weekly_maintenance_cron,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Vacuums and reindexes every Sunday morning.",
    )
    return job, schedule
