"""Everything the maintenance domain adds to the code location."""

import dagster as dg

from karen_ops.maintenance.assets import postgres_reindex, postgres_vacuum, table_health
from karen_ops.maintenance.schedules import build_weekly_maintenance
from karen_ops.settings import ScheduleSettings


def build_definitions(settings: ScheduleSettings) -> dg.Definitions:
    job, schedule = build_weekly_maintenance(settings)
    return dg.Definitions(
        assets=[table_health, postgres_vacuum, postgres_reindex], jobs=[job], schedules=[schedule]
    )
