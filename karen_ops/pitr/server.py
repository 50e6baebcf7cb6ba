"""What the live server says about its WAL: position, timeline, and how its archiver is doing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import psycopg

from karen_ops.errors import PitrError
from karen_ops.pitr.walnames import parse_wal_name

_STATE = """
SELECT pg_walfile_name(pg_current_wal_lsn()),
       pg_current_wal_lsn()::text,
       pg_size_bytes(current_setting('wal_segment_size')),
       a.last_archived_wal, a.last_archived_time,
       a.last_failed_wal, a.last_failed_time,
       now()
FROM pg_stat_archiver a
"""


@dataclass(frozen=True)
class ServerWal:
    """The server's WAL position and archiver statistics, read in one statement."""

    current_segment: str  # being written now; archived only once it is complete
    current_lsn: str
    segment_bytes: int
    last_archived_wal: str | None
    last_archived_at: datetime | None
    last_failed_wal: str | None
    last_failed_at: datetime | None
    now: datetime

    @property
    def timeline(self) -> int:
        return parse_wal_name(self.current_segment).timeline

    @property
    def current_segno(self) -> int:
        return parse_wal_name(self.current_segment).segno(self.segment_bytes)


def read_server_wal(conn: psycopg.Connection) -> ServerWal:
    row = conn.execute(_STATE).fetchone()
    return ServerWal(*row)


def switch_segment(conn: psycopg.Connection) -> str:
    """Close the current segment so the archiver takes it; return its name."""
    try:
        return conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
    except psycopg.errors.InsufficientPrivilege as exc:
        raise PitrError(
            "could not switch to a new WAL segment: permission denied for pg_switch_wal(); "
            "GRANT EXECUTE ON FUNCTION pg_switch_wal() TO the karen-ops role"
        ) from exc


def wait_until_archived(conn: psycopg.Connection, segment: str, timeout: float) -> bool:
    """Wait until pg_stat_archiver has archived ``segment`` (or a later one)."""
    deadline = time.monotonic() + timeout
    while True:
        last = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
        if last is not None and last[:24] >= segment:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
