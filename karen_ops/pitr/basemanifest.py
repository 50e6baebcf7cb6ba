"""Base backup manifests and where base backups live in the store.

A base backup is two objects under ``base/<cluster>/<day>/<backup id>/``: ``base.tar.zst``,
written first, and ``manifest.json``, written last, in the store catalog's layout (kind
``base``), so listings, pins and verified marks work as for every other backup.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

from karen_ops.errors import PitrError
from karen_ops.resources.store import BackupStore
from karen_ops.resources.store.catalog import MANIFEST_NAME, CatalogEntry, list_backups

KIND = "base"
ARCHIVE_NAME = "base.tar.zst"


@dataclass(frozen=True)
class BaseManifest:
    """Everything needed to trust, find and restore one base backup."""

    backup_id: str
    name: str  # the cluster, as KAREN_PITR_CLUSTER names it
    created_at: str
    finished_at: str
    duration_seconds: float
    server_version: str
    pg_basebackup_version: str
    archive_key: str
    compression: str
    encryption: str
    size_bytes: int  # stored (compressed) bytes
    tar_bytes: int
    sha256: str  # of the stored bytes, before any client-side encryption
    timeline: int
    start_lsn: str
    end_lsn: str
    start_wal_file: str
    wal_segment_bytes: int
    kind: str = KIND

    @property
    def folder(self) -> str:
        return self.archive_key.rsplit("/", 1)[0] + "/"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, *, location: str) -> BaseManifest:
        try:
            raw = json.loads(data)
            known = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in raw.items() if k in known})
        except (ValueError, TypeError) as exc:
            raise PitrError(f"base backup manifest {location} is unreadable: {exc}") from exc


def base_prefix(cluster: str, created: datetime) -> str:
    return f"{KIND}/{cluster}/{created.astimezone(UTC):%Y-%m-%d}/"


def new_backup_id(now: datetime) -> str:
    """Sortable by time and unique within a second: ``20261204T010003Z-9f2c``."""
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def publish_manifest(store: BackupStore, manifest: BaseManifest) -> None:
    store.put_bytes(manifest.folder + MANIFEST_NAME, manifest.to_json())


def list_base_backups(store: BackupStore, cluster: str) -> list[tuple[BaseManifest, CatalogEntry]]:
    """Every complete base backup of ``cluster`` with its catalog entry, oldest first."""
    found = []
    for entry in list_backups(store, f"{KIND}/{cluster}/"):
        if entry.kind != KIND:
            continue
        manifest = BaseManifest.from_json(
            store.read_bytes(entry.manifest_key), location=store.location(entry.manifest_key)
        )
        found.append((manifest, entry))
    return found


def newest_base_backup(store: BackupStore, cluster: str) -> BaseManifest:
    backups = list_base_backups(store, cluster)
    if not backups:
        raise PitrError(
            f"no base backup of cluster {cluster} in {store.url}; materialize "
            "postgres_base_backup first"
        )
    return backups[-1][0]
