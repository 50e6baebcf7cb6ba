"""The security jobs: the day's logs and file integrity daily, pending updates weekly."""

import dagster as dg

from karen_ops.settings import ScheduleSettings

# Defaults until ScheduleSettings carries them (the same names in the settings file).
PENDING_UPDATES_CRON = "0 6 * * 1"


def build_security_jobs(
    settings: ScheduleSettings, daily_assets: list[dg.AssetsDefinition]
) -> tuple[list[object], list[dg.ScheduleDefinition]]:
    daily = dg.define_asset_job(
        name="daily_security_scan",
        selection=dg.AssetSelection.assets(*daily_assets),
        description="Security events, file integrity and error analysis of the day that ended.",
    )
    weekly = dg.define_asset_job(
        name="weekly_pending_updates",
        selection=dg.AssetSelection.assets("pending_updates"),
        description="Report outdated packages and pending host updates; installs nothing.",
    )
    schedules = [
        dg.build_schedule_from_partitioned_job(
            daily,
            hour_of_day=0,
            minute_of_hour=30,
            name="daily_security_scan_schedule",
            default_status=dg.DefaultScheduleStatus.RUNNING,
        ),
        dg.ScheduleDefinition(
            name="weekly_pending_updates_schedule",
            job=weekly,
            cron_schedule=getattr(settings, "pending_updates_cron", PENDING_UPDATES_CRON),
            execution_timezone=settings.timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING,
        ),
    ]
    return [daily, weekly], schedules
