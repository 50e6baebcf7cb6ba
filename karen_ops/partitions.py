"""Which time partition is the newest: the last day, week or hour that has ended.

Dagster's time partitions end at the last complete window: the partition for today exists
from tomorrow. Every domain's schedules and guards ask the same question, answered here, and
read a run's partitions from the same tags.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from karen_ops.errors import ConfigurationError

# The run tags with which Dagster runs one partition, or a range of them as one run (the way
# a single-run backfill policy runs a range).
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


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
