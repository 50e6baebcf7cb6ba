"""Fetching a stored archive: checksum, decompression, and the custom-format header.

One pass over the stored bytes both hashes them and decompresses them into a local file, which
pg_restore then reads with several jobs (parallel restore needs a seekable file).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import zstandard

from karen_ops.backups.manifest import Manifest
from karen_ops.errors import ArchiveFormatError, ConfigurationError
from karen_ops.resources.store import BackupStore
from karen_ops.resources.store.configured import ENCRYPTION_KEY

ARCHIVE_MAGIC = b"PGDMP"
CHUNK_BYTES = 1 << 20

# The newest custom-format archive version each pg_restore major version can read.
_NEWEST_READABLE = {12: (1, 14), 13: (1, 14), 14: (1, 14), 15: (1, 14), 16: (1, 15), 17: (1, 16)}


@dataclass(frozen=True)
class FetchedArchive:
    """A stored archive brought to local disk, with what its bytes turned out to be."""

    path: Path
    stored_bytes: int
    sha256: str
    decode_error: str | None

    def matches(self, manifest: Manifest) -> bool:
        return self.sha256 == manifest.sha256 and self.stored_bytes == manifest.size_bytes


def fetch_archive(store: BackupStore, manifest: Manifest, destination: Path) -> FetchedArchive:
    """Hash the stored archive and decompress it to ``destination`` in one pass."""
    _require_key(store, manifest)
    digest = hashlib.sha256()
    stored = 0
    decode_error = None
    with store.reader(manifest.archive_key) as source, destination.open("wb") as target:
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
            stored += len(chunk)
            if decode_error is None:
                decode_error = _decompress_into(decompressor, chunk, target)
        if decode_error is None and stored and not decompressor.eof:
            decode_error = "the zstd stream ends before its last frame is complete"
    return FetchedArchive(destination, stored, digest.hexdigest(), decode_error)


def _require_key(store: BackupStore, manifest: Manifest) -> None:
    # Read without the key, the ciphertext fails the checksum and looks like a damaged backup,
    # which in an incident sends an operator to an older backup for no reason.
    if manifest.encryption != "none" and not store.encrypted:
        raise ConfigurationError(
            f"backup {manifest.backup_id} was encrypted ({manifest.encryption}) when it was "
            f"written, and no key is set; set {ENCRYPTION_KEY} to the key it was written with"
        )


def _decompress_into(decompressor, chunk: bytes, target) -> str | None:
    try:
        target.write(decompressor.decompress(chunk))
    except zstandard.ZstdError as exc:
        return f"the stored bytes are not zstd-compressed data ({exc})"
    return None


def archive_version(path: Path, *, location: str) -> tuple[int, int, int]:
    """The custom-format version in the archive's header, or an ArchiveFormatError."""
    with path.open("rb") as archive:
        header = archive.read(8)
    if not header:
        raise ArchiveFormatError(f"archive {location} is empty; take a new backup")
    if not header.startswith(ARCHIVE_MAGIC) or len(header) < 8:
        raise ArchiveFormatError(
            f"archive {location} is not a PostgreSQL custom-format archive "
            f"(it starts with {header[:8]!r}, not {ARCHIVE_MAGIC!r}); take a new backup"
        )
    major, minor, revision = struct.unpack("BBB", header[5:8])
    return major, minor, revision


def require_readable(
    version: tuple[int, int, int], pg_restore_major: int, *, manifest: Manifest, location: str
) -> None:
    """Refuse, with the fix, an archive the chosen pg_restore cannot read."""
    newest = _NEWEST_READABLE.get(pg_restore_major)
    too_new = manifest.pg_dump_major > pg_restore_major
    if newest is not None and version[:2] > newest:
        too_new = True
    if too_new:
        shown = ".".join(str(part) for part in version[:2])
        raise ArchiveFormatError(
            f"pg_restore {pg_restore_major} cannot read archive version {shown} of {location} "
            f"(written by pg_dump {manifest.pg_dump_version}); set KAREN_PG_BIN_DIR to a "
            f"PostgreSQL {manifest.pg_dump_major} bin folder"
        )
