"""The health jobs and their schedules: probes every five minutes, detail hourly, a report."""

from __future__ import annotations

import dagster as dg

from karen_ops.health.checks import health_details, health_probes
from karen_ops.settings import ScheduleSettings

# Defaults until ScheduleSettings carries them (the same names in the settings file).
HEALTH_CHECK_CRON = "*/5 * * * *"
HEALTH_DETAILS_CRON = "0 * * * *"
HEALTH_REPORT_CRON = "0 8 * * *"


def build_health_jobs(
    settings: ScheduleSettings,
) -> tuple[list[object], list[dg.ScheduleDefinition]]:
    # One process runs all probes side by side: a step per probe would spend more time
    # starting processes than probing, and the run must end soon after the probe timeout.
    check_job = dg.define_asset_job(
        name="health_check",
        selection=dg.AssetSelection.checks(health_probes),
        executor_def=dg.in_process_executor,
        description="Probe the backend, frontend, PostgreSQL, Redis and the host.",
    )
    details_job = dg.define_asset_job(
        name="health_check_hourly",
        selection=dg.AssetSelection.checks(health_details),
        executor_def=dg.in_process_executor,
        description="Connections, long queries, Redis memory and evictions, TLS expiry.",
    )
    report_job = dg.define_asset_job(
        name="daily_health_report",
        selection=dg.AssetSelection.assets("health_report"),
        description="Summarise the last 24 hours of health checks.",
    )
    cron = {
        "health_check": getattr(settings, "health_check_cron", HEALTH_CHECK_CRON),
        "health_check_hourly": getattr(settings, "health_details_cron", HEALTH_DETAILS_CRON),
        "daily_health_report": getattr(settings, "health_report_cron", HEALTH_REPORT_CRON),
    }
    jobs = [check_job, details_job, report_job]
    schedules = [
        dg.ScheduleDefinition(
            name=f"{job.name}_schedule",
            job=job,
            cron_schedule=cron[job.name],
            execution_timezone=settings.timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
        for job in jobs
    ]
    return jobs, schedules
