"""Everything the capacity domain adds to the code location."""

import dagster as dg

from karen_ops.capacity.assets import build_daily_assets
from karen_ops.capacity.partitions import daily_partitions, weekly_partitions
from karen_ops.capacity.report_asset import build_report_asset
from karen_ops.capacity.resource import CapacityResource
from karen_ops.capacity.schedules import build_daily_job
from karen_ops.capacity.weekly import build_weekly_chain
from karen_ops.settings import ScheduleSettings


def build_definitions(settings: ScheduleSettings) -> dg.Definitions:
    daily = daily_partitions(settings.timezone)
    weekly = weekly_partitions(settings.timezone)
    return dg.Definitions.merge(
        dg.Definitions(
            assets=[*build_daily_assets(daily), build_report_asset(weekly)],
            # The domain's own settings; Redis and the shared resources come from the root.
            resources={"capacity": CapacityResource()},
        ),
        build_daily_job(daily, settings),
        build_weekly_chain(daily, weekly, settings),
    )
