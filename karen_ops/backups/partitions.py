"""The daily partitions of backups, and which of them can still be taken."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg

from karen_ops.errors import BackupRefused
from karen_ops.partitions import last_complete_partition
from karen_ops.settings import FleetDatabase

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
        latest = last_complete_partition(partitions, now)
        raise BackupRefused(
            f"cannot back up partition {partition_key}: a backup records the database as it is "
            f"now ({now:%Y-%m-%d %H:%M %Z}), not as it was on {partition_key}; materialize a "
            f"recent partition such as {latest}"
        )


DATE = "date"
DATABASE = "database"


def backup_partitions(
    timezone: str, start_date: str, fleet: tuple[FleetDatabase, ...]
) -> dg.PartitionsDefinition:
    """Daily partitions; with a fleet, days times databases, so each database has its own."""
    daily = daily_partitions(timezone, start_date)
    if not fleet:
        return daily
    names = dg.StaticPartitionsDefinition([database.name for database in fleet])
    return dg.MultiPartitionsDefinition({DATE: daily, DATABASE: names})


def daily_dimension(partitions: dg.PartitionsDefinition) -> dg.DailyPartitionsDefinition:
    if isinstance(partitions, dg.MultiPartitionsDefinition):
        return partitions.get_partitions_def_for_dimension(DATE)  # type: ignore[return-value]
    return partitions  # type: ignore[return-value]


@dataclass(frozen=True)
class BackupTarget:
    """What one partition of a backup asset means: a day, and which database."""

    day: str
    database: FleetDatabase | None  # None: the one database of KAREN_DATABASE_URL


def backup_target(
    partitions: dg.PartitionsDefinition, partition_key: str, fleet: tuple[FleetDatabase, ...]
) -> BackupTarget:
    if not isinstance(partitions, dg.MultiPartitionsDefinition):
        return BackupTarget(partition_key, None)
    dimensions = partitions.get_partition_key_from_str(partition_key).keys_by_dimension
    by_name = {database.name: database for database in fleet}
    return BackupTarget(dimensions[DATE], by_name[dimensions[DATABASE]])
