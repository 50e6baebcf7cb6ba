"""When base backups, the hourly archive check and the weekly drill run."""

from __future__ import annotations

import dagster as dg

from karen_ops.pitr import settings as pitr_settings
from karen_ops.settings import DATABASE_TAG, ScheduleSettings, application_database, load_fleet


def build_schedules(
    settings: ScheduleSettings, hourly: dg.HourlyPartitionsDefinition
) -> tuple[list, list[dg.ScheduleDefinition]]:
    base_job = dg.define_asset_job(
        "base_backup",
        # Retention runs after the new base backup, and only when it succeeded.
        selection=["postgres_base_backup", "wal_retention"],
        description="A physical base backup of the AI Karen server, verified; then base "
        "backups and WAL the retention policy no longer needs are deleted.",
        # A base backup copies the cluster of KAREN_DATABASE_URL; it queues behind the
        # logical backup and maintenance of that database, under its fleet name if it has one.
        tags={DATABASE_TAG: application_database(load_fleet())},
    )
    wal_job = dg.define_asset_job(
        "wal_archive_check",
        selection=["wal_archive"],
        description="Prove the WAL archive continuous since the newest base backup.",
    )
    drill_job = dg.define_asset_job(
        "weekly_pitr_drill",
        selection=["pitr_drill"],
        description="Recover base backup plus WAL to the nightly dump's snapshot and compare.",
    )
    schedules = [
        dg.ScheduleDefinition(
            name="base_backup_schedule",
            job=base_job,
            cron_schedule=getattr(settings, "base_backup_cron", pitr_settings.BASE_BACKUP_CRON),
            execution_timezone=settings.timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING,
        ),
        dg.build_schedule_from_partitioned_job(
            wal_job,
            name="wal_archive_schedule",
            minute_of_hour=5,
            default_status=dg.DefaultScheduleStatus.RUNNING,
        ),
        dg.ScheduleDefinition(
            name="weekly_pitr_drill_schedule",
            job=drill_job,
            cron_schedule=getattr(settings, "pitr_drill_cron", pitr_settings.PITR_DRILL_CRON),
            execution_timezone=settings.timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING,
        ),
    ]
    return [base_job, wal_job, drill_job], schedules
