"""wal_archive's work: switch an idle segment out, then prove the archive whole and current."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import psycopg

from karen_ops.pitr import walstore
from karen_ops.pitr.basemanifest import BaseManifest
from karen_ops.pitr.continuity import Continuity, check_continuity
from karen_ops.pitr.server import read_server_wal, switch_segment, wait_until_archived
from karen_ops.pitr.walnames import WalKind, parse_wal_name
from karen_ops.resources.store import BackupStore


@dataclass(frozen=True)
class ArchiveStatus:
    base_backup_id: str
    continuity: Continuity
    switched_segment: str | None  # closed by this run because the server had been idle
    newest_archived: str | None
    newest_pushed_at: datetime | None
    lag_segments: int  # complete segments on the server not yet in the archive
    lag_seconds: float  # how long the oldest of them has waited (0 when none)


def archive_status(
    conn: psycopg.Connection,
    store: BackupStore,
    cluster: str,
    base: BaseManifest,
    *,
    idle_seconds: float,
    wait_seconds: float,
    log: logging.Logger,
) -> ArchiveStatus:
    state = read_server_wal(conn)
    switched = None
    idle = state.last_archived_at is None or (
        (state.now - state.last_archived_at).total_seconds() > idle_seconds
    )
    if idle:
        switched = switch_segment(conn)
        archived = wait_until_archived(conn, switched, wait_seconds)
        log.info("switched idle WAL segment=%s archived=%s", switched, archived)
        state = read_server_wal(conn)

    continuity = check_continuity(
        store,
        cluster,
        start_timeline=base.timeline,
        start_lsn=base.start_lsn,
        target_timeline=state.timeline,
        segment_bytes=state.segment_bytes,
    )
    newest = _newest_segment(store, cluster, state.timeline, state.segment_bytes)
    newest_segno = parse_wal_name(newest).segno(state.segment_bytes) if newest else -1
    lag_segments = max(0, state.current_segno - 1 - newest_segno)
    pushed_at = None
    if newest is not None:
        sidecar = walstore.read_sidecar(store, cluster, parse_wal_name(newest))
        pushed_at = datetime.fromisoformat(sidecar.pushed_at) if sidecar else None
    lag_seconds = 0.0
    if lag_segments and state.last_archived_at is not None:
        lag_seconds = (state.now - state.last_archived_at).total_seconds()
    elif lag_segments:
        lag_seconds = float("inf")
    return ArchiveStatus(
        base_backup_id=base.backup_id,
        continuity=continuity,
        switched_segment=switched,
        newest_archived=newest,
        newest_pushed_at=pushed_at,
        lag_segments=lag_segments,
        lag_seconds=lag_seconds,
    )


def _newest_segment(
    store: BackupStore, cluster: str, timeline: int, segment_bytes: int
) -> str | None:
    names = [
        name
        for name in walstore.archived_names(store, cluster)
        if parse_wal_name(name).kind is WalKind.SEGMENT
        and parse_wal_name(name).timeline == timeline
    ]
    return max(names, default=None)
