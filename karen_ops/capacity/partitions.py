"""Daily and weekly partitions of the capacity domain, and which days can still be observed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import dagster as dg

from karen_ops.errors import CapacityRefused
from karen_ops.partitions import last_complete_partition

# Growth is derived from the application's timestamps, so history can reach back before
# karen-ops was deployed; backfills may start here.
HISTORY_START = "2024-01-01"  # a Monday, so weeks and days share their first partition

# A snapshot observes the platform as it is when it runs. It may label the day that has just
# ended (the daily schedule runs shortly after midnight), never a day long past.
SNAPSHOT_GRACE = timedelta(hours=24)


@dataclass(frozen=True)
class DayWindow:
    """One calendar day in the partitions' timezone: [start, end), 23 to 25 hours long."""

    day: date
    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        return (self.end.timestamp() - self.start.timestamp()) / 3600


def daily_partitions(timezone: str) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=HISTORY_START, timezone=timezone)


def weekly_partitions(timezone: str) -> dg.WeeklyPartitionsDefinition:
    # day_offset=1: weeks run Monday to Sunday, as the runbook's weekly review does.
    return dg.WeeklyPartitionsDefinition(start_date=HISTORY_START, day_offset=1, timezone=timezone)


def day_windows(
    partitions: dg.DailyPartitionsDefinition, partition_keys: list[str]
) -> list[DayWindow]:
    """The time window of each daily partition, cut in the partitions' timezone."""
    windows = []
    for key in partition_keys:
        window = partitions.time_window_for_partition_key(key)
        windows.append(DayWindow(window.start.date(), window.start, window.end))
    return windows


def days_before(end: date, count: int) -> list[date]:
    """The ``count`` calendar days that end the day before ``end``, oldest first."""
    return [end - timedelta(days=count - i) for i in range(count)]


def require_observable_day(
    partitions: dg.DailyPartitionsDefinition, partition_keys: list[str], now: datetime
) -> str:
    """The one day a snapshot taken ``now`` may be recorded under; refuse ranges and old days."""
    if len(partition_keys) != 1:
        raise CapacityRefused(
            f"cannot record capacity snapshots for {partition_keys[0]}...{partition_keys[-1]}: "
            f"a snapshot observes the platform once, now, and cannot fill a range of days; "
            f"backfill the growth assets alone, and materialize capacity_snapshot for "
            f"{last_complete_partition(partitions, now)}"
        )
    [partition_key] = partition_keys
    if not is_observable(partitions, partition_key, now):
        raise CapacityRefused(
            f"cannot record a capacity snapshot for {partition_key}: a snapshot observes the "
            f"platform as it is now ({now:%Y-%m-%d %H:%M %Z}), and the past cannot be observed "
            f"afterwards; materialize the newest partition, "
            f"{last_complete_partition(partitions, now)}"
        )
    return partition_key


def is_observable(
    partitions: dg.DailyPartitionsDefinition, partition_key: str, now: datetime
) -> bool:
    """Whether a snapshot taken ``now`` may still be recorded under the day ``partition_key``."""
    window = partitions.time_window_for_partition_key(partition_key)
    return now - window.end <= SNAPSHOT_GRACE
