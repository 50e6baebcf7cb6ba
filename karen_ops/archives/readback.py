"""Proving a stored archive: read it back from the store and compare it with its manifest.

The object is streamed once: its bytes are hashed as zstd decompresses them, and every file
in the tar is hashed as it comes out, so a verified archive is known to hold each file's
exact bytes, not only to have arrived whole.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass, field

import zstandard

from karen_ops.archives.hashing import HashingReader
from karen_ops.archives.manifest import ArchiveManifest
from karen_ops.errors import KarenOpsError
from karen_ops.resources.store import BackupStore

CHUNK_BYTES = 1 << 20
_LISTED = 10


@dataclass
class ReadBack:
    """What reading the stored archive found."""

    sha256: str = ""
    size_bytes: int = 0
    files_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        listed = "; ".join(self.problems[:_LISTED])
        more = len(self.problems) - _LISTED
        return listed + (f"; and {more} more" if more > 0 else "")


def read_back(store: BackupStore, manifest: ArchiveManifest) -> ReadBack:
    """Stream the stored archive, checking its SHA-256, its size and every file's SHA-256."""
    expected = {str(entry["path"]).lstrip("/"): entry for entry in manifest.files}
    result = ReadBack()
    seen: set[str] = set()
    try:
        with store.reader(manifest.archive_key) as raw:
            hashing = HashingReader(raw)
            plain = zstandard.ZstdDecompressor().stream_reader(hashing, closefd=False)
            with tarfile.open(fileobj=plain, mode="r|") as tar:
                for member in tar:
                    if member.isfile():
                        seen.add(member.name)
                        _check_member(tar, member, expected.get(member.name), result)
            # The tar ends before its padding and the zstd frame do; hash those bytes too.
            while plain.read(CHUNK_BYTES):
                pass
            hashing.drain()
    except (KarenOpsError, OSError, tarfile.TarError, zstandard.ZstdError) as exc:
        result.problems.append(f"could not read the stored archive: {exc}")
        return result

    result.sha256, result.size_bytes = hashing.sha256, hashing.bytes
    if (result.sha256, result.size_bytes) != (manifest.sha256, manifest.size_bytes):
        result.problems.insert(
            0,
            f"stored archive has sha256 {result.sha256} and {result.size_bytes} bytes; "
            f"the manifest says {manifest.sha256} and {manifest.size_bytes} bytes",
        )
    result.problems += [
        f"{name} is in the manifest but not in the archive" for name in sorted(set(expected) - seen)
    ]
    return result


def _check_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, entry: dict | None, result: ReadBack
) -> None:
    if entry is None:
        result.problems.append(f"{member.name} is in the archive but not in the manifest")
        return
    digest = hashlib.sha256()
    stream = tar.extractfile(member)
    while chunk := stream.read(CHUNK_BYTES):
        digest.update(chunk)
    result.files_checked += 1
    if digest.hexdigest() != entry["sha256"] or member.size != entry["size_bytes"]:
        result.problems.append(
            f"{member.name} in the archive has sha256 {digest.hexdigest()} and {member.size} "
            f"bytes; the manifest says {entry['sha256']} and {entry['size_bytes']} bytes"
        )
