"""Per-day growth counted from the application's own timestamps, one statement per asset.

A range of days is counted in one pass over each source table: rows are grouped by their
calendar day in the partitions' timezone, so a day of 23 or 25 hours holds exactly the rows
of that day. A day before the source's first row is a gap (nothing was recorded yet, or it
has been purged), never a zero; from the first row on, a day without rows is a true zero.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime

import psycopg
from psycopg import sql

from karen_ops.capacity.partitions import DayWindow
from karen_ops.errors import ConfigurationError, DatabaseError

log = logging.getLogger(__name__)

# Column types a day can be cut from. A timestamp without time zone is read as UTC, the
# session time zone set below.
TIME_TYPES = ("timestamp with time zone", "timestamp without time zone")


@dataclass(frozen=True)
class MetricSource:
    """The table and timestamp column that define one daily metric."""

    name: str
    schema: str
    table: str
    column: str
    distinct_column: str | None = None

    def describe(self) -> str:
        return f"{self.schema}.{self.table}.{self.column}"


@dataclass(frozen=True)
class SourceCounts:
    """One metric over a range of days."""

    source: MetricSource
    first_recorded: datetime | None
    rows_before_range: int | None
    per_day: dict[date, int | None]  # None: a gap, the day ended before the first row


@dataclass(frozen=True)
class DayRecord:
    """What one daily partition records: its values, or why it has none."""

    window: DayWindow
    values: dict[str, int] | None
    gap_reason: str | None = None


def count_per_day(
    conn: psycopg.Connection,
    sources: list[MetricSource],
    windows: list[DayWindow],
    timezone: str,
    *,
    cumulative: frozenset[str] = frozenset(),
) -> dict[str, SourceCounts]:
    """Count each source's rows per day over ``windows`` (consecutive days) in one statement.

    Metrics named in ``cumulative`` also get the number of rows before the first day.
    """
    require_sources(conn, sources)
    statement = sql.SQL(" UNION ALL ").join(
        _source_statement(source, source.name in cumulative) for source in sources
    )
    params = {"tz": timezone, "lo": windows[0].start, "hi": windows[-1].end}
    started = time.monotonic()
    try:
        conn.execute("SET TIME ZONE 'UTC'")
        rows = conn.execute(statement, params).fetchall()
    except psycopg.Error as exc:
        raise DatabaseError(
            f"could not count {', '.join(s.describe() for s in sources)} per day from "
            f"{windows[0].day} to {windows[-1].day} in {timezone}: {_first_line(exc)}"
        ) from exc
    log.info(
        "counted per day sources=%s days=%d rows=%d seconds=%.3f",
        ",".join(s.describe() for s in sources),
        len(windows),
        len(rows),
        time.monotonic() - started,
    )
    return {source.name: _collect(source, rows, windows) for source in sources}


def require_sources(conn: psycopg.Connection, sources: list[MetricSource]) -> None:
    """Fail with the missing table or column named, before any counting starts."""
    tables = sorted({(s.schema, s.table) for s in sources})
    found: dict[tuple[str, str], dict[str, str]] = {}
    for schema, table, column, data_type in conn.execute(
        "SELECT table_schema, table_name, column_name, data_type "
        "FROM information_schema.columns WHERE (table_schema::text, table_name::text) "
        "IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
        ([s for s, _ in tables], [t for _, t in tables]),
    ):
        found.setdefault((schema, table), {})[column] = data_type
    for source in sources:
        columns = found.get((source.schema, source.table))
        if columns is None:
            raise ConfigurationError(
                f"cannot count {source.name}: table {source.schema}.{source.table} does not "
                f"exist (or is not readable) in database {conn.info.dbname}; set the capacity "
                f"resource's table for {source.name} to the table that records it"
            )
        for column in filter(None, (source.column, source.distinct_column)):
            if column not in columns:
                raise ConfigurationError(
                    f"cannot count {source.name}: column {column} does not exist in table "
                    f"{source.schema}.{source.table} (it has {', '.join(sorted(columns))}); "
                    f"set the capacity resource's column for {source.name}"
                )
        if columns[source.column] not in TIME_TYPES:
            raise ConfigurationError(
                f"cannot count {source.name}: column {source.describe()} is "
                f"{columns[source.column]}, not a timestamp; name a timestamp column"
            )


def user_growth_days(counts: SourceCounts, windows: list[DayWindow]) -> list[DayRecord]:
    """New users per day and the running total of users at each day's end."""
    total = counts.rows_before_range or 0
    records = []
    for window in windows:
        new = counts.per_day[window.day]
        if new is None:
            records.append(DayRecord(window, None, _gap_reason(counts)))
            continue
        total += new
        records.append(DayRecord(window, {"new_users": new, "cumulative_users": total}))
    return records


def single_metric_days(counts: SourceCounts, windows: list[DayWindow]) -> list[DayRecord]:
    return [
        DayRecord(window, None, _gap_reason(counts))
        if counts.per_day[window.day] is None
        else DayRecord(window, {counts.source.name: counts.per_day[window.day]})
        for window in windows
    ]


def merged_days(parts: list[list[DayRecord]]) -> list[DayRecord]:
    """Records of several metrics over the same days, merged; a day is a gap only when
    every metric lacks it, and then each missing metric is simply absent."""
    merged = []
    for same_day in zip(*parts, strict=True):
        values = {k: v for record in same_day for k, v in (record.values or {}).items()}
        reasons = [r.gap_reason for r in same_day if r.gap_reason]
        merged.append(DayRecord(same_day[0].window, values or None, "; ".join(reasons) or None))
    return merged


def _source_statement(source: MetricSource, with_total: bool) -> sql.Composed:
    table = sql.Identifier(source.schema, source.table)
    column = sql.Identifier(source.column)
    counted = (
        sql.SQL("count(DISTINCT {})").format(sql.Identifier(source.distinct_column))
        if source.distinct_column
        else sql.SQL("count(*)")
    )
    before = (
        sql.SQL("(SELECT count(*) FROM {t} WHERE {c} < %(lo)s)").format(t=table, c=column)
        if with_total
        else sql.SQL("NULL::bigint")
    )
    return sql.SQL(
        "(SELECT {name}::text, ({c}::timestamptz AT TIME ZONE %(tz)s)::date, {counted}, "
        "NULL::timestamptz FROM {t} WHERE {c} >= %(lo)s AND {c} < %(hi)s GROUP BY 2) "
        "UNION ALL (SELECT {name}::text, NULL::date, {before}, "
        "(SELECT min({c})::timestamptz FROM {t}))"
    ).format(name=sql.Literal(source.name), t=table, c=column, counted=counted, before=before)


def _collect(source: MetricSource, rows: list[tuple], windows: list[DayWindow]) -> SourceCounts:
    mine = [row for row in rows if row[0] == source.name]
    summary = next(row for row in mine if row[1] is None)
    by_day = {row[1]: row[2] for row in mine if row[1] is not None}
    first = summary[3]
    per_day = {
        w.day: None if first is None or w.end <= first else by_day.get(w.day, 0) for w in windows
    }
    return SourceCounts(source, first, summary[2], per_day)


def _gap_reason(counts: SourceCounts) -> str:
    where = counts.source.describe()
    if counts.first_recorded is None:
        return f"no rows in {where}"
    return f"before the first row of {where} ({counts.first_recorded:%Y-%m-%d %H:%M %Z})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
