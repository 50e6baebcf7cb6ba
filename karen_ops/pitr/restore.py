"""Point-in-time restore: a base backup plus archived WAL, recovered into a new data folder.

The newest base backup that was consistent before the target is unpacked into the target
folder with recovery settings: WAL comes through ``karen-ops wal-fetch``, recovery stops at the
target time or position, then pauses (read-only, for inspection) or promotes (a writable
server on a new timeline). Guard rails: an existing non-empty folder is only ever moved aside
(``replace``), never deleted, and a target the backups cannot reach is refused up front:
before the oldest base backup ended, or after the newest archived WAL segment.
"""

from __future__ import annotations

import enum
import logging
import os
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from karen_ops.errors import PitrError
from karen_ops.pitr import walstore
from karen_ops.pitr.basemanifest import BaseManifest, list_base_backups
from karen_ops.pitr.instance import TemporaryServer, prepare_recovery, server_binaries
from karen_ops.pitr.unpack import unpack_base_backup
from karen_ops.pitr.walnames import WalKind, format_lsn, parse_lsn, parse_wal_name
from karen_ops.resources.store import BackupStore


class TargetAction(enum.Enum):
    """What the recovered server does once it reaches the target."""

    PAUSE = "pause"  # stops replaying, read-only, until pg_wal_replay_resume() promotes it
    PROMOTE = "promote"  # ends recovery and opens for writes on a new timeline


@dataclass(frozen=True)
class RestoreRequest:
    store: BackupStore
    cluster: str
    target_dir: Path
    restore_command: list[str]  # the karen-ops the server runs; 'wal-fetch %f %p' is appended
    to_time: datetime | None = None
    to_lsn: str | None = None
    action: TargetAction = TargetAction.PAUSE
    replace: bool = False
    # Keep the backed-up server's archive settings: a promoted copy then archives its new
    # timeline into the same store. Off by default, so a restored copy stays out of the archive.
    archive: bool = False
    port: int | None = None


@dataclass(frozen=True)
class RestorePlan:
    base: BaseManifest
    newest_wal: str  # the newest archived segment: recovery cannot go past its end
    newest_wal_pushed_at: datetime
    newest_wal_end_lsn: str

    def describe(self) -> str:
        return (
            f"base backup {self.base.backup_id} (taken {self.base.created_at}, consistent at "
            f"{self.base.end_lsn} on timeline {self.base.timeline}) with WAL from "
            f"{self.base.start_wal_file} to at most {self.newest_wal} (archived "
            f"{self.newest_wal_pushed_at.isoformat()})"
        )


@dataclass(frozen=True)
class RestoreOutcome:
    plan: RestorePlan
    target_dir: Path
    moved_aside: Path | None


def plan_restore(
    store: BackupStore, cluster: str, *, to_time: datetime | None, to_lsn: str | None
) -> RestorePlan:
    """The base backup and WAL that reach the target, or a PitrError saying why none can."""
    if (to_time is None) == (to_lsn is None):
        raise PitrError("give exactly one recovery target: a time or a WAL position")
    backups = [manifest for manifest, _ in list_base_backups(store, cluster)]
    if not backups:
        raise PitrError(
            f"no base backup of cluster {cluster} in {store.url}; materialize "
            "postgres_base_backup first"
        )
    newest = _newest_segment(store, cluster)
    if newest is None:
        raise PitrError(f"the WAL archive of cluster {cluster} in {store.url} holds no segment")
    name, pushed_at, end_lsn = newest

    if to_time is not None:
        usable = [m for m in backups if datetime.fromisoformat(m.finished_at) <= to_time]
        if not usable:
            raise PitrError(
                f"cannot restore to {to_time.isoformat()}: it is before the oldest base backup "
                f"{backups[0].backup_id} was complete ({backups[0].finished_at}); pick a later "
                "time"
            )
        if to_time > pushed_at:
            raise PitrError(
                f"cannot restore to {to_time.isoformat()}: it is after the newest archived WAL "
                f"({name}, archived {pushed_at.isoformat()}); pick an earlier time, or switch "
                "the server to a new segment (SELECT pg_switch_wal()) and wait for it to be "
                "archived"
            )
    else:
        target = parse_lsn(to_lsn)
        usable = [m for m in backups if parse_lsn(m.end_lsn) <= target]
        if not usable:
            raise PitrError(
                f"cannot restore to position {to_lsn}: the oldest base backup "
                f"{backups[0].backup_id} is consistent only from {backups[0].end_lsn}"
            )
        if target > parse_lsn(end_lsn):
            raise PitrError(
                f"cannot restore to position {to_lsn}: the newest archived WAL ({name}) ends at "
                f"{end_lsn}; switch the server to a new segment (SELECT pg_switch_wal()) first"
            )
    return RestorePlan(usable[-1], name, pushed_at, end_lsn)


def restore(request: RestoreRequest, log: logging.Logger) -> RestoreOutcome:
    """Unpack the planned base backup into the target folder, ready to recover on start."""
    plan = plan_restore(
        request.store, request.cluster, to_time=request.to_time, to_lsn=request.to_lsn
    )
    moved = _clear_target(request.target_dir, request.replace)
    log.info("restoring %s into %s", plan.describe(), request.target_dir)
    unpack_base_backup(request.store, plan.base, request.target_dir)

    # This folder is meant to run as a real server, on the connection settings it was backed
    # up with: unlike a drill's, only the recovery settings are added.
    settings = {
        "restore_command": shlex.join([*request.restore_command, "wal-fetch"]) + " %f %p",
        "recovery_target_action": request.action.value,
    }
    if request.to_time is not None:
        settings["recovery_target_time"] = request.to_time.astimezone(UTC).isoformat(sep=" ")
    else:
        settings["recovery_target_lsn"] = request.to_lsn
    if not request.archive:
        settings["archive_mode"] = "off"
    if request.port is not None:
        settings["port"] = str(request.port)
    prepare_recovery(request.target_dir, settings, trust_socket=False)
    return RestoreOutcome(plan, request.target_dir, moved)


def _clear_target(target: Path, replace: bool) -> Path | None:
    """Make sure ``target`` is absent or empty; move a non-empty one aside when allowed."""
    if not target.exists():
        if not target.parent.is_dir():
            raise PitrError(f"cannot restore into {target}: {target.parent} does not exist")
        return None
    if not target.is_dir():
        raise PitrError(f"cannot restore into {target}: it is a file, not a folder")
    if not any(target.iterdir()):
        return None
    if not replace:
        raise PitrError(
            f"refusing to restore into {target}: the folder is not empty; choose a new "
            "--target-dir, or pass --replace to move the existing folder aside (it is never "
            "deleted)"
        )
    if (target / "postmaster.pid").exists():
        raise PitrError(
            f"refusing to replace {target}: postmaster.pid says a server may be running on "
            f"it; stop it first (pg_ctl -D {target} stop)"
        )
    aside = target.with_name(f"{target.name}.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    os.rename(target, aside)
    return aside


def _newest_segment(store: BackupStore, cluster: str) -> tuple[str, datetime, str] | None:
    segments = [
        parse_wal_name(name)
        for name in walstore.archived_names(store, cluster)
        if parse_wal_name(name).kind is WalKind.SEGMENT
    ]
    if not segments:
        return None
    newest = max(segments, key=lambda wal: (wal.log, wal.seg, wal.timeline))
    sidecar = walstore.read_sidecar(store, cluster, newest)
    segment_bytes = sidecar.size_bytes
    end = format_lsn((newest.segno(segment_bytes) + 1) * segment_bytes)
    return newest.name, datetime.fromisoformat(sidecar.pushed_at), end


@dataclass(frozen=True)
class StartRequest:
    target_dir: Path
    server_version: str  # of the base backup: only the same major's binaries can start it
    port: int
    action: TargetAction
    env: dict[str, str]  # the server's environment: where its wal-fetch finds the store
    os_user: str | None = None
    bin_dir: str | None = None
    user: str = "postgres"  # who to connect as while waiting for the target
    timeout_seconds: float = 3600


def start_recovered(request: StartRequest) -> str:
    """Start the restored folder's server and wait until recovery reached its target; return
    the WAL position it reached. The server is left running."""
    binaries = server_binaries(request.server_version, request.bin_dir)
    if request.os_user is None and os.geteuid() == 0:
        raise PitrError(
            "PostgreSQL refuses to run as root: pass --os-user (e.g. postgres) or set "
            "KAREN_PITR_DRILL_USER"
        )
    server = TemporaryServer(
        binaries,
        request.target_dir,
        request.os_user,
        request.env,
        data_dir=request.target_dir,
        host="127.0.0.1",
        port=request.port,
    )
    server.hand_over()
    server.start(request.timeout_seconds)
    if request.action is TargetAction.PROMOTE:
        return server.wait_until_promoted(request.user, request.timeout_seconds)
    return server.wait_until_paused(request.user, request.timeout_seconds)
