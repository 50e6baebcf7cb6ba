"""Restoring a chosen backup into a target database, with guard rails for production.

A new database is created and filled. An existing database that holds tables is refused unless
``replace`` is asked for; then a safety backup of it is taken and pinned first, the backup is
restored into a fresh database beside it, and the two are swapped by renaming, so at every
moment one complete database carries the target's name and the original is never dropped.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from karen_ops.backups.archive import archive_version, fetch_archive, require_readable
from karen_ops.backups.dump import BackupRequest, take_backup
from karen_ops.backups.manifest import Manifest
from karen_ops.backups.verify import restore_archive
from karen_ops.errors import RestoreError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import find_tool
from karen_ops.resources.postgres import connect, server_major
from karen_ops.resources.store import BackupStore
from karen_ops.resources.store.catalog import pin

log = logging.getLogger(__name__)
TARGET = "the restore target"
_USER_TABLES = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
"""


@dataclass(frozen=True)
class RestoreOutcome:
    target: str
    replaced: bool
    previous_database: str | None  # the original, renamed aside, when one was replaced
    safety_backup: str | None


def restore_backup(
    manifest: Manifest,
    store: BackupStore,
    target: ConnInfo,
    *,
    replace: bool = False,
    bin_dir: str | None = None,
    jobs: int = 2,
    progress: Callable[[str], None] | None = None,
) -> RestoreOutcome:
    maintenance = target.with_dbname("postgres")
    state = _target_state(maintenance, target)
    if state == "full" and not replace:
        raise RestoreError(
            f"refusing to restore into {target.describe()}: it already holds tables; "
            "restore into a new database name, or pass --replace to swap it out after a "
            "safety backup"
        )

    with tempfile.TemporaryDirectory(prefix="karen-restore-") as work:
        archive = _fetch(store, manifest, Path(work))
        if state != "full":
            if state == "missing":
                _create_database(maintenance, target.dbname)
            _restore(archive, manifest, target, bin_dir, jobs, progress)
            return RestoreOutcome(target.dbname, False, None, None)

        safety = _safety_backup(target, store, bin_dir)
        incoming = target.with_dbname(_side_name(target.dbname, "restore"))
        _create_database(maintenance, incoming.dbname)
        try:
            _restore(archive, manifest, incoming, bin_dir, jobs, progress)
        except BaseException:
            _drop_own(maintenance, incoming.dbname)  # created just now, by this restore
            raise
        previous = _side_name(target.dbname, "previous")
        _swap(maintenance, target.dbname, incoming.dbname, previous)
    return RestoreOutcome(target.dbname, True, previous, safety)


def _target_state(maintenance: ConnInfo, target: ConnInfo) -> str:
    """'missing', 'empty' or 'full'."""
    with connect(maintenance, setting=TARGET, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (target.dbname,)
        ).fetchone()
    if not exists:
        return "missing"
    with connect(target, setting=TARGET) as conn:
        tables = conn.execute(_USER_TABLES).fetchone()[0]
    return "full" if tables else "empty"


def _fetch(store: BackupStore, manifest: Manifest, work: Path) -> Path:
    fetched = fetch_archive(store, manifest, work / "archive.dump")
    location = store.location(manifest.archive_key)
    if not fetched.matches(manifest):
        raise RestoreError(
            f"refusing to restore {location}: its SHA-256 {fetched.sha256} is not the "
            f"manifest's {manifest.sha256}; choose another backup"
        )
    if fetched.decode_error:
        raise RestoreError(f"cannot read archive {location}: {fetched.decode_error}")
    return fetched.path


def _restore(
    archive: Path,
    manifest: Manifest,
    target: ConnInfo,
    bin_dir: str | None,
    jobs: int,
    progress: Callable[[str], None] | None,
) -> None:
    with connect(target, setting=TARGET) as conn:
        needed = max(server_major(conn), manifest.pg_dump_major)
    tool = find_tool("pg_restore", needed, bin_dir=bin_dir)
    version = archive_version(archive, location=manifest.archive_key)
    require_readable(version, tool.major, manifest=manifest, location=manifest.archive_key)
    restore_archive(tool, archive, target, jobs=jobs, keep_ownership=True, progress=progress)


def _safety_backup(target: ConnInfo, store: BackupStore, bin_dir: str | None) -> str:
    now = datetime.now(UTC)
    request = BackupRequest(target, store, partition=f"{now:%Y-%m-%d}", bin_dir=bin_dir)
    manifest = take_backup(request, log)
    pin(store, manifest.folder, f"safety backup before restore at {now:%Y-%m-%d %H:%M} UTC", now)
    return manifest.folder


def _create_database(maintenance: ConnInfo, name: str) -> None:
    with connect(maintenance, setting=TARGET, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))


def _side_name(name: str, role: str) -> str:
    suffix = f"_{role}_{datetime.now(UTC):%Y%m%d%H%M%S}_{secrets.token_hex(2)}"
    return name[: 63 - len(suffix)] + suffix


def _swap(maintenance: ConnInfo, target: str, incoming: str, previous: str) -> None:
    """Rename target aside and incoming into its place, in one transaction."""
    with connect(maintenance, setting=TARGET, autocommit=True) as conn:
        for name in (target, incoming):
            # New sessions are refused first, so none can slip in before the rename.
            _allow_connections(conn, name, allowed=False)
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        _wait_until_unused(conn, (target, incoming))
        try:
            with conn.transaction():
                _rename(conn, target, previous)
                _rename(conn, incoming, target)
        finally:
            for name in (target, previous, incoming):
                _allow_connections(conn, name, allowed=True)


def _wait_until_unused(conn: psycopg.Connection, names: tuple[str, ...]) -> None:
    # pg_terminate_backend only signals; sessions take a moment to leave.
    for _ in range(100):
        left = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(%s)", (list(names),)
        ).fetchone()[0]
        if not left:
            return
        time.sleep(0.1)
    raise RestoreError(f"sessions on {', '.join(names)} did not end within 10 s; try again")


def _drop_own(maintenance: ConnInfo, name: str) -> None:
    with connect(maintenance, setting=TARGET, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _rename(conn: psycopg.Connection, old: str, new: str) -> None:
    conn.execute(
        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
    )


def _allow_connections(conn: psycopg.Connection, name: str, *, allowed: bool) -> None:
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(name), sql.SQL("true" if allowed else "false")
            )
        )
