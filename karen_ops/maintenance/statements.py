"""Running one maintenance statement at a time, in autocommit, under lock and time limits.

VACUUM and REINDEX CONCURRENTLY refuse to run inside a transaction block, and a batch of them
in one call would run as one implicit transaction, so each goes alone to ``execute`` on an
autocommit connection. A statement that cannot get its lock in time is skipped, not failed.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql


class Outcome(enum.Enum):
    """How one maintenance step ended."""

    DONE = "done"  # the statement completed
    SKIPPED_LOCK = "skipped: lock not granted in time"  # another session held a conflicting lock
    SKIPPED_WINDOW = "skipped: maintenance window spent"  # the time budget ran out first
    SKIPPED_UNSUPPORTED = "skipped: not possible here"  # the server cannot do it safely
    FAILED = "failed"  # any other error; reported, and the run goes on


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    seconds: float
    reason: str | None = None


def set_limits(conn: psycopg.Connection, *, lock_timeout: float, statement_timeout: float) -> None:
    """Session limits for every statement that follows on ``conn``."""
    for name, seconds in (("lock_timeout", lock_timeout), ("statement_timeout", statement_timeout)):
        milliseconds = max(1, int(seconds * 1000))
        conn.execute(
            sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(f"{milliseconds}ms"))
        )


def run_one(conn: psycopg.Connection, statement: sql.Composable) -> Attempt:
    """Execute a single statement; a lock timeout or error becomes an outcome, not an exception."""
    if not conn.autocommit:
        raise ValueError("maintenance statements need an autocommit connection")
    started = time.monotonic()
    try:
        conn.execute(statement)
    except psycopg.errors.LockNotAvailable as exc:
        return Attempt(Outcome.SKIPPED_LOCK, time.monotonic() - started, first_line(exc))
    except psycopg.errors.QueryCanceled as exc:
        return Attempt(Outcome.FAILED, time.monotonic() - started, f"{first_line(exc)}")
    except psycopg.Error as exc:
        return Attempt(Outcome.FAILED, time.monotonic() - started, first_line(exc))
    return Attempt(Outcome.DONE, time.monotonic() - started)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
