"""Taking a physical base backup: pg_basebackup's tar streamed through zstd into the store.

``pg_basebackup --format=tar --pgdata=- --wal-method=none`` writes one tar of the data folder
to its standard output, with ``backup_label`` and PostgreSQL's own ``backup_manifest`` inside.
The tar is read once: compressed, hashed and uploaded as it passes, while those two members
are picked out for their WAL positions. The WAL that makes the copy consistent comes from the
archive (pg_basebackup waits until the last segment it needs is archived), so a base backup
is only as good as the WAL archive beside it, which ``wal_archive`` proves hourly.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import zstandard

from karen_ops.errors import KarenOpsError, PitrError
from karen_ops.pitr.basemanifest import (
    ARCHIVE_NAME,
    BaseManifest,
    base_prefix,
    new_backup_id,
    publish_manifest,
)
from karen_ops.pitr.walnames import parse_lsn, segment_name
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import find_tool
from karen_ops.resources.postgres import connect, server_major
from karen_ops.resources.store import BackupStore
from karen_ops.settings import DATABASE_URL

CHUNK_BYTES = 1024 * 1024
COMPRESSION_LEVEL = 3


class Phase(enum.Enum):
    CONNECT = "connect"  # reaching the server and finding pg_basebackup
    STREAM = "stream"  # pg_basebackup running, its tar going into the store
    PUBLISH = "publish"  # archive renamed into place, manifest written


@dataclass(frozen=True)
class BaseBackupRequest:
    source: ConnInfo
    store: BackupStore
    cluster: str
    bin_dir: str | None = None
    fast_checkpoint: bool = True
    # pg_basebackup waits, without limit, until the server has archived the backup's last
    # WAL segment; a broken archive_command would otherwise hang the run.
    timeout_seconds: float = 6 * 3600


def take_base_backup(request: BaseBackupRequest, log: logging.Logger) -> BaseManifest:
    """Stream one base backup into the store and publish its manifest; return the manifest."""
    phase = Phase.CONNECT
    try:
        with connect(request.source, setting=DATABASE_URL) as conn:
            tool = find_tool("pg_basebackup", server_major(conn), bin_dir=request.bin_dir)
            server_version = conn.execute("SHOW server_version").fetchone()[0]
            segment_bytes = int(
                conn.execute(
                    "SELECT pg_size_bytes(current_setting('wal_segment_size'))"
                ).fetchone()[0]
            )
            database_bytes = conn.execute(
                "SELECT sum(pg_database_size(oid)) FROM pg_database"
            ).fetchone()[0]
        phase = Phase.STREAM
        created = datetime.now(UTC)
        started = time.monotonic()
        backup_id = new_backup_id(created)
        key = f"{base_prefix(request.cluster, created)}{backup_id}/{ARCHIVE_NAME}"
        log.info(
            "base backup starting server=%s pg_basebackup=%s target=%s",
            request.source.server(),
            tool.version,
            request.store.location(key),
        )
        stream = _stream(request, str(tool.path), backup_id, key, int(database_bytes or 0))
        phase = Phase.PUBLISH
        timeline, start_lsn, end_lsn = _wal_range(stream.manifest)
        manifest = BaseManifest(
            backup_id=backup_id,
            name=request.cluster,
            created_at=created.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
            duration_seconds=round(time.monotonic() - started, 3),
            server_version=server_version,
            pg_basebackup_version=tool.version,
            archive_key=key,
            compression=f"zstd:{COMPRESSION_LEVEL}",
            encryption="aes-256-gcm" if request.store.encrypted else "none",
            size_bytes=stream.stored_bytes,
            tar_bytes=stream.tar_bytes,
            sha256=stream.sha256,
            timeline=timeline,
            start_lsn=start_lsn,
            end_lsn=end_lsn,
            start_wal_file=segment_name(
                timeline, parse_lsn(start_lsn) // segment_bytes, segment_bytes
            ),
            wal_segment_bytes=segment_bytes,
        )
        publish_manifest(request.store, manifest)
    except KarenOpsError as exc:
        raise PitrError(
            f"could not take a base backup of {request.source.server()} during {phase.value}: {exc}"
        ) from exc
    log.info(
        "base backup published id=%s bytes=%d start=%s end=%s timeline=%d seconds=%.1f",
        manifest.backup_id,
        manifest.size_bytes,
        manifest.start_lsn,
        manifest.end_lsn,
        manifest.timeline,
        manifest.duration_seconds,
    )
    return manifest


@dataclass
class _Stream:
    tar_bytes: int = 0
    stored_bytes: int = 0
    sha256: str = ""
    label: str = ""
    manifest: dict | None = None


class _Tee:
    """pg_basebackup's standard output, compressed into the upload as the tar reader reads it."""

    def __init__(self, source, writer) -> None:
        self.source, self.writer, self.bytes = source, writer, 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size if size and size > 0 else CHUNK_BYTES)
        self.bytes += len(data)
        self.writer.write(data)
        return data


class _Sink:
    def __init__(self, upload) -> None:
        self.upload, self.digest, self.bytes = upload, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.bytes += len(data)
        self.upload.write(data)
        return len(data)


def _stream(
    request: BaseBackupRequest, tool: str, backup_id: str, key: str, expected: int
) -> _Stream:
    command = [
        tool,
        f"--dbname={request.source.public_dsn()}",
        "--pgdata=-",
        "--format=tar",
        "--wal-method=none",
        f"--checkpoint={'fast' if request.fast_checkpoint else 'spread'}",
        f"--label=karen-ops {backup_id}",
        "--no-password",
    ]
    env = {**os.environ, **request.source.tool_environment()}
    upload = request.store.upload(key, expected_bytes=expected)
    result = _Stream()
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env)
        watchdog = threading.Timer(request.timeout_seconds, process.kill)
        watchdog.start()
        try:
            sink = _Sink(upload)
            with zstandard.ZstdCompressor(level=COMPRESSION_LEVEL, threads=-1).stream_writer(
                sink, closefd=False
            ) as writer:
                tee = _Tee(process.stdout, writer)
                _pick_members(tee, result)
                while tee.read(CHUNK_BYTES):
                    pass
            returncode = process.wait()
            if not watchdog.is_alive():
                raise PitrError(
                    f"pg_basebackup did not finish in {request.timeout_seconds:.0f} s; if the "
                    "server log says it is waiting for WAL archiving, archive_command is "
                    "failing: check it with the archiving report of karen-ops doctor"
                )
            if returncode != 0:
                stderr.seek(0)
                tail = stderr.read().decode(errors="replace").strip()[-2000:]
                raise PitrError(f"pg_basebackup exited with status {returncode}: {tail}")
            if result.manifest is None or not result.label:
                raise PitrError("pg_basebackup's tar holds no backup_label or backup_manifest")
            upload.publish()
        except BaseException:
            process.kill()
            process.wait()
            upload.abort()
            raise
        finally:
            watchdog.cancel()
            process.stdout.close()
    result.tar_bytes, result.stored_bytes, result.sha256 = (
        tee.bytes,
        sink.bytes,
        sink.digest.hexdigest(),
    )
    return result


def _pick_members(tee: _Tee, result: _Stream) -> None:
    try:
        with tarfile.open(fileobj=tee, mode="r|") as archive:
            for member in archive:
                if member.name in ("backup_label", "backup_manifest") and member.isfile():
                    content = archive.extractfile(member).read()
                    if member.name == "backup_label":
                        result.label = content.decode()
                    else:
                        result.manifest = json.loads(content)
    except (tarfile.TarError, ValueError) as exc:
        raise PitrError(f"pg_basebackup's output is not a readable tar: {exc}") from exc


def _wal_range(manifest: dict) -> tuple[int, str, str]:
    """Timeline, start and end WAL positions, from PostgreSQL's own backup manifest."""
    ranges = manifest.get("WAL-Ranges") or []
    if not ranges:
        raise PitrError("pg_basebackup's backup_manifest has no WAL-Ranges")
    timeline = int(ranges[-1]["Timeline"])
    return timeline, ranges[0]["Start-LSN"], ranges[-1]["End-LSN"]
