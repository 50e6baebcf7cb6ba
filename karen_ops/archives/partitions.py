"""The daily and weekly partitions of the file archives, and which can still be taken."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg

from karen_ops.errors import ArchiveRefused
from karen_ops.partitions import last_complete_partition

# An archive records the files as they are when it runs; labelling them with a day or week
# long past would mislead whoever restores them, so only the newest partitions can be taken.
ARCHIVE_GRACE = timedelta(days=2)


def daily_partitions(timezone: str, start_date: str) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone=timezone)


def weekly_partitions(timezone: str, start_date: str) -> dg.WeeklyPartitionsDefinition:
    # day_offset=1: weeks run Monday to Sunday, and the key is the Monday.
    return dg.WeeklyPartitionsDefinition(start_date=start_date, day_offset=1, timezone=timezone)


def require_recent_partition(
    partitions: dg.TimeWindowPartitionsDefinition, partition_key: str, now: datetime
) -> None:
    window = partitions.time_window_for_partition_key(partition_key)
    # A week's archive may run on any day of the following week, until the next one ends.
    grace = max(ARCHIVE_GRACE, window.end - window.start)
    if window.end < now - grace:
        raise ArchiveRefused(
            f"cannot archive partition {partition_key}: an archive records the files as they "
            f"are now ({now:%Y-%m-%d %H:%M %Z}), not as they were then; materialize the "
            f"newest partition, {last_complete_partition(partitions, now)}"
        )
