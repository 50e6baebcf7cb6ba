"""Everything the alerting domain adds to the code location."""

import dagster as dg

from karen_ops.alerting.resource import AlertingResource
from karen_ops.alerting.sensors import SENSORS
from karen_ops.settings import ScheduleSettings


def build_definitions(settings: ScheduleSettings) -> dg.Definitions:
    # The sensors run on their own intervals; schedule settings are not needed yet.
    del settings
    return dg.Definitions(
        sensors=SENSORS,
        resources={"alerting": AlertingResource()},
    )
