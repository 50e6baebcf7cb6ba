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
import re
import secrets
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from karen_ops.backups.archive import archive_version, fetch_archive, require_readable
from karen_ops.backups.dump import BackupRequest, take_backup
from karen_ops.backups.manifest import Manifest
from karen_ops.backups.verify import restore_archive
from karen_ops.errors import DatabaseError, RestoreError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import find_tool
from karen_ops.resources.postgres import connect, server_major
from karen_ops.resources.store import BackupStore
from karen_ops.resources.store.catalog import pin

log = logging.getLogger(__name__)
TARGET = "the restore target"
# Processes on a database that this role may not end, following pg_terminate_backend's rules:
# a superuser may end any; others may end sessions of roles whose privileges they have, or with
# pg_signal_backend those of any non-superuser. A process that runs as no role (NULL usesysid:
# an autovacuum worker, or a background worker an extension started without one) counts as a
# superuser's, since it may matter as much, so only a superuser may end it; PostgreSQL 18 adds
# the pg_signal_autovacuum_worker role, whose members may end autovacuum workers too (when
# they may also see backend_type, which pg_stat_activity shows only to pg_read_all_stats).
_SESSIONS_OUT_OF_REACH = """
WITH caller AS (
  SELECT rolsuper AS superuser,
         pg_has_role('pg_signal_backend', 'USAGE') AS ends_sessions,
         coalesce((SELECT pg_has_role(oid, 'USAGE') FROM pg_roles
                   WHERE rolname = 'pg_signal_autovacuum_worker'), false) AS ends_autovacuum
  FROM pg_roles WHERE rolname = current_user
)
SELECT DISTINCT a.usesysid IS NULL AS roleless,
       CASE WHEN a.usesysid IS NULL THEN a.backend_type
            ELSE coalesce(r.rolname, 'a dropped role (OID ' || a.usesysid || ')') END AS holder
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid CROSS JOIN caller c
WHERE a.datname = %s AND a.pid <> pg_backend_pid() AND NOT c.superuser
  AND CASE
    WHEN a.usesysid IS NULL
      THEN NOT (coalesce(a.backend_type = 'autovacuum worker', false) AND c.ends_autovacuum)
    WHEN r.rolsuper THEN true
    ELSE NOT (c.ends_sessions OR coalesce(pg_has_role(r.oid, 'USAGE'), false))
  END
ORDER BY 1, 2
"""
# How verify.restore_archive reports a failed pg_restore, before the output it quotes.
_EXIT_STATUS = re.compile(r"\(exit status (-?\d+)\):?")
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
        if state == "empty":
            _restore(archive, manifest, target, bin_dir, jobs, progress)
            return RestoreOutcome(target.dbname, False, None, None)
        if state == "missing":
            _create_database(maintenance, target.dbname)
            with _dropped_on_failure(maintenance, target.dbname):
                _restore(archive, manifest, target, bin_dir, jobs, progress)
            return RestoreOutcome(target.dbname, False, None, None)

        safety = _safety_backup(target, store, bin_dir)
        incoming = target.with_dbname(_side_name(target.dbname, "restore"))
        previous = _side_name(target.dbname, "previous")
        _create_database(maintenance, incoming.dbname)
        # After the swap the incoming name is gone, so nothing is left to drop, even when
        # opening the databases to sessions again fails.
        with _dropped_on_failure(maintenance, incoming.dbname):
            _restore(archive, manifest, incoming, bin_dir, jobs, progress)
            _swap(maintenance, target.dbname, incoming.dbname, previous, safety.backup_id)
    return RestoreOutcome(target.dbname, True, previous, safety.folder)


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
    except RestoreError as exc:
        raise RestoreError(
            f"could not restore backup {manifest.backup_id} into {target.describe()}: "
            f"{_pg_restore_errors(str(exc))}"
        ) from exc


def _pg_restore_errors(report: str) -> str:
    """pg_restore's own error lines, on one line; without any, how it ended and its last word.

    Left out: the SQL it quotes after an error ("Command was: ..." and the lines of the
    statement that follow), which can carry a secret such as a subscription's connection
    string or a user mapping's password.
    """
    marker = "pg_restore: error:"
    errors = [line[line.index(marker) :] for line in report.splitlines() if marker in line]
    if errors:
        return " ".join(" ".join(e.split()) for e in errors)
    # No error line: pg_restore died without a word, killed by a signal (the out-of-memory
    # killer, an operator) or crashed, so its exit status is the best clue left.
    status, output = _exit_status_and_output(report)
    last = _quotable_lines(output)[-1:]
    said = f"; its last output: {' '.join(last[0].split())}" if last else ", writing nothing"
    return (
        f"{_ended(status)} without reporting an error{said}; look in the system log for the "
        "cause (an out-of-memory kill is logged there) and run the restore again"
    )


def _exit_status_and_output(report: str) -> tuple[int | None, str]:
    """The exit status and the output in verify.restore_archive's report of a failed run."""
    found = _EXIT_STATUS.search(report)
    if found is None:
        return None, report
    return int(found.group(1)), report[found.end() :]


def _quotable_lines(output: str) -> list[str]:
    """Non-blank lines of pg_restore's output, without any SQL it quotes."""
    lines: list[str] = []
    quoting = False
    for line in output.splitlines():
        if line.lstrip().startswith("Command was:"):
            quoting = True  # the statement can run over several lines, up to the next message
        elif line.startswith("pg_restore:"):
            quoting = False
        if line.strip() and not quoting:
            lines.append(line)
    return lines


def _ended(status: int | None) -> str:
    if status is None:
        return "pg_restore failed"
    if status < 0:
        # subprocess reports death by a signal as the negated signal number.
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = "unknown signal"
        return f"pg_restore was killed by signal {-status} ({name})"
    return f"pg_restore exited with status {status}"


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
                f"could not create database {name} on {maintenance.server()}: {_said(exc)}; "
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


def _swap(maintenance: ConnInfo, target: str, incoming: str, previous: str, safety: str) -> None:
    """Rename target aside and incoming into its place, in one transaction.

    Both are closed to new sessions for the swap and opened again afterwards, whether it
    worked or not; if it did not, the target still has its name and its contents. If it did
    but they cannot be opened again, the error says the swap is done, where the original and
    its safety backup are, and how to open them.
    """
    with connect(maintenance, setting=TARGET, autocommit=True) as conn:
        closed: dict[int, str] = {}  # OID to the name each should have now
        try:
            # All or nothing: no session is ended when one of them is out of this role's reach.
            _require_sessions_in_reach(conn, (incoming, target))
            for name in (incoming, target):
                # New sessions are refused first, so none can slip in before the rename.
                closed[_close_to_new_sessions(conn, name)] = name
                _end_sessions(conn, name)
            _wait_until_unused(conn, (target, incoming))
            _rename_both(conn, (target, previous), (incoming, target))
        except BaseException as exc:
            refusing = _reopen(conn, closed)
            if refusing:
                raise RestoreError(_still_closed(refusing)) from exc
            raise
        renamed = {incoming: target, target: previous}
        refusing = _reopen(conn, {oid: renamed[name] for oid, name in closed.items()})
    if refusing:
        raise RestoreError(
            f"the restored copy was swapped in, but {_still_closed(refusing)}. The swap is done: "
            f"{target} holds the restored backup, the previous database is kept as {previous}, "
            f"and the safety backup {safety} is pinned"
        )


def _close_to_new_sessions(conn: psycopg.Connection, name: str) -> int:
    """Refuse new sessions on database ``name``; its OID, to open it again after a rename."""
    oid = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()[0]
    try:
        _allow_connections(conn, name, allowed=False)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RestoreError(
            f"could not close database {name} to new sessions for the swap: {_said(exc)}; "
            f"restore as its owner, or make {conn.info.user} the owner "
            f"(ALTER DATABASE {name} OWNER TO {conn.info.user})"
        ) from exc
    return oid


def _require_sessions_in_reach(conn: psycopg.Connection, names: tuple[str, ...]) -> None:
    """Refuse, before any is ended, sessions and processes this role may not end."""
    for name in names:
        rows = conn.execute(_SESSIONS_OUT_OF_REACH, (name,)).fetchall()
        if rows:
            roles = [holder for roleless, holder in rows if not roleless]
            processes = [holder for roleless, holder in rows if roleless]
            raise RestoreError(_out_of_reach(conn.info.user, name, roles, processes))


def _out_of_reach(user: str, name: str, roles: list[str], processes: list[str | None]) -> str:
    held: list[str] = []
    remedies: list[str] = []
    if roles:
        held.append(f"sessions of {', '.join(roles)}")
        remedies.append(
            f"close them (see pg_stat_activity), or GRANT pg_signal_backend TO {user} "
            "(only a superuser can end a superuser's sessions)"
        )
    if processes:
        held.append(" and ".join(_process(kind) for kind in processes))
        them = "it" if len(processes) == 1 and not roles else "them"
        remedies.append(
            f"wait for {them} to finish (see pg_stat_activity), or restore as a superuser "
            "(only a superuser can end a process that runs as no role)"
        )
    verb = "is" if not roles and len(processes) == 1 else "are"
    return (
        f"could not end the sessions on database {name}: {' and '.join(held)} {verb} out of "
        f"{user}'s reach; {'; '.join(remedies)}"
    )


def _process(kind: str | None) -> str:
    """'an autovacuum worker', 'a parallel worker': a backend_type as a noun phrase.

    pg_stat_activity shows the type of another role's process only to superusers and members
    of pg_read_all_stats; without it, the process is still one that runs as no role.
    """
    if kind is None:
        return "an autovacuum worker or other background process"
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


def _end_sessions(conn: psycopg.Connection, name: str) -> None:
    try:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
    except psycopg.errors.InsufficientPrivilege as exc:
        # A session that started after the check above, of a role out of reach.
        raise RestoreError(
            f"could not end the sessions on database {name}: {_said(exc)}; close them "
            f"(see pg_stat_activity), or GRANT pg_signal_backend TO {conn.info.user} "
            "(only a superuser can end a superuser's sessions)"
        ) from exc


def _wait_until_unused(conn: psycopg.Connection, names: tuple[str, ...]) -> None:
    # pg_terminate_backend only signals; sessions take a moment to leave.
    for _ in range(100):
        left = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(%s)", (list(names),)
        ).fetchone()[0]
        if not left:
            return
        time.sleep(0.1)
    raise RestoreError(
        f"sessions on database {' and '.join(names)} did not end within 10 s of being told to; "
        "find them in pg_stat_activity, close them and try again"
    )


def _rename_both(conn: psycopg.Connection, *renames: tuple[str, str]) -> None:
    try:
        with conn.transaction():
            for old, new in renames:
                _rename(conn, old, new)
    except psycopg.Error as exc:
        raise RestoreError(
            f"could not swap the restored copy in by renaming: {_said(exc)}; restore as the "
            "target's owner, with a role that may create databases"
        ) from exc


def _reopen(conn: psycopg.Connection, closed: dict[int, str]) -> list[tuple[str, str]]:
    """Accept sessions again on the databases closed for the swap, looked up by OID as a rename
    whose outcome is unknown (a lost connection) leaves their names in doubt.

    Each is tried even when one fails; those still refusing sessions come back with the reason.
    """
    refusing: list[tuple[str, str]] = []
    for oid, expected in closed.items():
        name = expected  # the best guess while the server cannot be asked
        try:
            found = conn.execute("SELECT datname FROM pg_database WHERE oid = %s", (oid,))
            row = found.fetchone()
            if row is None:
                continue  # dropped: nothing to reopen
            name = row[0]
            _allow_connections(conn, name, allowed=True)
        except psycopg.Error as exc:
            refusing.append((name, _said(exc)))
    return refusing


def _still_closed(refusing: list[tuple[str, str]]) -> str:
    why = "; ".join(
        f"database {name} still refuses new sessions: {cause}" for name, cause in refusing
    )
    fix = " and ".join(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true" for name, _ in refusing)
    return f"{why}; as its owner, run {fix}"


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


def _rename(conn: psycopg.Connection, old: str, new: str) -> None:
    conn.execute(
        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
    )


def _said(exc: psycopg.Error) -> str:
    """PostgreSQL's message and its detail, on one line."""
    message, detail = exc.diag.message_primary or str(exc), exc.diag.message_detail
    return f"{message} ({detail})" if detail else message


def _allow_connections(conn: psycopg.Connection, name: str, *, allowed: bool) -> None:
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(name), sql.SQL("true" if allowed else "false")
            )
        )
