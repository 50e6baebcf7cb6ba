"""Where file archives live in the store, and the manifest written beside each one.

An archive is two objects under ``<kind>/<host>/<day>/<backup id>/``: ``<kind>.tar.zst``,
written first, and ``manifest.json``, written last. An archive without a manifest is an
unfinished upload, never a backup. Inside the tar, every entry is named by its absolute path
on the host without the leading '/', so extracting into ``/`` puts files back where they were.
"""

from __future__ import annotations

import enum
import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from karen_ops.errors import ArchiveError
from karen_ops.resources.store import BackupStore, Upload
from karen_ops.resources.store.catalog import MANIFEST_NAME

MANIFEST_VERSION = 1
ARCHIVE_FORMAT = "tar"


class ArchiveKind(enum.Enum):
    """The three file archives; the value is the manifest's ``kind`` and the store folder."""

    CONFIG = "config"  # configuration files and the certificate, daily
    APPLICATION = "application"  # the application folder without rebuildable parts, weekly
    LOGS = "logs"  # rotated logs, weekly; the local copies go once the archive is verified
    SECURITY_LOGS = "security_logs"  # rotated security logs: kept a year, not a month

    @property
    def object_name(self) -> str:
        return f"{self.value}.tar.zst"


@dataclass(frozen=True)
class ArchiveManifest:
    """Everything needed to trust, find and check one file archive."""

    kind: str
    name: str
    backup_id: str
    partition: str
    created_at: str
    duration_seconds: float
    archive_key: str
    format: str
    compression: str
    encrypted: bool
    size_bytes: int
    sha256: str
    file_bytes: int
    # path, size_bytes and sha256 of every regular file, in archive order.
    files: list[dict[str, object]] = field(default_factory=list)
    other_entries: int = 0
    missing: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    excluded: int = 0
    manifest_version: int = MANIFEST_VERSION

    @property
    def folder(self) -> str:
        return self.archive_key.rsplit("/", 1)[0] + "/"

    @property
    def manifest_key(self) -> str:
        return self.folder + MANIFEST_NAME

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, *, location: str) -> ArchiveManifest:
        try:
            return cls(**json.loads(data))
        except (ValueError, TypeError) as exc:
            raise ArchiveError(
                f"manifest {location} is not a file-archive manifest: {exc}"
            ) from exc


def archive_key(kind: ArchiveKind, name: str, day: str, backup_id: str) -> str:
    return f"{kind.value}/{name}/{day}/{backup_id}/{kind.object_name}"


def new_backup_id(now: datetime) -> str:
    """Sortable by time, unique even within one second: ``20261204T013002Z-4be1``."""
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def publish(store: BackupStore, upload: Upload, manifest: ArchiveManifest) -> None:
    """Archive first, manifest last: no manifest, no backup."""
    upload.publish()
    try:
        store.put_bytes(manifest.manifest_key, manifest.to_json())
    except BaseException:
        store.delete(manifest.archive_key)
        raise
