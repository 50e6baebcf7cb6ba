"""Restoring a chosen backup into a target database, with guard rails for production.

A new database is created and filled. An existing database that holds tables is refused unless
``replace`` is asked for; then a safety backup of it is taken and pinned first, the backup is
restored into a fresh database beside it, and the two are swapped by renaming, so at every
moment one complete database carries the target's name and the original is never dropped.
Both are closed to new sessions for the swap and opened again after it.

If anything fails before the swap, a database this call created is dropped, and a target being
replaced keeps its name and contents and accepts sessions again; should reopening it fail too,
the error says so and gives the statement that reopens it. If the swap is done but reopening
fails, the restore stands: the error says so, names the previous database and the safety
backup, and gives the statements that reopen them. An existing empty target is never dropped,
so a failed restore can leave part of the backup in it.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from karen_ops.backups.archive import archive_version, fetch_archive, require_readable
from karen_ops.backups.compare import row_count_mismatches
from karen_ops.backups.dump import BackupRequest, take_backup
from karen_ops.backups.inventory import take_inventory
from karen_ops.backups.manifest import Manifest
from karen_ops.backups.swap import TARGET, said, swap_in
from karen_ops.backups.verify import restore_archive
from karen_ops.errors import DatabaseError, PgRestoreFailed, RestoreError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import describe_exit, find_tool
from karen_ops.resources.postgres import connect, server_major
from karen_ops.resources.store import BackupStore
from karen_ops.resources.store.catalog import pin

log = logging.getLogger(__name__)
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
    tables: int = 0  # counted after the restore, exactly as the manifest counted them
    rows: int = 0


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
        counted = (len(manifest.inventory.row_counts), manifest.inventory.total_rows)
        if state == "empty":
            _restore(archive, manifest, target, bin_dir, jobs, progress)
            return RestoreOutcome(target.dbname, False, None, None, *counted)
        if state == "missing":
            _create_database(maintenance, target.dbname)
            with _dropped_on_failure(maintenance, target.dbname):
                _restore(archive, manifest, target, bin_dir, jobs, progress)
            return RestoreOutcome(target.dbname, False, None, None, *counted)

        safety = _safety_backup(target, store, bin_dir)
        incoming = target.with_dbname(_side_name(target.dbname, "restore"))
        previous = _side_name(target.dbname, "previous")
        _create_database(maintenance, incoming.dbname)
        # After the swap the incoming name is gone, so nothing is left to drop, even when
        # opening the databases to sessions again fails.
        with _dropped_on_failure(maintenance, incoming.dbname):
            _restore(archive, manifest, incoming, bin_dir, jobs, progress)
            swap_in(maintenance, target.dbname, incoming.dbname, previous, safety.backup_id)
    return RestoreOutcome(target.dbname, True, previous, safety.folder, *counted)


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
    try:
        restore_archive(tool, archive, target, jobs=jobs, keep_ownership=True, progress=progress)
    except PgRestoreFailed as exc:
        raise RestoreError(
            f"could not restore backup {manifest.backup_id} into {target.describe()}: "
            f"{_pg_restore_errors(exc)}"
        ) from exc
    _require_manifest_counts(target, manifest)


def _require_manifest_counts(target: ConnInfo, manifest: Manifest) -> None:
    """Count the restored rows, as verification does, before anything relies on them: a
    restore that pg_restore calls done yet lacks rows must never be swapped into production."""
    try:
        with connect(target, setting=TARGET) as conn:
            mismatches = row_count_mismatches(manifest.inventory, take_inventory(conn))
    except psycopg.Error as exc:
        raise RestoreError(
            f"could not count the rows restored into {target.describe()}: {said(exc)}; restore "
            "as a role that may read every restored table (pg_read_all_data, say)"
        ) from exc
    if mismatches:
        shown = "; ".join(str(mismatch) for mismatch in mismatches[:5])
        raise RestoreError(
            f"backup {manifest.backup_id} restored into {target.describe()} does not hold the "
            f"rows its manifest counted ({len(mismatches)} table(s) differ: {shown}); it was "
            f"not put to use: choose another backup, or verify this one "
            f"(backup_verification) to see why"
        )


def _pg_restore_errors(failed: PgRestoreFailed) -> str:
    """pg_restore's own error lines, on one line; without any, how it ended and its last word.

    Left out: the SQL it quotes after an error ("Command was: ..." and the lines of the
    statement that follow), which can carry a secret such as a subscription's connection
    string or a user mapping's password.
    """
    marker = "pg_restore: error:"
    lines = failed.output.splitlines()
    errors = [line[line.index(marker) :] for line in lines if marker in line]
    if errors:
        return " ".join(" ".join(e.split()) for e in errors)
    # No error line: pg_restore died without a word, killed by a signal (the out-of-memory
    # killer, an operator) or crashed, so its exit status is the best clue left.
    last = _quotable_lines(failed.output)[-1:]
    said = f"; its last output: {' '.join(last[0].split())}" if last else ""
    return (
        f"{describe_exit('pg_restore', failed.returncode)} without reporting an error{said}; "
        "look in the system log for the cause (an out-of-memory kill is logged there) and run "
        "the restore again"
    )


def _quotable_lines(output: str) -> list[str]:
    """pg_restore's own messages in its output, never the SQL it quotes.

    Only lines that pg_restore starts with its name count: the SQL after "Command was:" runs
    over any number of lines, and the report keeps the output's tail, which may begin in the
    middle of such a statement.
    """
    return [line for line in output.splitlines() if line.lstrip().startswith("pg_restore:")]


def _safety_backup(target: ConnInfo, store: BackupStore, bin_dir: str | None) -> Manifest:
    now = datetime.now(UTC)
    request = BackupRequest(target, store, partition=f"{now:%Y-%m-%d}", bin_dir=bin_dir)
    manifest = take_backup(request, log)
    pin(store, manifest.folder, f"safety backup before restore at {now:%Y-%m-%d %H:%M} UTC", now)
    return manifest


def _create_database(maintenance: ConnInfo, name: str) -> None:
    with connect(maintenance, setting=TARGET, autocommit=True) as conn:
        try:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
        except psycopg.errors.InsufficientPrivilege as exc:
            raise RestoreError(
                f"could not create database {name} on {maintenance.server()}: {said(exc)}; "
                f"restore as a role that may create databases, or ALTER ROLE {conn.info.user} "
                "CREATEDB"
            ) from exc


@contextmanager
def _dropped_on_failure(maintenance: ConnInfo, name: str) -> Iterator[None]:
    """Drop database ``name`` if the block fails; only ever given one this call created.

    A half-filled database would otherwise refuse the next attempt ("already holds tables"),
    or linger beside the target as a full-size copy.
    """
    try:
        yield
    except BaseException:
        _drop_own(maintenance, name)
        raise


def _side_name(name: str, role: str) -> str:
    suffix = f"_{role}_{datetime.now(UTC):%Y%m%d%H%M%S}_{secrets.token_hex(2)}"
    return name[: 63 - len(suffix)] + suffix


def _drop_own(maintenance: ConnInfo, name: str) -> None:
    try:
        with connect(maintenance, setting=TARGET, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    except (psycopg.Error, DatabaseError) as exc:
        # Logged rather than raised: the error that made the drop necessary is the one to show.
        log.error(
            "could not drop database %s after the failed restore: %s; drop it by hand", name, exc
        )
