"""Everything the security domain adds to the code location."""

import dagster as dg

from karen_ops.security.assets import build_security_assets
from karen_ops.security.schedules import build_security_jobs
from karen_ops.security.settings import SecuritySettingsResource
from karen_ops.settings import ScheduleSettings


def build_definitions(settings: ScheduleSettings) -> dg.Definitions:
    assets = build_security_assets(settings.timezone)
    daily = [a for a in assets if a.partitions_def is not None]
    jobs, schedules = build_security_jobs(settings, daily)
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        schedules=schedules,
        resources={"security_settings": SecuritySettingsResource()},
    )
