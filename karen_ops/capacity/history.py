"""Daily values as recorded on each day's partition, read back from the Dagster instance.

The report reads the very numbers the daily assets recorded, so what the UI's partition view
shows and what the report charts cannot disagree. A day whose partition was never
materialized, or that recorded no value, is a gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg

# Records fetched per call; a rerun adds records, so several may exist per day.
PAGE_SIZE = 1000


@dataclass(frozen=True)
class Series:
    """One metric per day, oldest first; None marks a gap (nothing was observed)."""

    name: str
    days: list[date]
    values: list[float | None]

    def observed(self) -> list[tuple[date, float]]:
        return [(d, v) for d, v in zip(self.days, self.values, strict=True) if v is not None]

    @property
    def gaps(self) -> int:
        return sum(v is None for v in self.values)


def recorded_series(
    instance: dg.DagsterInstance, asset: str, days: list[date], fields: list[str]
) -> dict[str, Series]:
    """The newest recorded value of each of ``fields`` on each day's partition of ``asset``."""
    newest = newest_metadata(instance, dg.AssetKey(asset), [d.isoformat() for d in days])
    series = {}
    for field in fields:
        values = [_number(newest.get(day.isoformat(), {}).get(field)) for day in days]
        series[field] = Series(field, days, values)
    return series


def newest_metadata(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: list[str]
) -> dict[str, dict[str, object]]:
    """The metadata of the newest materialization of each partition that has one."""
    found: dict[str, dict[str, object]] = {}
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions)
    cursor = None
    while True:
        page = instance.fetch_materializations(records_filter, limit=PAGE_SIZE, cursor=cursor)
        for record in page.records:  # newest first
            materialization = record.asset_materialization
            if materialization is not None and record.partition_key not in found:
                found[record.partition_key] = dict(materialization.metadata)
        if not page.has_more:
            return found
        cursor = page.cursor


def _number(value: object) -> float | None:
    raw = getattr(value, "value", value)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw)
