"""The point-in-time recovery drill: base backup plus WAL, recovered to the nightly dump's moment.

The nightly logical backup records the WAL position of the snapshot it dumped
(``snapshot_wal_lsn``) and the exact row count of every table in that snapshot. Recovering
the newest base backup that ended before that position, with archived WAL up to it, must give
exactly those counts: the physical and the logical backup then prove each other. The time
from fetching the base backup to a paused, queryable server is the measured RTO; the age of
the newest archived segment is the RPO.
"""

from __future__ import annotations

import enum
import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from psycopg import sql

from karen_ops.errors import KarenOpsError, PitrError
from karen_ops.pitr import walstore
from karen_ops.pitr.basemanifest import BaseManifest, list_base_backups
from karen_ops.pitr.instance import (
    Recovery,
    TemporaryServer,
    prepare_recovery,
    recovery_settings,
    server_binaries,
)
from karen_ops.pitr.server import read_server_wal, switch_segment, wait_until_archived
from karen_ops.pitr.unpack import unpack_base_backup
from karen_ops.pitr.walnames import parse_lsn, parse_wal_name
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.postgres import connect
from karen_ops.resources.store import BackupStore
from karen_ops.resources.store.catalog import list_backups
from karen_ops.settings import DATABASE_URL


class Phase(enum.Enum):
    PLAN = "plan"  # finding the logical backup, its position and a base backup before it
    ARCHIVE = "archive"  # making sure the WAL up to the target position is archived
    UNPACK = "unpack"  # fetching and unpacking the base backup
    RECOVER = "recover"  # the temporary server replaying WAL up to the target
    COMPARE = "compare"  # counting rows and comparing them with the logical backup's


@dataclass(frozen=True)
class DrillRequest:
    store: BackupStore
    cluster: str
    source: ConnInfo  # the live server, whose current segment may need switching out
    karen_ops_command: list[str]
    env: dict[str, str]  # for the temporary server: where wal-fetch finds the store
    os_user: str | None = None
    bin_dir: str | None = None
    work_dir: str | None = None
    timeout_seconds: float = 3600


@dataclass
class DrillResult:
    logical_backup_id: str = ""
    base_backup_id: str = ""
    target_lsn: str = ""
    replayed_lsn: str = ""
    expected: dict[str, int] = field(default_factory=dict)
    recovered: dict[str, int | None] = field(default_factory=dict)
    rto_seconds: float = 0.0
    rpo_seconds: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def mismatches(self) -> dict[str, tuple[int, int | None]]:
        return {
            table: (count, self.recovered.get(table))
            for table, count in self.expected.items()
            if self.recovered.get(table) != count
        }


def run_drill(request: DrillRequest, log: logging.Logger) -> DrillResult:
    result = DrillResult()
    phase = Phase.PLAN
    try:
        logical = newest_logical_manifest(request.store, request.source.dbname)
        result.logical_backup_id = logical["backup_id"]
        result.target_lsn = logical.get("snapshot_wal_lsn") or ""
        if not result.target_lsn:
            raise PitrError(
                f"logical backup {logical['backup_id']} recorded no snapshot WAL position "
                "(taken on a standby?); run postgres_backup on the primary"
            )
        result.expected = dict(logical["inventory"]["row_counts"])
        base = base_backup_before(request.store, request.cluster, result.target_lsn)
        result.base_backup_id = base.backup_id
        log.info(
            "drill planned logical=%s target_lsn=%s base=%s",
            result.logical_backup_id,
            result.target_lsn,
            base.backup_id,
        )

        phase = Phase.ARCHIVE
        _archive_through(request, parse_lsn(result.target_lsn), base.wal_segment_bytes)
        result.rpo_seconds = rpo_seconds(request.store, request.cluster, base)

        _recover_and_count(request, base, result, log)
    except KarenOpsError as exc:
        raise PitrError(f"the recovery drill failed during {phase.value}: {exc}") from exc
    return result


def _recover_and_count(
    request: DrillRequest, base: BaseManifest, result: DrillResult, log: logging.Logger
) -> None:
    binaries = server_binaries(base.server_version, request.bin_dir)
    folder = Path(tempfile.mkdtemp(prefix="karen-drill-", dir=request.work_dir))
    server = TemporaryServer(binaries, folder, request.os_user, request.env)
    user = request.source.params.get("user") or "postgres"
    started = time.monotonic()
    try:
        unpack_base_backup(request.store, base, server.data)
        result.seconds["unpack"] = round(time.monotonic() - started, 3)
        recovery = Recovery(request.karen_ops_command, target_lsn=result.target_lsn)
        prepare_recovery(server.data, recovery_settings(recovery, folder, server.data))
        server.hand_over()
        server.start(request.timeout_seconds)
        result.replayed_lsn = server.wait_until_paused(user, request.timeout_seconds)
        result.rto_seconds = round(time.monotonic() - started, 3)
        result.seconds["recover"] = round(result.rto_seconds - result.seconds["unpack"], 3)
        log.info(
            "drill recovered to lsn=%s rto_seconds=%.1f", result.replayed_lsn, result.rto_seconds
        )
        with server.connect(user, request.source.dbname) as conn:
            result.recovered = {table: _count(conn, table) for table in result.expected}
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _count(conn, table: str) -> int | None:
    schema, _, name = table.partition(".")
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL",
        (sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name)).as_string(conn),),
    ).fetchone()
    if not row[0]:
        return None
    query = sql.SQL("SELECT count(*) FROM ONLY {}.{}").format(
        sql.Identifier(schema), sql.Identifier(name)
    )
    return conn.execute(query).fetchone()[0]


def newest_logical_manifest(store: BackupStore, database: str) -> dict:
    entries = [
        e
        for e in list_backups(store, f"postgres/{database}/")
        if e.kind == "postgres" and e.name == database
    ]
    if not entries:
        raise PitrError(
            f"no logical backup of database {database} in {store.url}; the drill recovers to "
            "the newest one's snapshot: run nightly_backup first"
        )
    raw = json.loads(store.read_bytes(entries[-1].manifest_key))
    if not isinstance(raw.get("inventory", {}).get("row_counts"), dict):
        raise PitrError(f"manifest {store.location(entries[-1].manifest_key)} has no row counts")
    return raw


def base_backup_before(store: BackupStore, cluster: str, target_lsn: str) -> BaseManifest:
    """The newest base backup that was complete (consistent) before ``target_lsn``."""
    target = parse_lsn(target_lsn)
    usable = [m for m, _ in list_base_backups(store, cluster) if parse_lsn(m.end_lsn) <= target]
    if not usable:
        raise PitrError(
            f"no base backup of cluster {cluster} ended before position {target_lsn}; take one "
            "with postgres_base_backup before the next nightly backup"
        )
    return usable[-1]


def _archive_through(request: DrillRequest, target: int, segment_bytes: int) -> None:
    """Switch the live server's segment out if the target is still in it, and wait for it."""
    with connect(request.source, setting=DATABASE_URL, autocommit=True) as conn:
        state = read_server_wal(conn)
        target_segno = target // segment_bytes
        if state.current_segno <= target_segno:
            segment = switch_segment(conn)
            if not wait_until_archived(conn, segment, 120):
                raise PitrError(
                    f"WAL segment {segment} holding the target position was not archived in "
                    "120 s; check archive_command (see the server log)"
                )


def rpo_seconds(store: BackupStore, cluster: str, base: BaseManifest) -> float | None:
    """Seconds since the newest archived segment was pushed: what a failure now would lose."""
    names = walstore.archived_names(store, cluster)
    segments = [n for n in names if len(n) == 24]
    if not segments:
        return None
    newest = max(segments, key=lambda n: (parse_wal_name(n).timeline, n))
    sidecar = walstore.read_sidecar(store, cluster, parse_wal_name(newest))
    pushed = datetime.fromisoformat(sidecar.pushed_at)
    return round((datetime.now(UTC) - pushed).total_seconds(), 3)
