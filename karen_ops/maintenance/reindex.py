"""Rebuilding bloated or invalid indexes with REINDEX CONCURRENTLY, and finding what it leaves.

REINDEX CONCURRENTLY builds a new index beside the old one (named ``*_ccnew``) and swaps them;
interrupted, it leaves an invalid ``*_ccnew`` or ``*_ccold`` index behind that costs writes and
helps no query. Those are found after every run and reported, or dropped when configured.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from karen_ops.maintenance.evidence import Step, measure
from karen_ops.maintenance.settings import MaintenanceConfig
from karen_ops.maintenance.statements import Outcome, first_line, run_one, set_limits
from karen_ops.maintenance.stats import IndexStats, index_stats

# REINDEX CONCURRENTLY first appeared in PostgreSQL 12.
CONCURRENT_REINDEX_SINCE = 12
_LEFTOVER = re.compile(r"_cc(new|old)\d*$")


@dataclass
class ReindexReport:
    steps: list[Step] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @property
    def reclaimed_bytes(self) -> int:
        return sum(step.reclaimed_bytes for step in self.steps)


def reindex_plan(indexes: list[IndexStats], config: MaintenanceConfig) -> list[IndexStats]:
    """Invalid indexes, and B-trees whose estimated bloat warrants a rebuild; largest first."""
    wanted = [
        index
        for index in indexes
        if not _LEFTOVER.search(index.name) and (not index.valid or _bloated(index, config))
    ]
    return sorted(wanted, key=lambda index: -index.estimated_bloat_bytes)


def _bloated(index: IndexStats, config: MaintenanceConfig) -> bool:
    return (
        index.index_bytes >= config.reindex_min_bytes
        and index.bloat_ratio >= config.reindex_bloat_ratio
    )


def reindex_indexes(
    conn: psycopg.Connection,
    config: MaintenanceConfig,
    log: logging.Logger,
    clock: Callable[[], float] = time.monotonic,
) -> ReindexReport:
    report = ReindexReport()
    set_limits(
        conn,
        lock_timeout=config.lock_timeout_seconds,
        statement_timeout=config.statement_timeout_seconds,
    )
    deadline = clock() + config.time_budget_seconds
    concurrent = conn.info.server_version // 10000 >= CONCURRENT_REINDEX_SINCE
    for index in reindex_plan(index_stats(conn), config):
        step = _reindex_one(conn, index, concurrent=concurrent, window_spent=clock() >= deadline)
        report.steps.append(step)
        log.info("reindex index=%s outcome=%s", index.qualified_name, step.outcome.value)

    report.leftovers = leftover_invalid_indexes(conn)
    if config.drop_leftover_invalid_indexes:
        report.dropped = [name for name in report.leftovers if _drop(conn, name, log)]
    for name in set(report.leftovers) - set(report.dropped):
        log.warning("invalid index left by an interrupted rebuild: %s", name)
    return report


def _reindex_one(
    conn: psycopg.Connection, index: IndexStats, *, concurrent: bool, window_spent: bool
) -> Step:
    label = "REINDEX INDEX CONCURRENTLY"
    if window_spent:
        return Step(index.qualified_name, label, Outcome.SKIPPED_WINDOW, 0.0)
    reason = _why_not_concurrently(index, concurrent)
    if reason:
        return Step(index.qualified_name, label, Outcome.SKIPPED_UNSUPPORTED, 0.0, reason=reason)

    table = f"{index.schema}.{index.table_name}"
    try:
        before = measure(conn, table)
    except psycopg.errors.LockNotAvailable as exc:
        return Step(index.qualified_name, label, Outcome.SKIPPED_LOCK, 0.0, reason=first_line(exc))
    statement = sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(
        sql.Identifier(index.schema, index.name)
    )
    attempt = run_one(conn, statement)
    after = measure(conn, table) if attempt.outcome is Outcome.DONE else None
    return Step(
        index.qualified_name,
        label,
        attempt.outcome,
        attempt.seconds,
        before,
        after,
        attempt.reason,
    )


def _why_not_concurrently(index: IndexStats, concurrent: bool) -> str | None:
    if not concurrent:
        return "the server is older than PostgreSQL 12 and has no REINDEX CONCURRENTLY"
    if index.is_exclusion:
        return "REINDEX CONCURRENTLY cannot rebuild an exclusion-constraint index"
    return None


def leftover_invalid_indexes(conn: psycopg.Connection) -> list[str]:
    """Invalid indexes named like the temporary ones of REINDEX CONCURRENTLY."""
    return [
        index.qualified_name
        for index in index_stats(conn)
        if not index.valid and _LEFTOVER.search(index.name)
    ]


def _drop(conn: psycopg.Connection, qualified_name: str, log: logging.Logger) -> bool:
    schema, name = qualified_name.split(".", 1)
    statement = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, name))
    attempt = run_one(conn, statement)
    log.info("drop leftover index=%s outcome=%s", qualified_name, attempt.outcome.value)
    return attempt.outcome is Outcome.DONE
