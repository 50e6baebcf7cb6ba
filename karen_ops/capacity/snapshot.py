"""Observations of now: database and relation sizes, connections, cache hits, host and Redis.

Host figures describe the machine the run executes on, which the runbook places beside
PostgreSQL; point ``disk_path`` of the capacity resource at the database's data disk.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import psutil
import psycopg

from karen_ops.errors import CapacityError, DatabaseError

# psutil measures CPU use over an interval; one second is short for a run and long enough
# to smooth out a single busy scheduler tick.
CPU_SAMPLE_SECONDS = 1.0


@dataclass(frozen=True)
class RelationSize:
    name: str  # schema.table, or schema.index
    kind: str  # "table" or "index"
    total_bytes: int  # a table's heap, TOAST and indexes; an index's own size
    rows_estimate: int | None  # from the planner's statistics; None before the first ANALYZE
    table: str | None = None  # the table an index belongs to


@dataclass(frozen=True)
class DatabaseUsage:
    database: str
    size_bytes: int
    relations: list[RelationSize]
    connections: int  # client backends on the whole server: max_connections is server-wide
    max_connections: int
    cache_hit_ratio: float | None  # None: the statistics hold no block reads yet
    database_connections: int  # client backends connected to this database

    @property
    def connections_percent(self) -> float:
        return 100.0 * self.connections / self.max_connections


@dataclass(frozen=True)
class HostUsage:
    disk_path: str
    disk_total_bytes: int
    disk_used_bytes: int
    memory_total_bytes: int
    memory_used_percent: float
    cpu_percent: float
    load_1m: float
    load_15m: float
    cpus: int

    @property
    def disk_used_percent(self) -> float:
        return 100.0 * self.disk_used_bytes / self.disk_total_bytes


TABLES = """
SELECT name, total, rows FROM (
    SELECT format('%%I.%%I', n.nspname, c.relname) AS name, n.nspname, c.relname,
           pg_total_relation_size(c.oid) AS total,
           CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END AS rows,
           rank() OVER (ORDER BY pg_total_relation_size(c.oid) DESC, c.oid) AS place
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'm')
      AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
) ranked
WHERE place <= %(limit)s OR (nspname = %(schema)s AND relname = ANY(%(always)s))
ORDER BY total DESC, name
"""

INDEXES = """
SELECT format('%%I.%%I', n.nspname, i.relname), pg_relation_size(i.oid),
       CASE WHEN i.reltuples >= 0 THEN i.reltuples::bigint END,
       format('%%I.%%I', n.nspname, t.relname)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
ORDER BY pg_relation_size(i.oid) DESC, i.oid
LIMIT %(limit)s
"""

SERVER = """
SELECT current_database(), pg_database_size(current_database()),
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
       current_setting('max_connections')::int,
       (SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND datname = current_database()),
       (SELECT blks_hit FROM pg_stat_database WHERE datname = current_database()),
       (SELECT blks_read FROM pg_stat_database WHERE datname = current_database())
"""


def observe_database(
    conn: psycopg.Connection, *, schema: str, always: list[str], limit: int
) -> DatabaseUsage:
    """Sizes, connections and cache hits of the connected database, as they are now."""
    params = {"schema": schema, "always": always, "limit": limit}
    try:
        row = conn.execute(SERVER).fetchone()
        tables = conn.execute(TABLES, params).fetchall()
        indexes = conn.execute(INDEXES, params).fetchall()
    except psycopg.Error as exc:
        raise DatabaseError(
            f"could not observe the size of database {conn.info.dbname}: {exc}"
        ) from exc
    database, size, connections, max_connections, own_connections, hits, reads = row
    relations = [RelationSize(name, "table", total, rows) for name, total, rows in tables]
    relations += [RelationSize(n, "index", size_, rows, table) for n, size_, rows, table in indexes]
    blocks = (hits or 0) + (reads or 0)
    return DatabaseUsage(
        database=database,
        size_bytes=size,
        relations=relations,
        connections=connections,
        max_connections=max_connections,
        cache_hit_ratio=(hits or 0) / blocks if blocks else None,
        database_connections=own_connections,
    )


def observe_host(disk_path: str) -> HostUsage:
    """Disk, memory and CPU use of this machine, as they are now."""
    try:
        disk = shutil.disk_usage(disk_path)
    except OSError as exc:
        raise CapacityError(
            f"could not observe disk use at {disk_path}: {exc.strerror}; set disk_path of the "
            "capacity resource to a path on the database's data disk"
        ) from exc
    memory = psutil.virtual_memory()
    load_1m, _load_5m, load_15m = os.getloadavg()
    return HostUsage(
        disk_path=disk_path,
        disk_total_bytes=disk.total,
        disk_used_bytes=disk.used,
        memory_total_bytes=memory.total,
        memory_used_percent=memory.percent,
        cpu_percent=psutil.cpu_percent(interval=CPU_SAMPLE_SECONDS),
        load_1m=load_1m,
        load_15m=load_15m,
        cpus=os.cpu_count() or 1,
    )


def relations_table(relations: list[RelationSize]) -> str:
    """Markdown table of the largest tables and indexes."""
    lines = ["| relation | kind | size | rows (estimate) |", "|---|---|---:|---:|"]
    for r in relations:
        rows = f"{r.rows_estimate:,}" if r.rows_estimate is not None else "not analyzed"
        name = f"{r.name} (on {r.table})" if r.table else r.name
        lines.append(f"| {name} | {r.kind} | {human_bytes(r.total_bytes)} | {rows} |")
    return "\n".join(lines)


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
