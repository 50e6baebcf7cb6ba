"""PostgreSQL probes of one database: does it answer a query, and what its server is doing.

Connections and running statements are figures of the whole server (``pg_stat_activity`` and
``max_connections`` span every database of a cluster), so the activity probe also reads which
server it reached; :mod:`karen_ops.health.fleet` counts each server once from those answers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from karen_ops.health.probes import Probe, Verdict, elapsed_ms
from karen_ops.resources.conninfo import ConnInfo

# How the probes' own sessions are named, so the connection count can leave them out: with a
# fleet on one server the probes open one session per database at the same moment.
APPLICATION_NAME = "karen-ops health"

# The key under which an activity probe hands its answer to the judges in fleet.py.
ACTIVITY = "activity"


@dataclass(frozen=True)
class DatabaseTarget:
    """One database the PostgreSQL checks probe."""

    name: str  # its name in the settings file's fleet, or "primary"
    setting: str  # the environment variable holding its URL, named when it cannot be reached
    conninfo: Callable[[], ConnInfo]  # resolved inside the probe, under the deadline


@dataclass(frozen=True)
class LongQuery:
    pid: int
    user: str
    database: str
    seconds: float
    query: str  # the statement's first 80 characters, whitespace collapsed


@dataclass(frozen=True)
class ServerActivity:
    """What one server is doing, as seen from one of its databases."""

    identity: str  # the cluster's system identifier and start time: one per running server
    server: str  # host:port as the URL names it
    connections: int  # client backends, the health probes' own left out
    max_connections: int
    reserved: int  # superuser_reserved_connections
    long_queries: list[LongQuery]  # longest first

    @property
    def share(self) -> float:
        return self.connections / self.max_connections if self.max_connections else 0.0


_SERVER = """
SELECT (SELECT system_identifier FROM pg_control_system())::text
       || '/' || pg_postmaster_start_time()::text,
       (SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND application_name <> %s),
       current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int
"""

_LONG_QUERIES = """
SELECT pid, usename, datname, extract(epoch FROM now() - query_start)::float8,
       left(regexp_replace(query, '\\s+', ' ', 'g'), 80)
FROM pg_stat_activity
WHERE state = 'active' AND pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND now() - query_start > make_interval(secs => %s)
ORDER BY query_start
"""


def probe_query(target: DatabaseTarget, timeout_seconds: float) -> Probe:
    """Connect and run ``SELECT 1``; the latency covers both."""
    started = time.monotonic()
    conninfo = target.conninfo()
    with _connect(target, conninfo, timeout_seconds) as conn:
        conn.execute("SELECT 1").fetchone()
    latency = elapsed_ms(started)
    return Probe(
        Verdict.HEALTHY,
        f"{conninfo.describe()} answered SELECT 1 in {latency} ms",
        {"server": conninfo.server(), "latency_ms": latency},
    )


def probe_activity(target: DatabaseTarget, timeout_seconds: float, limit_seconds: float) -> Probe:
    """Read the server's connections and the statements running over ``limit_seconds``.

    The probe only gathers; the verdicts come from fleet.py once every server has answered.
    """
    conninfo = target.conninfo()
    with _connect(target, conninfo, timeout_seconds) as conn:
        identity, used, limit, reserved = conn.execute(_SERVER, (APPLICATION_NAME,)).fetchone()
        rows = conn.execute(_LONG_QUERIES, (limit_seconds,)).fetchall()
    activity = ServerActivity(
        identity, conninfo.server(), used, limit, reserved, [LongQuery(*row) for row in rows]
    )
    return Probe(Verdict.HEALTHY, f"{conninfo.describe()} answered", {ACTIVITY: activity})


def activity_of(probe: Probe) -> ServerActivity | None:
    """The activity an answered activity probe carries; None when it failed or timed out."""
    activity = probe.metadata.get(ACTIVITY)
    return activity if isinstance(activity, ServerActivity) else None


@contextmanager
def _connect(
    target: DatabaseTarget, conninfo: ConnInfo, timeout_seconds: float
) -> Iterator[psycopg.Connection]:
    try:
        # libpq counts connect_timeout in whole seconds, with 2 as its smallest useful value.
        options = {"connect_timeout": max(2, math.ceil(timeout_seconds))}
        conn = psycopg.connect(
            **{**conninfo.psycopg_kwargs(), **options, "application_name": APPLICATION_NAME},
            autocommit=True,
        )
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConnectionError(
            f"could not connect to {conninfo.describe()}: {reason}; check {target.setting}"
        ) from exc
    try:
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false)",
            (f"{int(timeout_seconds * 1000)}ms",),
        )
        yield conn
    finally:
        conn.close()
