"""Pushing WAL files into the backup store and fetching them back, checked end to end.

A push hashes the file, then streams it through zstd into the store (encrypted there when the
store encrypts), and writes a small JSON sidecar last: a file without its sidecar was never
acknowledged to PostgreSQL, so it is not archived. Pushing a name that is already archived
succeeds only when the bytes are the same; a fetch refuses bytes whose SHA-256 or size differ
from the sidecar's.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import zstandard

from karen_ops.errors import PitrError, SegmentConflictError, SegmentMissingError
from karen_ops.pitr import walnames
from karen_ops.pitr.walnames import WalFile, WalKind
from karen_ops.resources.store import BackupStore

CHUNK_BYTES = 1024 * 1024
# zstd's default level: WAL compresses well, and the archiver must keep up with the server.
COMPRESSION_LEVEL = 3
MIN_SEGMENT_BYTES = 1024 * 1024
MAX_SEGMENT_BYTES = 1024 * 1024 * 1024


class PushOutcome(enum.Enum):
    ARCHIVED = "archived"  # the file is now in the store
    ALREADY_ARCHIVED = "already archived"  # the same bytes were there from an earlier attempt


@dataclass(frozen=True)
class Sidecar:
    """What was archived under one WAL file name."""

    name: str
    wal_kind: str
    timeline: int
    sha256: str
    size_bytes: int
    compressed_bytes: int
    compression: str
    encryption: str
    pushed_at: str
    kind: str = "wal"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, *, location: str) -> Sidecar:
        try:
            return cls(**json.loads(data))
        except (ValueError, TypeError) as exc:
            raise PitrError(f"WAL sidecar {location} is unreadable: {exc}") from exc


def push(store: BackupStore, cluster: str, path: Path, now: datetime) -> PushOutcome:
    """Archive the WAL file at ``path``; raise on anything short of certainty."""
    wal = walnames.parse_wal_name(path.name)
    digest, size = _hash_file(path)
    _check_size(wal, size, path)

    existing = read_sidecar(store, cluster, wal)
    if existing is not None:
        if existing.sha256 == digest and existing.size_bytes == size:
            return PushOutcome.ALREADY_ARCHIVED
        raise SegmentConflictError(
            f"refusing to archive {path}: {store.location(walnames.data_key(cluster, wal))} "
            f"already holds a different {wal.name} (SHA-256 {existing.sha256[:12]}..., "
            f"{existing.size_bytes} bytes; this file {digest[:12]}..., {size} bytes). Two "
            f"servers may be archiving into one place: give each its own "
            f"KAREN_PITR_CLUSTER, or move the old archive aside"
        )

    stored = _upload_compressed(store, walnames.data_key(cluster, wal), path, digest, size)
    sidecar = Sidecar(
        name=wal.name,
        wal_kind=wal.kind.value,
        timeline=wal.timeline,
        sha256=digest,
        size_bytes=size,
        compressed_bytes=stored,
        compression=f"zstd:{COMPRESSION_LEVEL}",
        encryption="aes-256-gcm" if store.encrypted else "none",
        pushed_at=now.astimezone(UTC).isoformat(),
    )
    store.put_bytes(walnames.sidecar_key(cluster, wal), sidecar.to_json())
    return PushOutcome.ARCHIVED


def fetch(store: BackupStore, cluster: str, name: str, target: Path) -> Sidecar:
    """Write the archived ``name`` to ``target``, whole and checked, or raise."""
    wal = walnames.parse_wal_name(name)
    sidecar = read_sidecar(store, cluster, wal)
    if sidecar is None:
        raise SegmentMissingError(f"{name} is not in the WAL archive {store.url}")

    key = walnames.data_key(cluster, wal)
    partial = target.with_name(f".{target.name}.karen-ops-partial")
    hasher, size = hashlib.sha256(), 0
    try:
        with store.reader(key) as raw, partial.open("wb") as out:
            reader = zstandard.ZstdDecompressor().stream_reader(raw)
            while chunk := reader.read(CHUNK_BYTES):
                hasher.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if hasher.hexdigest() != sidecar.sha256 or size != sidecar.size_bytes:
            raise PitrError(
                f"{store.location(key)} does not match its sidecar (SHA-256 "
                f"{hasher.hexdigest()[:12]}... of {size} bytes, expected "
                f"{sidecar.sha256[:12]}... of {sidecar.size_bytes}); the archived copy is "
                "damaged and recovery cannot go past it"
            )
        os.replace(partial, target)
    except zstandard.ZstdError as exc:
        raise PitrError(f"{store.location(key)} is not valid zstd data: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return sidecar


def read_sidecar(store: BackupStore, cluster: str, wal: WalFile) -> Sidecar | None:
    """The sidecar of ``wal``, or None when the name is not archived."""
    folder = walnames.folder_for(cluster, wal)
    key = walnames.sidecar_key(cluster, wal)
    if key not in set(store.list_keys(folder)):
        return None
    return Sidecar.from_json(store.read_bytes(key), location=store.location(key))


def archived_names(store: BackupStore, cluster: str) -> set[str]:
    """Every WAL file name archived for ``cluster``: data and sidecar both present."""
    keys = set(store.list_keys(walnames.cluster_prefix(cluster)))
    names = set()
    for key in keys:
        if key.endswith(walnames.SIDECAR_SUFFIX):
            stem = key[: -len(walnames.SIDECAR_SUFFIX)]
            if stem + walnames.DATA_SUFFIX in keys:
                names.add(stem.rsplit("/", 1)[1])
    return names


def _hash_file(path: Path) -> tuple[str, int]:
    hasher, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as source:
            while chunk := source.read(CHUNK_BYTES):
                hasher.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise PitrError(f"could not read WAL file {path}: {exc.strerror}") from exc
    return hasher.hexdigest(), size


def _check_size(wal: WalFile, size: int, path: Path) -> None:
    if wal.kind is not WalKind.SEGMENT:
        return
    power_of_two = size & (size - 1) == 0
    if not (MIN_SEGMENT_BYTES <= size <= MAX_SEGMENT_BYTES and power_of_two):
        raise PitrError(
            f"refusing to archive {path}: {size} bytes is not a WAL segment size (a power of "
            "two from 1 MiB to 1 GiB); the file may be truncated"
        )


def _upload_compressed(store: BackupStore, key: str, path: Path, digest: str, size: int) -> int:
    """Stream ``path`` compressed into ``key``; the bytes read must hash to ``digest``."""
    upload = store.upload(key, expected_bytes=size)
    stored, hasher = 0, hashlib.sha256()
    try:
        compressor = zstandard.ZstdCompressor(level=COMPRESSION_LEVEL).compressobj()
        with path.open("rb") as source:
            while chunk := source.read(CHUNK_BYTES):
                hasher.update(chunk)
                stored += upload.write(compressor.compress(chunk)) or 0
        stored += upload.write(compressor.flush()) or 0
        if hasher.hexdigest() != digest:
            raise PitrError(f"WAL file {path} changed while it was being archived")
        upload.publish()
    except BaseException:
        upload.abort()
        raise
    return stored


def read_archived(store: BackupStore, cluster: str, name: str) -> bytes:
    """A small archived file (a timeline history), whole and checked against its sidecar."""
    wal = walnames.parse_wal_name(name)
    sidecar = read_sidecar(store, cluster, wal)
    if sidecar is None:
        raise SegmentMissingError(f"{name} is not in the WAL archive {store.url}")
    key = walnames.data_key(cluster, wal)
    data = zstandard.ZstdDecompressor().decompressobj().decompress(store.read_bytes(key))
    if hashlib.sha256(data).hexdigest() != sidecar.sha256:
        raise PitrError(f"{store.location(key)} does not match its sidecar; it is damaged")
    return data
