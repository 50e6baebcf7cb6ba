"""A fleet of test databases named in a settings file, reached through URLs with a password.

The servers in reach accept any password (trust authentication), so a password in each URL
costs nothing and lets a test prove that no metadata or log line ever shows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import quote, urlencode

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from karen_ops.resources.conninfo import ConnInfo
from karen_ops_tests.servers import Server

FLEET_PASSWORD = "fleet-Pw-7c1e9b"  # noqa: S105 - ignored by the trust-auth test servers

# The fleet's databases and the variables holding their URLs, as the settings file names them.
FLEET_VARIABLES = {
    "production": "KAREN_TEST_PRODUCTION_URL",
    "staging": "KAREN_TEST_STAGING_URL",
    "tenant_acme": "KAREN_TEST_ACME_URL",
}

# Port 1 on loopback: nothing listens there, so a connection is refused at once.
UNREACHABLE = ConnInfo(
    {"host": "127.0.0.1", "port": "1", "user": "postgres", "dbname": "karen_acme_unreachable"}
)


def url_with_password(target: ConnInfo) -> str:
    """A postgresql:// URL of ``target`` carrying FLEET_PASSWORD; Unix sockets included."""
    params = target.params
    user = quote(params.get("user", "postgres"), safe="")
    host = params.get("host", "")
    port = params.get("port", "5432")
    dbname = quote(target.dbname, safe="")
    if host.startswith("/"):
        query = urlencode({"host": host, "port": port})
        return f"postgresql://{user}:{quote(FLEET_PASSWORD, safe='')}@/{dbname}?{query}"
    return f"postgresql://{user}:{quote(FLEET_PASSWORD, safe='')}@{host}:{port}/{dbname}"


def configure_fleet(
    folder: Path, monkeypatch: pytest.MonkeyPatch, targets: dict[str, ConnInfo]
) -> None:
    """Write a settings file naming the fleet and export each database's URL."""
    lines = ["databases:"]
    for name, target in targets.items():
        variable = FLEET_VARIABLES[name]
        lines.append(f"  {name}: {{url_env: {variable}}}")
        monkeypatch.setenv(variable, url_with_password(target))
    config = folder / "karen-ops.yaml"
    config.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("KAREN_OPS_CONFIG", str(config))


@contextmanager
def fleet_databases(server: Server, rows: dict[str, int]) -> Iterator[dict[str, ConnInfo]]:
    """One fresh database per name, each with a table of the given rows, dropped afterwards."""
    with ExitStack() as stack:
        targets = {}
        for name, count in rows.items():
            target = stack.enter_context(server.database(f"karen_{name}"))
            _fill(target, count)
            targets[name] = target
        yield targets


def _fill(target: ConnInfo, rows: int) -> None:
    with psycopg.connect(**target.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE messages AS "
                "SELECT g AS id, repeat('x', 200) AS body FROM generate_series(1, {}) g"
            ).format(sql.Literal(rows))
        )
        # Written now, the visibility and free-space maps do not appear later, under autovacuum,
        # and change the database's size between the snapshot and the test's own measurement.
        conn.execute("VACUUM ANALYZE messages")


def database_size(target: ConnInfo) -> int:
    with psycopg.connect(**target.psycopg_kwargs()) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def everything_recorded(instance: dg.DagsterInstance, run_id: str) -> str:
    """Every log line and event of a run as text: messages, metadata and check results."""
    return "\n".join(
        f"{entry.user_message}\n{entry.dagster_event!r}" for entry in instance.all_logs(run_id)
    )
