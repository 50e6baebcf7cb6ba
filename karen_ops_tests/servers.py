"""Real PostgreSQL servers for the tests, and helpers that build test databases on them.

``service``: the server at ``KAREN_TEST_DATABASE_URL`` (CI sets it to the machine's
PostgreSQL 15). ``embedded``: a PostgreSQL 16 server from the pgserver package, started in a
temporary folder. Together they cover two major versions.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import find_tool

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
