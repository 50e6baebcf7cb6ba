"""Everything the health domain adds to the code location."""

import dagster as dg

from karen_ops.health.assets import COMPONENTS, build_health_report
from karen_ops.health.checks import health_details, health_probes
from karen_ops.health.resource import HealthSettingsResource
from karen_ops.health.schedules import build_health_jobs
from karen_ops.settings import ScheduleSettings


def build_definitions(settings: ScheduleSettings) -> dg.Definitions:
    """Needs the shared ``postgres`` and ``redis`` resources from the root definitions."""
    jobs, schedules = build_health_jobs(settings)
    return dg.Definitions(
        assets=[*COMPONENTS, build_health_report(settings.timezone)],
        asset_checks=[health_probes, health_details],
        jobs=jobs,
        schedules=schedules,
        resources={"health_settings": HealthSettingsResource()},
    )
