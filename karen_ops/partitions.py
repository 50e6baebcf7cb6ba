"""Which time partition is the newest: the last day, week or hour that has ended.

Dagster's time partitions end at the last complete window: the partition for today exists
from tomorrow. Every domain's schedules and guards ask the same question, answered here.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from karen_ops.errors import ConfigurationError


def last_complete_partition(partitions: dg.TimeWindowPartitionsDefinition, now: datetime) -> str:
    """The key of the newest partition that has ended at ``now``."""
    with dg.partition_loading_context(effective_dt=now):
        key = partitions.get_last_partition_key()
    if key is None:
        raise ConfigurationError(
            f"no partition has ended yet at {now:%Y-%m-%d %H:%M %Z}: they start at "
            f"{partitions.start:%Y-%m-%d %H:%M}; set a start date in the past in KAREN_OPS_CONFIG"
        )
    return key
