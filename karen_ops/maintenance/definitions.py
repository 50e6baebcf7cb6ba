"""Everything the maintenance domain adds to the code location."""

import dagster as dg

from karen_ops.maintenance.assets import build_maintenance_assets
from karen_ops.maintenance.schedules import build_weekly_maintenance
from karen_ops.settings import FleetDatabase, ScheduleSettings


def build_definitions(
    settings: ScheduleSettings, fleet: tuple[FleetDatabase, ...] = ()
) -> dg.Definitions:
    job, schedule = build_weekly_maintenance(settings, fleet)
    return dg.Definitions(assets=build_maintenance_assets(fleet), jobs=[job], schedules=[schedule])
