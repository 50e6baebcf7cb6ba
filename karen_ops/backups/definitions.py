"""Everything the backups domain adds to the code location."""

from __future__ import annotations

import dagster as dg

from karen_ops.backups.assets import build_backup_assets
from karen_ops.backups.partitions import daily_partitions
from karen_ops.backups.retention_asset import backup_retention
from karen_ops.backups.schedules import build_nightly_backup
from karen_ops.settings import ScheduleSettings


def build_definitions(settings: ScheduleSettings) -> dg.Definitions:
    partitions = daily_partitions(settings.timezone, settings.backups_start_date)
    job, schedule = build_nightly_backup(partitions, settings)
    return dg.Definitions(
        assets=[*build_backup_assets(partitions), backup_retention],
        jobs=[job],
        schedules=[schedule],
    )
