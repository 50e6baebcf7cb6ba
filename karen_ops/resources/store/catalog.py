"""The store's catalog: every complete backup of every kind, with its verified and pinned marks.

Each backup lives in its own folder, ``<kind>/<name>/<day>/<backup id>/``, holding its data, a
``manifest.json`` written last, and later, small marker objects: ``verified.json`` once a
verification restore proved it, ``pinned.json`` while an operator keeps it from retention.
Every manifest, whatever the kind, carries ``kind``, ``backup_id``, ``created_at`` and
``size_bytes``; the catalog reads those and nothing else.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from karen_ops.errors import StoreError
from karen_ops.resources.store.base import BackupStore

MANIFEST_NAME = "manifest.json"
VERIFIED_NAME = "verified.json"
PINNED_NAME = "pinned.json"


@dataclass(frozen=True)
class CatalogEntry:
    """One complete backup as retention, listings and restores see it."""

    kind: str
    name: str
    backup_id: str
    created_at: datetime
    folder: str
    size_bytes: int
    verified: bool
    pin_label: str | None

    @property
    def pinned(self) -> bool:
        return self.pin_label is not None

    @property
    def manifest_key(self) -> str:
        return self.folder + MANIFEST_NAME


def list_backups(store: BackupStore, prefix: str = "") -> list[CatalogEntry]:
    """Every backup under ``prefix`` that has a manifest, oldest first by creation time."""
    folders: dict[str, set[str]] = defaultdict(set)
    for key in store.list_keys(prefix):
        folder, _, name = key.rpartition("/")
        folders[folder + "/"].add(name)

    entries = [
        _entry(store, folder, names) for folder, names in folders.items() if MANIFEST_NAME in names
    ]
    return sorted(entries, key=lambda entry: entry.created_at)


def _entry(store: BackupStore, folder: str, names: set[str]) -> CatalogEntry:
    location = store.location(folder + MANIFEST_NAME)
    try:
        raw = json.loads(store.read_bytes(folder + MANIFEST_NAME))
        created = datetime.fromisoformat(raw["created_at"]).astimezone(UTC)
        entry = CatalogEntry(
            kind=raw.get("kind", "postgres"),
            name=raw.get("database") or raw.get("name") or "",
            backup_id=raw["backup_id"],
            created_at=created,
            folder=folder,
            size_bytes=int(raw["size_bytes"]),
            verified=VERIFIED_NAME in names,
            pin_label=_pin_label(store, folder) if PINNED_NAME in names else None,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(
            f"manifest {location} is unreadable ({exc}); move the folder aside or delete it"
        ) from exc
    return entry


def _pin_label(store: BackupStore, folder: str) -> str:
    return json.loads(store.read_bytes(folder + PINNED_NAME)).get("label", "pinned")


def mark_verified(store: BackupStore, folder: str, details: dict[str, object]) -> None:
    """Record that a verification restore proved the backup in ``folder``."""
    store.put_bytes(folder + VERIFIED_NAME, json.dumps(details, sort_keys=True).encode())


def pin(store: BackupStore, folder: str, label: str, now: datetime) -> None:
    """Keep the backup in ``folder`` from retention until it is unpinned."""
    record = {"label": label, "pinned_at": now.astimezone(UTC).isoformat()}
    store.put_bytes(folder + PINNED_NAME, json.dumps(record).encode())


def unpin(store: BackupStore, folder: str) -> None:
    store.delete(folder + PINNED_NAME)
