"""Scratch databases for verification restores: created, marked, and dropped only if marked.

Every scratch database gets a comment naming karen-ops and the backup it holds. A database is
dropped only when its name has the scratch prefix and its comment carries that mark, so a
misconfigured name can never drop a database karen-ops did not create.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from karen_ops.errors import RestoreError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.postgres import connect
from karen_ops.settings import VERIFY_DATABASE_URL

log = logging.getLogger(__name__)

SCRATCH_PREFIX = "karen_verify_"
# A verification restore of any size ends well within this; older unused scratch databases
# belong to verifications that died.
ABANDONED_AFTER = timedelta(hours=6)
MARK = "karen-ops scratch restore"
_MAX_IDENTIFIER = 63


def scratch_name(source_database: str, backup_id: str) -> str:
    """A fresh, recognisable name: ``karen_verify_<db>_<backup id>_<random>``."""
    suffix = f"_{backup_id.lower().replace('-', '_')}_{secrets.token_hex(3)}"
    room = _MAX_IDENTIFIER - len(SCRATCH_PREFIX) - len(suffix)
    return f"{SCRATCH_PREFIX}{source_database[:room]}{suffix}"


@contextmanager
def scratch_database(server: ConnInfo, source: ConnInfo, backup_id: str) -> Iterator[ConnInfo]:
    """Create a marked scratch database on ``server``; drop it however the block ends."""
    name = scratch_name(source.dbname, backup_id)
    target = server.with_dbname(name)
    if target.server() == source.server() and name == source.dbname:
        raise RestoreError(f"refusing to restore over the source database {source.describe()}")

    with connect(server, setting=VERIFY_DATABASE_URL, autocommit=True) as conn:
        drop_abandoned_scratch_databases(conn, datetime.now(UTC) - ABANDONED_AFTER)
        try:
            _create(conn, name, backup_id)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise RestoreError(
                f"could not create a scratch database on {server.server()}: {exc}; grant "
                f"CREATEDB to the role, or set {VERIFY_DATABASE_URL} to a server where it may"
            ) from exc
    try:
        yield target
    finally:
        with connect(server, setting=VERIFY_DATABASE_URL, autocommit=True) as conn:
            drop_scratch_database(conn, name)


def _create(conn: psycopg.Connection, name: str, backup_id: str) -> None:
    # template0: a restore must start from an empty database, whatever template1 holds.
    conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    created = datetime.now(UTC).isoformat()
    conn.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(name), sql.Literal(f"{MARK} of backup {backup_id} at {created}")
        )
    )
    log.info("scratch database created name=%s", name)


def drop_abandoned_scratch_databases(
    conn: psycopg.Connection, created_before: datetime
) -> list[str]:
    """Drop scratch databases left by verifications that died (a killed worker, a lost host).

    A scratch database is abandoned when it carries the mark, was created before
    ``created_before`` and no session uses it; a verification still running always has one.
    """
    rows = conn.execute(
        "SELECT d.datname, shobj_description(d.oid, 'pg_database') FROM pg_database d "
        "WHERE d.datname LIKE %s AND NOT EXISTS "
        "(SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
        (SCRATCH_PREFIX.replace("_", "\\_") + "%",),
    ).fetchall()
    dropped = []
    for name, comment in rows:
        created = _created_at(comment or "")
        if created is not None and created < created_before and drop_scratch_database(conn, name):
            log.warning("dropped abandoned scratch database name=%s created=%s", name, created)
            dropped.append(name)
    return dropped


def _created_at(comment: str) -> datetime | None:
    if not comment.startswith(MARK) or " at " not in comment:
        return None
    try:
        return datetime.fromisoformat(comment.rsplit(" at ", 1)[1])
    except ValueError:
        return None


def drop_scratch_database(conn: psycopg.Connection, name: str) -> bool:
    """Drop ``name`` if karen-ops created it, disconnecting any session that holds it."""
    comment = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        (name,),
    ).fetchone()
    if comment is None:
        return False
    if not name.startswith(SCRATCH_PREFIX) or not (comment[0] or "").startswith(MARK):
        raise RestoreError(
            f"refusing to drop database {name}: karen-ops did not create it (no '{MARK}' comment)"
        )
    # FORCE (PostgreSQL 13+) ends sessions still connected, e.g. a stuck pg_restore worker.
    conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    log.info("scratch database dropped name=%s", name)
    return True
