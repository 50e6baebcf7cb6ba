"""The PostgreSQL resource: which database is backed up, where scratch restores go, which tools."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
from pydantic import Field

from karen_ops import settings
from karen_ops.errors import ConfigurationError, DatabaseError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.embedded_postgres import embedded_server_url

# The embedded demo server's application database.
DEMO_DATABASE = "karen"

# Long enough for a server across a slow network, short enough that a wrong host fails a run
# in seconds rather than hanging it.
CONNECT_TIMEOUT_SECONDS = 10


class PostgresResource(dg.ConfigurableResource):
    """The AI Karen database, the server that receives scratch restores, and the client tools.

    Every field falls back to its environment variable when the run starts, then to the
    embedded demo server, so runs need no configuration in the demo.
    """

    database_url: str | None = Field(
        default=None,
        description="libpq URL of the AI Karen database (default: $KAREN_DATABASE_URL, "
        "else the embedded demo server's 'karen' database).",
    )
    verify_database_url: str | None = Field(
        default=None,
        description="libpq URL of the server that receives scratch restores (default: "
        "$KAREN_VERIFY_DATABASE_URL, else the source server's 'postgres' database).",
    )
    pg_bin_dir: str | None = Field(
        default=None,
        description="Folder searched first for pg_dump and pg_restore (default: "
        "$KAREN_PG_BIN_DIR; PATH and the usual package folders are searched after it).",
    )

    lock_wait_timeout_seconds: int = Field(
        default=300,
        description="How long a backup waits for a table lock held by another session before "
        "it fails (pg_dump --lock-wait-timeout).",
    )
    restore_jobs: int = Field(
        default=2, description="Parallel pg_restore jobs for verification restores."
    )

    def source(self, database: settings.FleetDatabase | None = None) -> ConnInfo:
        """Connection parameters of the database being backed up: one of a fleet, or the one."""
        if database is not None:
            return ConnInfo.parse(_fleet_url(database.url_env, database), setting=database.url_env)
        url = self.database_url or settings.env(settings.DATABASE_URL)
        if url is None:
            _refuse_blank(settings.DATABASE_URL)
            embedded = embedded_server_url(settings.ops_home() / "pgdata")
            return ConnInfo.parse(embedded, setting="embedded server").with_dbname(DEMO_DATABASE)
        return ConnInfo.parse(url, setting=settings.DATABASE_URL)

    def verify_server(self, database: settings.FleetDatabase | None = None) -> ConnInfo:
        """Connection parameters of the maintenance database of the scratch-restore server."""
        if database is not None and database.verify_url_env:
            url = _fleet_url(database.verify_url_env, database)
            return ConnInfo.parse(url, setting=database.verify_url_env)
        url = self.verify_database_url or settings.env(settings.VERIFY_DATABASE_URL)
        if url is None:
            return self.source(database).with_dbname("postgres")
        return ConnInfo.parse(url, setting=settings.VERIFY_DATABASE_URL)

    def bin_dir(self) -> str | None:
        return self.pg_bin_dir or settings.env(settings.PG_BIN_DIR)


def _fleet_url(variable: str, database: settings.FleetDatabase) -> str:
    url = settings.env(variable)
    if url is None:
        raise ConfigurationError(
            f"database {database.name} is configured in {settings.OPS_CONFIG} but {variable} "
            "is not set; export it with the database's libpq URL"
        )
    return url


@contextmanager
def connect(
    conninfo: ConnInfo, *, setting: str, autocommit: bool = False
) -> Iterator[psycopg.Connection]:
    """A psycopg connection that is always closed; failures to connect name the database."""
    try:
        defaults = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "application_name": "karen-ops"}
        conn = psycopg.connect(**{**defaults, **conninfo.psycopg_kwargs()}, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"could not connect to database {conninfo.describe()}: {_reason(exc)}; check {setting}"
        ) from exc
    try:
        yield conn
    finally:
        conn.close()


def server_major(conn: psycopg.Connection) -> int:
    """The server's major version: 150019 is 15, 160002 is 16."""
    return conn.info.server_version // 10000


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines) if lines else type(exc).__name__


def _refuse_blank(variable: str) -> None:
    """A variable set to nothing is a deployment whose value went missing, not a demo: falling
    back to the embedded server would start one beside production and back that up instead."""
    if variable in os.environ:
        raise ConfigurationError(
            f"{variable} is set but empty; set it to the application database's libpq URL, "
            f"or unset it to use the embedded demo server"
        )
