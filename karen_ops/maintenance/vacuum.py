"""VACUUM (ANALYZE) table by table, most dead tuples first, inside the maintenance window."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from karen_ops.maintenance.evidence import Step, measure
from karen_ops.maintenance.settings import MaintenanceConfig
from karen_ops.maintenance.statements import (
    Attempt,
    Outcome,
    first_line,
    run_one,
    set_limits,
)
from karen_ops.maintenance.stats import OldTransaction, TableStats, old_transactions, table_stats


@dataclass
class VacuumReport:
    steps: list[Step] = field(default_factory=list)
    holding_back: list[OldTransaction] = field(default_factory=list)

    @property
    def reclaimed_bytes(self) -> int:
        return sum(step.reclaimed_bytes for step in self.steps)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for step in self.steps if step.outcome is outcome)


def vacuum_plan(tables: list[TableStats], config: MaintenanceConfig) -> list[TableStats]:
    """Tables worth vacuuming, the most dead tuples first; tables set for FULL always."""
    wanted = [
        table
        for table in tables
        if table.dead_tuples >= config.min_dead_tuples
        or table.qualified_name in config.vacuum_full_tables
    ]
    return sorted(wanted, key=lambda table: (-table.dead_tuples, table.qualified_name))


def vacuum_statement(table: str, *, full: bool) -> sql.Composed:
    schema, name = table.split(".", 1)
    options = sql.SQL("(FULL, ANALYZE)" if full else "(ANALYZE)")
    return sql.SQL("VACUUM {} {}").format(options, sql.Identifier(schema, name))


def vacuum_tables(
    conn: psycopg.Connection,
    config: MaintenanceConfig,
    log: logging.Logger,
    clock: Callable[[], float] = time.monotonic,
) -> VacuumReport:
    """Vacuum every planned table that the window allows; never raise for one table's failure."""
    report = VacuumReport(holding_back=old_transactions(conn, config.old_transaction_seconds))
    for holder in report.holding_back:
        log.warning(
            "cleanup held back: %s; vacuum cannot remove newer dead tuples until it ends", holder
        )

    set_limits(
        conn,
        lock_timeout=config.lock_timeout_seconds,
        statement_timeout=config.statement_timeout_seconds,
    )
    deadline = clock() + config.time_budget_seconds
    for table in vacuum_plan(table_stats(conn), config):
        report.steps.append(_vacuum_one(conn, table.qualified_name, config, clock() >= deadline))
        log.info("vacuum table=%s outcome=%s", table.qualified_name, report.steps[-1].outcome.value)
    return report


def _vacuum_one(
    conn: psycopg.Connection, table: str, config: MaintenanceConfig, window_spent: bool
) -> Step:
    full = table in config.vacuum_full_tables
    label = "VACUUM (FULL, ANALYZE)" if full else "VACUUM (ANALYZE)"
    if window_spent:
        return Step(table, label, Outcome.SKIPPED_WINDOW, 0.0)

    try:
        before = measure(conn, table)
    except psycopg.errors.LockNotAvailable as exc:
        return Step(table, label, Outcome.SKIPPED_LOCK, 0.0, reason=first_line(exc))
    attempt: Attempt = run_one(conn, vacuum_statement(table, full=full))
    after = measure(conn, table) if attempt.outcome is Outcome.DONE else None
    return Step(table, label, attempt.outcome, attempt.seconds, before, after, attempt.reason)
