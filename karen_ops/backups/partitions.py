"""The daily partitions of backups, and which of them can still be taken."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg

from karen_ops.errors import BackupError

# A backup records the database as it is when it runs. Labelling today's state with a date
# long past would mislead whoever restores it, so only recent partitions can be backed up.
BACKUP_GRACE = timedelta(days=2)


def daily_partitions(timezone: str, start_date: str = "2026-11-01") -> dg.DailyPartitionsDefinition:
    """One partition per day from ``start_date``, the first night backups were taken."""
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone=timezone)


def require_recent_partition(
    partitions: dg.DailyPartitionsDefinition, partition_key: str, now: datetime
) -> None:
    window = partitions.time_window_for_partition_key(partition_key)
    if window.end < now - BACKUP_GRACE:
        latest = last_complete_day(partitions, now)
        raise BackupError(
            f"cannot back up partition {partition_key}: a backup records the database as it is "
            f"now ({now:%Y-%m-%d %H:%M %Z}), not as it was on {partition_key}; materialize a "
            f"recent partition such as {latest}"
        )


def last_complete_day(partitions: dg.DailyPartitionsDefinition, now: datetime) -> str:
    """The newest partition at ``now``: the last day that has ended, never today."""
    with dg.partition_loading_context(effective_dt=now):
        key = partitions.get_last_partition_key()
    if key is None:
        raise BackupError(f"no backup partition has ended yet at {now:%Y-%m-%d %H:%M %Z}")
    return key
