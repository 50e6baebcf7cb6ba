"""Swapping a restored copy into a target database's place, by renaming both in one
transaction: closing them to new sessions, ending the sessions this role may end (and refusing,
before ending any, when one is out of its reach), renaming, and opening them again whatever
happened, with an error that says where things stand when that last step fails.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from karen_ops.errors import DatabaseError, RestoreError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.postgres import connect

# How connection errors name the server being restored into.
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


def swap_in(maintenance: ConnInfo, target: str, incoming: str, previous: str, safety: str) -> None:
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
            # On a connection of its own: the swap's may be the very thing that failed.
            refusing = _reopen_anew(maintenance, closed)
            if refusing:
                raise RestoreError(f"{_cause(exc)}; and {_still_closed(refusing)}") from exc
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
            f"could not close database {name} to new sessions for the swap: {said(exc)}; "
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
            f"could not end the sessions on database {name}: {said(exc)}; close them "
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
            f"could not swap the restored copy in by renaming: {said(exc)}; restore as the "
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
            refusing.append((name, said(exc)))
    return refusing


def _reopen_anew(maintenance: ConnInfo, closed: dict[int, str]) -> list[tuple[str, str]]:
    """``_reopen`` on a fresh connection; every database still closed when none can be had."""
    try:
        with connect(maintenance, setting=TARGET, autocommit=True) as conn:
            return _reopen(conn, closed)
    except (psycopg.Error, DatabaseError) as exc:
        return [(name, f"could not connect to reopen it: {exc}") for name in closed.values()]


def _cause(exc: BaseException) -> str:
    if isinstance(exc, psycopg.Error):
        return f"the swap failed: {said(exc)}"
    return str(exc) or type(exc).__name__


def _still_closed(refusing: list[tuple[str, str]]) -> str:
    why = "; ".join(
        f"database {name} still refuses new sessions: {cause}" for name, cause in refusing
    )
    fix = " and ".join(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true" for name, _ in refusing)
    return f"{why}; as its owner, run {fix}"


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


def said(exc: psycopg.Error) -> str:
    """PostgreSQL's message and its detail, on one line."""
    message, detail = exc.diag.message_primary or str(exc), exc.diag.message_detail
    return f"{message} ({detail})" if detail else message
