"""Everything the file-archives domain adds to the code location."""

from __future__ import annotations

import dagster as dg

from karen_ops.archives.assets import build_archive_assets
from karen_ops.archives.partitions import daily_partitions, weekly_partitions
from karen_ops.archives.schedules import build_archive_jobs
from karen_ops.settings import ScheduleSettings


def build_definitions(settings: ScheduleSettings) -> dg.Definitions:
    daily = daily_partitions(settings.timezone, settings.backups_start_date)
    weekly = weekly_partitions(settings.timezone, settings.backups_start_date)
    jobs, schedules = build_archive_jobs(daily, weekly, settings)
    return dg.Definitions(
        assets=build_archive_assets(daily, weekly), jobs=jobs, schedules=schedules
    )
