"""What PostgreSQL's statistics views say about each table and index, read in one place.

Sizes come from the page counts in pg_class, as of the last VACUUM, ANALYZE or index build:
reading them takes no lock, so a table held exclusively by the application cannot stall the
report (pg_relation_size would wait for it). Tuple and scan counts come from the cumulative
statistics, which lag by a moment. Bloat is an estimate: for a table, the share of its size
taken by dead tuples; for an index, its size beyond what its live entries would need when
freshly built.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row

_TABLES = """
SELECT s.schemaname AS schema, s.relname AS name,
       s.n_live_tup AS live_tuples, s.n_dead_tup AS dead_tuples,
       (c.relpages + coalesce(t.relpages, 0))::bigint * current_setting('block_size')::int
           AS table_bytes,
       coalesce((SELECT sum(ic.relpages) FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
                 WHERE x.indrelid = s.relid), 0)::bigint * current_setting('block_size')::int
           AS index_bytes,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       age(c.relfrozenxid) AS xid_age
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.relkind IN ('r', 'm')
ORDER BY s.schemaname, s.relname
"""

# Expected size of a freshly built B-tree: per entry an 8-byte tuple header, a 4-byte line
# pointer and the key's average width from pg_stats, packed at the default fill factor of 90%.
_INDEXES = """
SELECT s.schemaname AS schema, s.relname AS table_name, s.indexrelname AS name,
       c.relpages::bigint * current_setting('block_size')::int AS index_bytes,
       s.idx_scan AS scans,
       i.indisvalid AS valid, i.indisunique AS is_unique, i.indisprimary AS is_primary,
       am.amname AS method,
       (SELECT count(*) FROM pg_constraint k
        WHERE k.conindid = s.indexrelid AND k.contype = 'x') > 0 AS is_exclusion,
       CASE WHEN am.amname = 'btree' AND c.reltuples > 0 THEN
            (c.reltuples * (12 + coalesce((
                SELECT sum(st.avg_width) FROM pg_attribute a
                JOIN pg_stats st ON st.schemaname = s.schemaname AND st.tablename = s.relname
                                AND st.attname = a.attname
                WHERE a.attrelid = s.relid AND a.attnum = ANY (i.indkey)), 8)) / 0.9)::bigint
       END AS expected_bytes
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
JOIN pg_class c ON c.oid = s.indexrelid
JOIN pg_am am ON am.oid = c.relam
ORDER BY s.schemaname, s.relname, s.indexrelname
"""

_DATABASE_XID_AGE = "SELECT age(datfrozenxid) FROM pg_database WHERE datname = current_database()"

# Sessions whose open transaction or snapshot keeps vacuum from removing newer dead tuples.
_OLD_TRANSACTIONS = """
SELECT pid, usename AS user_name, application_name, state,
       extract(epoch FROM now() - xact_start)::float AS transaction_seconds
FROM pg_stat_activity
WHERE xact_start IS NOT NULL
  AND pid <> pg_backend_pid()
  AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)
  AND now() - xact_start > make_interval(secs => %s)
ORDER BY xact_start
"""


@dataclass(frozen=True)
class TableStats:
    schema: str
    name: str
    live_tuples: int
    dead_tuples: int
    table_bytes: int
    index_bytes: int
    last_vacuum: object
    last_autovacuum: object
    last_analyze: object
    last_autoanalyze: object
    xid_age: int

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def dead_ratio(self) -> float:
        total = self.live_tuples + self.dead_tuples
        return self.dead_tuples / total if total else 0.0

    @property
    def estimated_bloat_bytes(self) -> int:
        return int(self.table_bytes * self.dead_ratio)


@dataclass(frozen=True)
class IndexStats:
    schema: str
    table_name: str
    name: str
    index_bytes: int
    scans: int
    valid: bool
    is_unique: bool
    is_primary: bool
    method: str
    is_exclusion: bool
    expected_bytes: int | None

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def estimated_bloat_bytes(self) -> int:
        if self.expected_bytes is None:
            return 0
        return max(0, self.index_bytes - self.expected_bytes)

    @property
    def bloat_ratio(self) -> float:
        return self.estimated_bloat_bytes / self.index_bytes if self.index_bytes else 0.0


@dataclass(frozen=True)
class OldTransaction:
    """A session holding back cleanup, named so that an operator can end it."""

    pid: int
    user_name: str | None
    application_name: str | None
    state: str | None
    transaction_seconds: float

    def __str__(self) -> str:
        return (
            f"pid {self.pid} (user {self.user_name}, application "
            f"{self.application_name or 'unnamed'}, {self.state}) has had a transaction open "
            f"for {self.transaction_seconds:.0f} s"
        )


def table_stats(conn: psycopg.Connection) -> list[TableStats]:
    with conn.cursor(row_factory=class_row(TableStats)) as cur:
        return cur.execute(_TABLES).fetchall()


def index_stats(conn: psycopg.Connection) -> list[IndexStats]:
    with conn.cursor(row_factory=class_row(IndexStats)) as cur:
        return cur.execute(_INDEXES).fetchall()


def database_xid_age(conn: psycopg.Connection) -> int:
    return conn.execute(_DATABASE_XID_AGE).fetchone()[0]


def old_transactions(conn: psycopg.Connection, older_than_seconds: float) -> list[OldTransaction]:
    with conn.cursor(row_factory=class_row(OldTransaction)) as cur:
        return cur.execute(_OLD_TRANSACTIONS, (older_than_seconds,)).fetchall()
