"""Before-and-after measurements of each maintenance step, and their summary for the UI."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from karen_ops.maintenance.statements import Outcome

_RELATION_SIZES = """
SELECT coalesce(s.n_dead_tup, 0), pg_table_size(c.oid), pg_indexes_size(c.oid)
FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.oid = {}::regclass
"""


@dataclass(frozen=True)
class Sizes:
    """One table's dead tuples and on-disk sizes at one moment."""

    dead_tuples: int
    table_bytes: int
    index_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.table_bytes + self.index_bytes


@dataclass(frozen=True)
class Step:
    """One statement on one table or index, with what it changed."""

    target: str
    statement: str
    outcome: Outcome
    seconds: float
    before: Sizes | None = None
    after: Sizes | None = None
    reason: str | None = None

    @property
    def reclaimed_bytes(self) -> int:
        if self.before is None or self.after is None:
            return 0
        return self.before.total_bytes - self.after.total_bytes


def measure(conn: psycopg.Connection, table: str) -> Sizes:
    """Dead tuples and exact sizes of ``table`` (schema.name), read fresh from the server.

    Reading sizes takes a share lock, so under the session's lock_timeout this raises
    psycopg.errors.LockNotAvailable when another session holds the table exclusively.
    """
    schema, name = table.split(".", 1)
    query = sql.SQL(_RELATION_SIZES).format(
        sql.Literal(sql.Identifier(schema, name).as_string(conn))
    )
    dead, table_bytes, index_bytes = conn.execute(query).fetchone()
    return Sizes(dead, table_bytes, index_bytes)


def steps_table(steps: list[Step]) -> str:
    """A markdown table of every step, for the asset's metadata."""
    lines = [
        "| target | statement | outcome | dead before | dead after | size before | size after "
        "| reclaimed | seconds |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for step in steps:
        before, after = step.before, step.after
        outcome = step.outcome.value + (f" ({step.reason})" if step.reason else "")
        lines.append(
            f"| {step.target} | {step.statement} | {outcome} "
            f"| {_n(before and before.dead_tuples)} | {_n(after and after.dead_tuples)} "
            f"| {_n(before and before.total_bytes)} | {_n(after and after.total_bytes)} "
            f"| {step.reclaimed_bytes:,} | {step.seconds:.2f} |"
        )
    return "\n".join(lines)


def _n(value: int | None) -> str:
    return "" if value is None else f"{value:,}"
