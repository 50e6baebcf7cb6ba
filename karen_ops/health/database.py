"""PostgreSQL probes: does it answer a query, how full are its connections, what runs long."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from karen_ops.health.probes import Probe, Verdict, elapsed_ms
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.settings import DATABASE_URL

# Long-running queries listed in a failing check's description; the count is always given.
_LISTED = 10


def probe_query(source: Callable[[], ConnInfo], timeout_seconds: float) -> Probe:
    """Connect and run ``SELECT 1``; the latency covers both."""
    started = time.monotonic()
    target = source()
    with _connect(target, timeout_seconds) as conn:
        conn.execute("SELECT 1").fetchone()
    latency = elapsed_ms(started)
    return Probe(
        Verdict.HEALTHY,
        f"{target.describe()} answered SELECT 1 in {latency} ms",
        {"server": target.server(), "latency_ms": latency},
    )


def probe_connections(
    source: Callable[[], ConnInfo], timeout_seconds: float, ratio: float
) -> Probe:
    """WARN when the server's client backends pass ``ratio`` of ``max_connections``."""
    target = source()
    with _connect(target, timeout_seconds) as conn:
        used, limit, reserved = conn.execute(
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),"
            " current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int"
        ).fetchone()
    share = used / limit if limit else 0.0
    metadata = {
        "connections": used,
        "max_connections": limit,
        "superuser_reserved_connections": reserved,
        "share": round(share, 3),
    }
    if share > ratio:
        return Probe(
            Verdict.WARNING,
            f"{used} of max_connections {limit} in use on {target.server()} "
            f"({share:.0%}, over {ratio:.0%}); find idle sessions in pg_stat_activity or "
            "put a connection pooler in front",
            metadata,
        )
    return Probe(Verdict.HEALTHY, f"{used} of {limit} connections in use", metadata)


def probe_long_queries(
    source: Callable[[], ConnInfo], timeout_seconds: float, limit_seconds: float
) -> Probe:
    """WARN when any other session's statement has run longer than ``limit_seconds``."""
    target = source()
    with _connect(target, timeout_seconds) as conn:
        rows = conn.execute(
            "SELECT pid, usename, datname, extract(epoch FROM now() - query_start)::float8,"
            " left(regexp_replace(query, '\\s+', ' ', 'g'), 80)"
            " FROM pg_stat_activity"
            " WHERE state = 'active' AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
            " AND now() - query_start > make_interval(secs => %s)"
            " ORDER BY query_start",
            (limit_seconds,),
        ).fetchall()
    metadata = {
        "long_running_queries": len(rows),
        "threshold_seconds": limit_seconds,
        "longest_seconds": round(rows[0][3], 1) if rows else 0.0,
    }
    if not rows:
        return Probe(Verdict.HEALTHY, f"no query has run over {limit_seconds:g} s", metadata)
    listed = "; ".join(
        f"pid {pid} ({user}@{db}) {seconds:.0f} s: {query}"
        for pid, user, db, seconds, query in rows[:_LISTED]
    )
    return Probe(
        Verdict.WARNING,
        f"{len(rows)} query(ies) running over {limit_seconds:g} s on {target.server()}: "
        f"{listed}; inspect with pg_stat_activity, end with pg_cancel_backend(pid)",
        metadata,
    )


@contextmanager
def _connect(target: ConnInfo, timeout_seconds: float) -> Iterator[psycopg.Connection]:
    try:
        conn = psycopg.connect(
            **target.psycopg_kwargs(),
            autocommit=True,
            # libpq counts connect_timeout in whole seconds, with 2 as its smallest useful value.
            connect_timeout=max(2, math.ceil(timeout_seconds)),
            application_name="karen-ops health",
        )
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConnectionError(
            f"could not connect to {target.describe()}: {reason}; check {DATABASE_URL}"
        ) from exc
    try:
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false)",
            (f"{int(timeout_seconds * 1000)}ms",),
        )
        yield conn
    finally:
        conn.close()
