"""Real PostgreSQL servers for the tests, and helpers that build test databases on them.

``service``: the server at ``KAREN_TEST_DATABASE_URL`` (CI sets it to the machine's
PostgreSQL 15); unset, a private server of the machine's own PostgreSQL 15 binaries on a free
port, or a second embedded server where there are none. ``embedded``: a PostgreSQL 16 server
from the pgserver package, started in a temporary folder. Together they cover two major
versions whenever PostgreSQL 15 is installed.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import find_tool
from karen_ops_tests.alerting_fixtures import free_port
from karen_ops_tests.pitr_fixtures import ServerUser

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CHINOOK_SQL = SHARED_DATA / "chinook.sql"


@dataclass(frozen=True)
class Server:
    """A running server, addressed through its maintenance database."""

    name: str
    maintenance: ConnInfo

    @property
    def major(self) -> int:
        with psycopg.connect(**self.maintenance.psycopg_kwargs()) as conn:
            return conn.info.server_version // 10000

    def url(self, dbname: str) -> str:
        return self.maintenance.with_dbname(dbname).public_dsn()

    @contextmanager
    def database(self, prefix: str = "karen_test") -> Iterator[ConnInfo]:
        """A fresh, empty database that the test owns, dropped afterwards."""
        name = f"{prefix}_{secrets.token_hex(4)}"
        with psycopg.connect(**self.maintenance.psycopg_kwargs(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield self.maintenance.with_dbname(name)
        finally:
            with psycopg.connect(**self.maintenance.psycopg_kwargs(), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    def databases(self) -> set[str]:
        with psycopg.connect(**self.maintenance.psycopg_kwargs()) as conn:
            return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


@contextmanager
def embedded_server_conninfo(name: str) -> Iterator[ConnInfo]:
    """A PostgreSQL 16 server from pgserver in a folder of its own, removed afterwards."""
    import pgserver

    # Not under pytest's own temporary folders: a concurrent pytest session prunes old ones,
    # and this server must outlive them. Short, too: its Unix socket lives in the folder.
    data = Path(tempfile.mkdtemp(prefix="karen-pg-")) / "data"
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, as on servers and in CI.
        warnings.simplefilter("ignore")
        server = pgserver.get_server(data, cleanup_mode="delete")
    try:
        yield ConnInfo.parse(server.get_uri(), setting=f"{name} test server")
    finally:
        server.cleanup()
        shutil.rmtree(data.parent, ignore_errors=True)


@contextmanager
def private_server_conninfo(user: ServerUser) -> Iterator[ConnInfo]:
    """A fresh cluster of ``user``'s binaries on a free port of 127.0.0.1, removed afterwards.

    Trust authentication and the stock settings otherwise, as a packaged server has them.
    """
    folder = Path(tempfile.mkdtemp(prefix="karen-pg-"))
    folder.chmod(0o755)
    user.give(folder)
    data, port = folder / "data", free_port()
    # fsync off: a throwaway server, where speed matters and crash safety does not.
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
    log_file = str(folder / "server.log")
    try:
        _run_as(user, "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
        _run_as(user, "pg_ctl", "-D", str(data), "-l", log_file, "-o", options, "-w", "start")
        yield ConnInfo(
            {"host": "127.0.0.1", "port": str(port), "user": "postgres", "dbname": "postgres"}
        )
    finally:
        user.run([user.tool("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


def _run_as(user: ServerUser, tool: str, *args: str) -> None:
    completed = user.run([user.tool(tool), *args])
    if completed.returncode != 0:
        raise RuntimeError(f"{tool} failed for the test server: {completed.stderr.strip()}")


def load_chinook(target: ConnInfo, major: int) -> None:
    """Run the real Chinook script with psql, into ``target`` instead of its own database.

    The script starts by dropping, creating and connecting to a database named chinook; that
    preamble is cut so the tables land in the test's own database.
    """
    script = CHINOOK_SQL.read_text()
    body = script.split("\\c chinook;", 1)[1]
    psql = find_tool("psql", major)
    subprocess.run(
        [str(psql.path), "-q", "-v", "ON_ERROR_STOP=1", f"--dbname={target.public_dsn()}"],
        input=body,
        text=True,
        check=True,
        capture_output=True,
    )


def exact_row_counts(target: ConnInfo) -> dict[str, int]:
    """Row counts straight from the server, independent of karen-ops' own inventory code."""
    with psycopg.connect(**target.psycopg_kwargs()) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema = 'public'"
        ).fetchall()
        return {
            f"{schema}.{table}": conn.execute(
                sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            ).fetchone()[0]
            for schema, table in tables
        }
