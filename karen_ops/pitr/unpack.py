"""Reading a base backup back: unpacked into a data folder, checked by hash and pg_verifybackup."""

from __future__ import annotations

import enum
import hashlib
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import zstandard

from karen_ops.errors import PitrError, ToolNotFoundError
from karen_ops.pitr.basemanifest import BaseManifest
from karen_ops.resources.pg_tools import find_tool
from karen_ops.resources.store import BackupStore

CHUNK_BYTES = 1024 * 1024
# PostgreSQL refuses to start on a data folder that others can read.
DATA_FOLDER_MODE = 0o700


class _HashingReader:
    def __init__(self, raw) -> None:
        self.raw, self.digest, self.bytes = raw, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        self.bytes += len(data)
        return data


def unpack_base_backup(store: BackupStore, manifest: BaseManifest, target: Path) -> None:
    """Unpack the base backup into ``target`` (created, or empty) and check its SHA-256."""
    location = store.location(manifest.archive_key)
    target.mkdir(mode=DATA_FOLDER_MODE, parents=True, exist_ok=True)
    target.chmod(DATA_FOLDER_MODE)
    with store.reader(manifest.archive_key) as raw:
        hashing = _HashingReader(raw)
        try:
            plain = zstandard.ZstdDecompressor().stream_reader(hashing, read_size=CHUNK_BYTES)
            with tarfile.open(fileobj=plain, mode="r|") as archive:
                archive.extractall(target, filter=_safe_filter())  # noqa: S202 (filtered)
            while hashing.read(CHUNK_BYTES):
                pass
        except (tarfile.TarError, zstandard.ZstdError, OSError) as exc:
            raise PitrError(f"could not unpack base backup {location}: {exc}") from exc
    if hashing.digest.hexdigest() != manifest.sha256 or hashing.bytes != manifest.size_bytes:
        raise PitrError(
            f"base backup {location} does not match its manifest (SHA-256 "
            f"{hashing.digest.hexdigest()[:12]}... of {hashing.bytes} bytes, expected "
            f"{manifest.sha256[:12]}... of {manifest.size_bytes}); it cannot be restored"
        )


def _safe_filter():
    # The 'data' filter refuses members that would land outside the target folder.
    return getattr(tarfile, "data_filter", None) or "fully_trusted"


class VerifyOutcome(enum.Enum):
    PASSED = "passed"  # pg_verifybackup checked every file against PostgreSQL's manifest
    FAILED = "failed"  # pg_verifybackup found a missing, extra or changed file
    SKIPPED = "skipped"  # no pg_verifybackup of a suitable version on this machine


@dataclass(frozen=True)
class Verification:
    outcome: VerifyOutcome
    tool: str
    detail: str


def verify_unpacked(folder: Path, manifest: BaseManifest, bin_dir: str | None) -> Verification:
    """Run pg_verifybackup on an unpacked base backup; its WAL is proven by the archive."""
    major = int(manifest.server_version.split(".")[0])
    try:
        tool = find_tool("pg_verifybackup", major, bin_dir=bin_dir)
    except ToolNotFoundError as exc:
        return Verification(VerifyOutcome.SKIPPED, "none", str(exc))
    completed = subprocess.run(
        [str(tool.path), "--no-parse-wal", "--quiet", str(folder)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if completed.returncode == 0:
        return Verification(VerifyOutcome.PASSED, tool.version, "every file matches")
    detail = (completed.stderr or completed.stdout).strip()[-2000:]
    return Verification(VerifyOutcome.FAILED, tool.version, detail)
