"""Taking a logical backup: pg_dump streamed through zstd and SHA-256 into the store.

The dump is pg_dump's custom format written uncompressed to a pipe; compression happens here,
on every core, while the bytes stream to the store, so memory stays flat at a few buffers
whatever the database size and no full-size temporary copy is made. The row counts in the
manifest are taken in the very snapshot that pg_dump dumps: the backup's connection exports
its snapshot, hands it to pg_dump, and counts inside it while pg_dump writes.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import zstandard

from karen_ops.backups.inventory import take_inventory, unreadable_tables
from karen_ops.backups.manifest import (
    ARCHIVE_NAME,
    Inventory,
    Manifest,
    backup_prefix,
    manifest_key,
    new_backup_id,
)
from karen_ops.backups.pg_dump import PgDumpProcess
from karen_ops.errors import BackupError, KarenOpsError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import PgTool, describe_exit, find_tool
from karen_ops.resources.postgres import connect, server_major
from karen_ops.resources.store import BackupStore, Upload
from karen_ops.settings import DATABASE_URL

ARCHIVE_MAGIC = b"PGDMP"
CHUNK_BYTES = 1 << 20
# Measured on a 1 GB AI Karen database (docs/BENCHMARKS.md): level 1 stores as much as
# gzip -6 of a plain dump, five times faster and with less memory than level 3, which stored
# 2.6% more; levels 5 and up store less but take twice as long as the dump itself.
COMPRESSION_LEVEL = 1


class Phase(enum.Enum):
    """The step a backup is in, so a failure says which step broke."""

    CONNECT = "connect"  # reaching the server and choosing pg_dump
    SNAPSHOT = "snapshot"  # exporting the snapshot that pg_dump and the counts share
    DUMP = "dump"  # pg_dump writing, compressed and hashed into the store
    COUNT = "count"  # exact row counts inside the snapshot
    PUBLISH = "publish"  # archive made visible, then the manifest written


@dataclass(frozen=True)
class BackupRequest:
    """What to back up, where to, and under which partition."""

    source: ConnInfo
    store: BackupStore
    partition: str
    bin_dir: str | None = None
    compression_level: int = COMPRESSION_LEVEL
    lock_wait_timeout_seconds: int = 300
    # The name the backup is filed under: the fleet's name for the database, else its own.
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.source.dbname


def take_backup(request: BackupRequest, log: logging.Logger) -> Manifest:
    """Dump, compress, hash and publish one backup; return its manifest."""
    phase = Phase.CONNECT
    try:
        with connect(request.source, setting=DATABASE_URL) as conn:
            tool = find_tool("pg_dump", server_major(conn), bin_dir=request.bin_dir)
            phase = Phase.SNAPSHOT
            snapshot, wal_lsn = _export_snapshot(conn)
            _require_readable(conn, request.source)
            _limit_lock_waits(conn, request.lock_wait_timeout_seconds)
            phase = Phase.DUMP
            return _dump_in_snapshot(request, conn, tool, snapshot, wal_lsn, log)
    except KarenOpsError as exc:
        raise BackupError(
            f"could not back up database {request.source.describe()} during {phase.value}: {exc}"
        ) from exc


def _export_snapshot(conn: psycopg.Connection) -> tuple[str, str | None]:
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
    # The WAL position of the snapshot lets a point-in-time restore reach the same state.
    wal_lsn = conn.execute(
        "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END"
    ).fetchone()[0]
    return snapshot, wal_lsn


def _require_readable(conn: psycopg.Connection, source: ConnInfo) -> None:
    unreadable = unreadable_tables(conn)
    if unreadable:
        user = source.params.get("user", "the connecting role")
        raise BackupError(
            f"permission denied for {len(unreadable)} table(s): {', '.join(unreadable[:10])}; "
            f"GRANT SELECT on them to {user}, or GRANT pg_read_all_data TO {user}"
        )


def _limit_lock_waits(conn: psycopg.Connection, seconds: int) -> None:
    # The counts wait for table locks like pg_dump does, and give up as soon as it would.
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{seconds}s",))


def _dump_in_snapshot(
    request: BackupRequest,
    conn: psycopg.Connection,
    tool: PgTool,
    snapshot: str,
    wal_lsn: str | None,
    log: logging.Logger,
) -> Manifest:
    created = datetime.now(UTC)
    started = time.monotonic()
    backup_id = new_backup_id(created)
    archive_key = f"{backup_prefix(request.name, request.partition)}{backup_id}/{ARCHIVE_NAME}"
    log.info(
        "backup starting database=%s pg_dump=%s snapshot=%s target=%s",
        request.source.describe(),
        tool.version,
        snapshot,
        request.store.location(archive_key),
    )

    # The database's size bounds the dump's: stores that upload in parts size them from it.
    database_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    upload = request.store.upload(archive_key, expected_bytes=database_bytes)
    dump = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="karen-count") as counter:
        try:
            dump = PgDumpProcess(tool, request.source, snapshot, request.lock_wait_timeout_seconds)
            # The counts run in the exported snapshot while this thread moves the dump.
            counts = counter.submit(take_inventory, conn)
            stream = _stream_dump(dump, upload, request.compression_level)
            _check_dump_finished(dump, stream, request.lock_wait_timeout_seconds)
            inventory = _wait_for_counts(counts)
        except BaseException:
            conn.cancel_safe()
            upload.abort()
            raise
        finally:
            if dump is not None:
                dump.close()

    conn.rollback()
    manifest = Manifest(
        backup_id=backup_id,
        database=request.name,
        partition=request.partition,
        created_at=created.isoformat(),
        duration_seconds=round(time.monotonic() - started, 3),
        server_version=_server_version(conn),
        pg_dump_version=tool.version,
        archive_key=archive_key,
        archive_format="custom",
        compression=f"zstd:{request.compression_level}",
        size_bytes=stream.stored_bytes,
        dump_bytes=stream.dump_bytes,
        sha256=stream.sha256,
        inventory=inventory,
        snapshot_wal_lsn=wal_lsn,
        encryption="aes-256-gcm" if request.store.encrypted else "none",
    )
    _publish(request.store, upload, manifest)
    log.info(
        "backup published database=%s bytes=%d sha256=%s tables=%d rows=%d seconds=%.1f",
        manifest.database,
        manifest.size_bytes,
        manifest.sha256,
        len(inventory.row_counts),
        inventory.total_rows,
        manifest.duration_seconds,
    )
    return manifest


@dataclass
class _StreamResult:
    dump_bytes: int = 0
    stored_bytes: int = 0
    sha256: str = ""
    starts_like_archive: bool = False


class _HashingSink:
    """Where compressed bytes go: counted, hashed, then written to the store upload."""

    def __init__(self, upload: Upload) -> None:
        self.upload = upload
        self.digest = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.bytes += len(data)
        self.upload.write(data)
        return len(data)


def _stream_dump(dump: PgDumpProcess, upload: Upload, level: int) -> _StreamResult:
    sink = _HashingSink(upload)
    # threads=-1: one compression worker per core; pg_dump and the server run meanwhile.
    compressor = zstandard.ZstdCompressor(level=level, threads=-1)
    result = _StreamResult()
    writer = compressor.stream_writer(sink, closefd=False)
    while chunk := dump.stdout.read(CHUNK_BYTES):
        if result.dump_bytes == 0:
            result.starts_like_archive = chunk.startswith(ARCHIVE_MAGIC)
        result.dump_bytes += len(chunk)
        writer.write(chunk)
    # Closed only when every write succeeded: closing writes the frame's end to the store, and
    # after a failed write (a full disk) that would fail again and bury the first error.
    writer.close()
    result.stored_bytes = sink.bytes
    result.sha256 = sink.digest.hexdigest()
    return result


def _wait_for_counts(counts: Future[Inventory]) -> Inventory:
    try:
        return counts.result()
    except psycopg.Error as exc:
        raise BackupError(f"could not count rows in the dump's snapshot: {exc}") from exc


def _check_dump_finished(
    dump: PgDumpProcess, stream: _StreamResult, lock_wait_timeout_seconds: int
) -> None:
    returncode = dump.wait()
    if returncode != 0:
        stderr = dump.stderr_tail()
        hint = ""
        # pg_dump takes its table locks under a statement timeout of --lock-wait-timeout.
        if "statement timeout" in stderr or "could not obtain lock" in stderr:
            hint = (
                f"; another session held a table lock for longer than "
                f"{lock_wait_timeout_seconds} s (lock_wait_timeout_seconds)"
            )
        raise BackupError(describe_exit("pg_dump", returncode, stderr) + hint)
    if stream.dump_bytes == 0 or not stream.starts_like_archive:
        raise BackupError(
            f"pg_dump exited successfully but wrote {stream.dump_bytes} bytes that are not a "
            f"custom-format archive; stderr: {dump.stderr_tail() or 'empty'}"
        )


def _server_version(conn: psycopg.Connection) -> str:
    return conn.execute("SHOW server_version").fetchone()[0]


def _publish(store: BackupStore, upload: Upload, manifest: Manifest) -> None:
    """Archive first, manifest last: no manifest, no backup."""
    try:
        upload.publish()
    except BaseException:
        upload.abort()
        raise
    try:
        store.put_bytes(manifest_key(manifest.archive_key), manifest.to_json())
    except BaseException:
        store.delete(manifest.archive_key)
        raise
