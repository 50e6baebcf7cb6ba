"""Everything continuous archiving and point-in-time recovery add to the code location."""

from __future__ import annotations

import dagster as dg

from karen_ops.pitr.assets import build_wal_archive, pitr_drill, postgres_base_backup
from karen_ops.pitr.resource import PitrResource
from karen_ops.pitr.retention_asset import wal_retention
from karen_ops.pitr.schedules import build_schedules
from karen_ops.settings import ScheduleSettings


def hourly_partitions(settings: ScheduleSettings) -> dg.HourlyPartitionsDefinition:
    return dg.HourlyPartitionsDefinition(
        start_date=f"{settings.backups_start_date}-00:00", timezone=settings.timezone
    )


def build_definitions(settings: ScheduleSettings) -> dg.Definitions:
    hourly = hourly_partitions(settings)
    jobs, schedules = build_schedules(settings, hourly)
    return dg.Definitions(
        assets=[postgres_base_backup, build_wal_archive(hourly), pitr_drill, wal_retention],
        jobs=jobs,
        schedules=schedules,
        resources={"pitr": PitrResource()},
    )
