"""Backup manifests and where backups live in the store.

A logical backup is two objects under ``postgres/<database>/<day>/<backup id>/``: the archive,
written first, and ``manifest.json``, written last. An archive without a manifest is an
unfinished upload, never a backup: listings, verification and restores only see manifests.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from karen_ops.backups.partitions import BACKUP_GRACE
from karen_ops.errors import RestoreError
from karen_ops.resources.store import BackupStore
from karen_ops.settings import BACKUP_URL

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
ARCHIVE_NAME = "database.dump.zst"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Inventory:
    """What a database holds, counted exactly inside one snapshot."""

    row_counts: dict[str, int]
    sequences: dict[str, int | None]
    large_objects: int

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values())


@dataclass(frozen=True)
class Manifest:
    """Everything needed to trust, find and check one logical backup."""

    backup_id: str
    database: str
    partition: str
    created_at: str
    duration_seconds: float
    server_version: str
    pg_dump_version: str
    archive_key: str
    archive_format: str
    compression: str
    size_bytes: int
    dump_bytes: int
    sha256: str
    inventory: Inventory
    snapshot_wal_lsn: str | None = None
    encryption: str = "none"
    kind: str = "postgres"
    manifest_version: int = MANIFEST_VERSION

    @property
    def folder(self) -> str:
        """The store folder holding this backup's archive, manifest and markers."""
        return self.archive_key.rsplit("/", 1)[0] + "/"

    @property
    def pg_dump_major(self) -> int:
        return int(self.pg_dump_version.split(".")[0])

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, *, location: str) -> Manifest:
        try:
            raw = json.loads(data)
            raw["inventory"] = Inventory(**raw["inventory"])
            manifest = cls(**raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise RestoreError(f"manifest {location} is not a karen-ops manifest: {exc}") from exc
        problem = _problem(manifest)
        if problem:
            raise RestoreError(f"manifest {location} is not a karen-ops manifest: {problem}")
        return manifest


def _problem(manifest: Manifest) -> str | None:
    """What makes a parsed manifest unusable, if anything."""
    inventory = manifest.inventory
    checks = [
        (
            isinstance(manifest.pg_dump_version, str)
            and re.fullmatch(r"\d+(\.\d+)*", manifest.pg_dump_version),
            "pg_dump_version",
        ),
        (
            isinstance(manifest.sha256, str) and re.fullmatch(r"[0-9a-f]{64}", manifest.sha256),
            "sha256",
        ),
        (_is_timestamp(manifest.created_at), "created_at"),
        (isinstance(manifest.size_bytes, int), "size_bytes"),
        (isinstance(manifest.archive_key, str), "archive_key"),
        (
            isinstance(inventory.row_counts, dict)
            and all(isinstance(n, int) for n in inventory.row_counts.values()),
            "row_counts",
        ),
        (isinstance(inventory.sequences, dict), "sequences"),
        (isinstance(inventory.large_objects, int), "large_objects"),
    ]
    bad = [name for ok, name in checks if not ok]
    return f"malformed field(s) {', '.join(bad)}" if bad else None


def _is_timestamp(value: object) -> bool:
    # Backups are ordered by creation time: one that is not a time would stop the ordering.
    try:
        datetime.fromisoformat(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def backup_prefix(database: str, day: str) -> str:
    return f"postgres/{database}/{day}/"


def new_backup_id(now: datetime) -> str:
    """Sortable by time, unique even within one second: ``20261204T020003Z-9f2c``."""
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def list_manifests(store: BackupStore, database: str, day: str) -> list[Manifest]:
    """Every complete backup of ``database`` for ``day``, oldest first by creation time.

    Only ``<prefix><backup id>/manifest.json`` counts, and only when the manifest names this
    database and day; an unreadable manifest is skipped with a warning, so one damaged backup
    cannot hide the others.
    """
    prefix = backup_prefix(database, day)
    manifests = []
    for key in store.list_keys(prefix):
        if key[len(prefix) :].count("/") != 1 or not key.endswith("/" + MANIFEST_NAME):
            continue
        try:
            manifest = Manifest.from_json(store.read_bytes(key), location=store.location(key))
        except RestoreError as exc:
            log.warning("skipping backup: %s; move the folder aside or delete it", exc)
            continue
        if manifest.database == database and manifest.partition == day:
            manifests.append(manifest)
    return sorted(manifests, key=lambda manifest: manifest.created_at)


def newest_manifest(store: BackupStore, database: str, day: str) -> Manifest:
    manifests = list_manifests(store, database, day)
    if not manifests:
        raise RestoreError(
            f"no complete backup of database {database} for {day} in {store.url}; "
            f"materialize postgres_backup for partition {day} first (a day can be backed up "
            f"until {BACKUP_GRACE.days} days after it ends; an older day without a backup has "
            f"none to verify)"
        )
    return manifests[-1]


def recorded_manifest(
    store: BackupStore, database: str, day: str, backup_id: str | None
) -> Manifest:
    """The backup ``backup_id`` of the day, as the instance recorded it, else the day's newest.

    The id decides because the name does not: another deployment sharing the store may hold a
    database of the same name, and its newer backup must not be verified in place of ours.
    """
    if backup_id is None:
        return newest_manifest(store, database, day)
    for manifest in list_manifests(store, database, day):
        if manifest.backup_id == backup_id:
            return manifest
    raise RestoreError(
        f"backup {backup_id}, which postgres_backup recorded for {day}, is not among the "
        f"complete backups of database {database} in {store.url}: it was deleted or moved, or "
        f"the store is not the one it was written to; check {BACKUP_URL}"
    )


def manifest_key(archive_key: str) -> str:
    return archive_key.rsplit("/", 1)[0] + "/" + MANIFEST_NAME
