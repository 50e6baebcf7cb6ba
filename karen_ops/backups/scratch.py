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

import psycopg
from psycopg import sql

from karen_ops.errors import RestoreError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.postgres import connect
from karen_ops.settings import VERIFY_DATABASE_URL

log = logging.getLogger(__name__)

SCRATCH_PREFIX = "karen_verify_"
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
        _create(conn, name, backup_id)
    try:
        yield target
    finally:
        with connect(server, setting=VERIFY_DATABASE_URL, autocommit=True) as conn:
            drop_scratch_database(conn, name)


def _create(conn: psycopg.Connection, name: str, backup_id: str) -> None:
    # template0: a restore must start from an empty database, whatever template1 holds.
    conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    conn.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(name), sql.Literal(f"{MARK} of backup {backup_id}")
        )
    )
    log.info("scratch database created name=%s", name)


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
