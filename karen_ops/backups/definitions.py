"""Everything the backups domain adds to the code location."""

from __future__ import annotations

import dagster as dg

from karen_ops.backups.assets import build_backup_assets
from karen_ops.backups.partitions import backup_partitions
from karen_ops.backups.retention_asset import backup_retention
from karen_ops.backups.schedules import build_nightly_backup
from karen_ops.settings import FleetDatabase, ScheduleSettings


def build_definitions(
    settings: ScheduleSettings, fleet: tuple[FleetDatabase, ...] = ()
) -> dg.Definitions:
    partitions = backup_partitions(settings.timezone, settings.backups_start_date, fleet)
    job, schedule = build_nightly_backup(partitions, settings, fleet)
    return dg.Definitions(
        assets=[*build_backup_assets(partitions, fleet), backup_retention],
        jobs=[job],
        schedules=[schedule],
    )
