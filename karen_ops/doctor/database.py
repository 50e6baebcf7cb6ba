"""PostgreSQL: the database backed up, the client tools it needs, the scratch-restore server."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psycopg

from karen_ops import settings
from karen_ops.doctor.model import Finding, fail, ok, skip, warn
from karen_ops.errors import KarenOpsError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import PgTool, find_tool, list_tools
from karen_ops.resources.postgres import PostgresResource, connect, server_major
from karen_ops.settings import FleetDatabase

# Tables listed by name when the backup user cannot read them; more are counted, not named.
SHOWN_TABLES = 5

_UNREADABLE = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'S')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%'
  AND NOT has_table_privilege(c.oid, 'SELECT')
ORDER BY 1
"""

_CAN_CREATE_DATABASES = (
    "SELECT current_user, rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
)


@dataclass(frozen=True)
class SourceState:
    """What the source check learnt that later checks need."""

    conninfo: ConnInfo | None  # None: no usable connection parameters
    major: int | None  # None: the server did not answer


def database_checks(postgres: PostgresResource) -> list[Finding]:
    """The source database, pg_dump and pg_restore for it, and the scratch-restore server."""
    findings: list[Finding] = []
    source, finding = check_source(postgres)
    findings.append(finding)
    findings.extend(check_tools(source, postgres.bin_dir()))
    findings.append(check_verify_server(postgres, source))
    return findings


def check_source(postgres: PostgresResource) -> tuple[SourceState, Finding]:
    item = "postgresql"
    configured = postgres.database_url or settings.env(settings.DATABASE_URL)
    if configured is None and not _embedded_server_running():
        # Resolving the demo default would start an embedded server: a doctor must not.
        return SourceState(None, None), fail(
            item,
            f"{settings.DATABASE_URL} is not set and no embedded demo server runs under "
            f"{_embedded_data_dir()}",
            f"export {settings.DATABASE_URL}=postgresql://USER:PASSWORD@HOST:5432/DATABASE "
            "(or run `karen-ops demo` to try karen-ops on an embedded server)",
        )
    setting = settings.DATABASE_URL if configured else "the embedded demo server"
    try:
        conninfo = postgres.source()
    except KarenOpsError as exc:
        return SourceState(None, None), fail(item, str(exc), f"correct {settings.DATABASE_URL}")
    return probe_source(item, conninfo, setting)


def fleet_checks(postgres: PostgresResource, fleet: tuple[FleetDatabase, ...]) -> list[Finding]:
    """Each database of the fleet named in the settings file: reachable and fully readable."""
    findings = []
    for database in fleet:
        item = f"postgresql {database.name}"
        try:
            conninfo = postgres.source(database)
        except KarenOpsError as exc:
            findings.append(
                fail(item, str(exc), f"export {database.url_env}=postgresql://USER@HOST/DB")
            )
            continue
        findings.append(probe_source(item, conninfo, database.url_env)[1])
    return findings


def probe_source(item: str, conninfo: ConnInfo, setting: str) -> tuple[SourceState, Finding]:
    """Connect to a database to back up; name the tables its user cannot read."""
    try:
        with connect(conninfo, setting=setting) as conn:
            major = server_major(conn)
            version = conn.execute("SHOW server_version").fetchone()[0]
            unreadable = [row[0] for row in conn.execute(_UNREADABLE)]
    except (KarenOpsError, psycopg.Error) as exc:
        return SourceState(conninfo, None), fail(
            item,
            str(exc),
            f"check host, port, user and password in {setting}, and that the server's "
            "pg_hba.conf admits this host",
        )

    where = f"{conninfo.describe()} (PostgreSQL {version}, user {conninfo.params.get('user', '?')})"
    if unreadable:
        shown = ", ".join(unreadable[:SHOWN_TABLES])
        hidden = len(unreadable) - SHOWN_TABLES
        more = f" and {hidden} more" if hidden > 0 else ""
        return SourceState(conninfo, major), fail(
            item,
            f"{where}: the user cannot read {len(unreadable)} table(s) or sequence(s): "
            f"{shown}{more}; pg_dump would fail",
            "grant the backup user the pg_read_all_data role (GRANT pg_read_all_data TO USER)",
        )
    return SourceState(conninfo, major), ok(item, f"{where}: connected, every table readable")


def check_tools(source: SourceState, bin_dir: str | None) -> list[Finding]:
    if source.major is None:
        return [
            skip(name, f"needs the server's version first; found: {_found(name, bin_dir)}")
            for name in ("pg_dump", "pg_restore")
        ]
    dump, dump_finding = _tool("pg_dump", source.major, bin_dir, f"dump PostgreSQL {source.major}")
    if dump is None:
        return [dump_finding, skip("pg_restore", "needs a pg_dump first")]
    # pg_restore reads archives of its own major version and older ones.
    _, restore_finding = _tool(
        "pg_restore", dump.major, bin_dir, f"read archives of pg_dump {dump.major}"
    )
    return [dump_finding, restore_finding]


def check_verify_server(postgres: PostgresResource, source: SourceState) -> Finding:
    item = "verify server"
    explicit = postgres.verify_database_url or settings.env(settings.VERIFY_DATABASE_URL)
    if explicit is None and source.conninfo is None:
        return skip(item, f"follows {settings.DATABASE_URL}, which is not usable yet")
    setting = settings.VERIFY_DATABASE_URL if explicit else settings.DATABASE_URL
    try:
        conninfo = postgres.verify_server()
        with connect(conninfo, setting=setting, autocommit=True) as conn:
            major = server_major(conn)
            user, can_create = conn.execute(_CAN_CREATE_DATABASES).fetchone()
    except (KarenOpsError, psycopg.Error) as exc:
        return fail(item, str(exc), f"check {setting}, or set {settings.VERIFY_DATABASE_URL}")

    where = f"{conninfo.server()} (PostgreSQL {major}, user {user})"
    if not can_create:
        return fail(
            item,
            f"{where}: user {user} cannot create databases, so scratch restores cannot run",
            f"ALTER ROLE {user} CREATEDB, or set {settings.VERIFY_DATABASE_URL} to a server "
            "and user that may create databases",
        )
    if source.major is not None and major < source.major:
        return warn(
            item,
            f"{where} is older than the source server (PostgreSQL {source.major}); restores "
            "of newer dumps into an older server can fail",
            f"point {settings.VERIFY_DATABASE_URL} at a PostgreSQL {source.major} or newer server",
        )
    return ok(item, f"{where}: connected, may create scratch databases")


def _tool(
    name: str, needed: int, bin_dir: str | None, purpose: str
) -> tuple[PgTool | None, Finding]:
    try:
        tool = find_tool(name, needed, bin_dir=bin_dir)
    except KarenOpsError:
        if bin_dir and not (Path(bin_dir).expanduser() / name).is_file():
            return None, fail(
                name,
                f"{settings.PG_BIN_DIR}={bin_dir} holds no {name}",
                f"point {settings.PG_BIN_DIR} at a PostgreSQL {needed} bin folder, or unset it",
            )
        return None, fail(
            name,
            f"no {name} {needed} or newer to {purpose} (found: {_found(name, bin_dir)})",
            f"install the PostgreSQL {needed} client tools (Debian: postgresql-client-{needed}) "
            f"or set {settings.PG_BIN_DIR} to a folder holding {name} {needed}",
        )
    return tool, ok(name, f"{tool.version} at {tool.path}, can {purpose}")


def _found(name: str, bin_dir: str | None) -> str:
    tools = list_tools(name, bin_dir=bin_dir)
    return ", ".join(f"{tool.version} at {tool.path}" for tool in tools) or "none"


def _embedded_data_dir() -> Path:
    return settings.ops_home() / "pgdata"


def _embedded_server_running() -> bool:
    pid_file = _embedded_data_dir() / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True
