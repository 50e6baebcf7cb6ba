"""Everything the capacity domain adds to the code location."""

from __future__ import annotations

import dagster as dg

from karen_ops.capacity.assets import build_daily_assets
from karen_ops.capacity.partitions import daily_partitions, weekly_partitions
from karen_ops.capacity.report_asset import build_report_asset
from karen_ops.capacity.resource import CapacityResource
from karen_ops.capacity.schedules import build_capacity_jobs
from karen_ops.settings import ScheduleSettings


def build_definitions(settings: ScheduleSettings) -> dg.Definitions:
    daily = daily_partitions(settings.timezone)
    weekly = weekly_partitions(settings.timezone)
    jobs, schedules = build_capacity_jobs(daily, weekly, settings)
    return dg.Definitions(
        assets=[*build_daily_assets(daily), build_report_asset(weekly)],
        jobs=jobs,
        schedules=schedules,
        # The domain's own settings; Redis and the shared resources come from the root.
        resources={"capacity": CapacityResource()},
    )
