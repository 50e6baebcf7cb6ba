"""The store's catalog: every complete backup of every kind, with its verified and pinned marks.

Each backup lives in its own folder, ``<kind>/<name>/<day>/<backup id>/``, holding its data, a
``manifest.json`` written last, and later, small marker objects: ``verified.json`` once a
verification restore proved it, ``pinned.json`` while an operator keeps it from retention.
Every manifest, whatever the kind, carries ``kind``, ``backup_id``, ``created_at`` and
``size_bytes``; the catalog reads those and nothing else.

A manifest that cannot be read damages only its own database (its ``<kind>/<name>/`` scope):
listings of more than that scope go on without it and warn, naming the folder to move aside.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from karen_ops.errors import StoreError
from karen_ops.resources.store.base import BackupStore

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class UnreadableManifest:
    """A manifest the catalog could not read: its backup is neither listed nor deletable."""

    key: str
    location: str
    reason: str

    @property
    def scope(self) -> str:
        """The ``<kind>/<name>/`` prefix of the one database (or cluster) it belongs to."""
        return "/".join(self.key.split("/")[:2]) + "/"

    def describe(self) -> str:
        return (
            f"manifest {self.location} is unreadable ({self.reason}); move the folder aside "
            "or delete it"
        )


@dataclass(frozen=True)
class Catalog:
    """Every readable backup under a prefix, oldest first, and the manifests that were not."""

    entries: list[CatalogEntry]
    unreadable: list[UnreadableManifest]

    @property
    def damaged_scopes(self) -> set[str]:
        return {manifest.scope for manifest in self.unreadable}


def read_catalog(store: BackupStore, prefix: str = "") -> Catalog:
    """Every backup under ``prefix`` that has a manifest, readable or not."""
    folders: dict[str, set[str]] = defaultdict(set)
    for key in store.list_keys(prefix):
        folder, _, name = key.rpartition("/")
        folders[folder + "/"].add(name)

    entries: list[CatalogEntry] = []
    unreadable: list[UnreadableManifest] = []
    for folder, names in folders.items():
        if MANIFEST_NAME in names:
            found = _entry(store, folder, names)
            (entries if isinstance(found, CatalogEntry) else unreadable).append(found)
    return Catalog(sorted(entries, key=lambda entry: entry.created_at), unreadable)


def list_backups(store: BackupStore, prefix: str = "") -> list[CatalogEntry]:
    """Every readable backup under ``prefix``, oldest first by creation time.

    An unreadable manifest fails a listing of its own database only (``prefix`` within its
    ``<kind>/<name>/``), since that listing would be incomplete; wider listings leave it out
    and log a warning.
    """
    catalog = read_catalog(store, prefix)
    for damaged in catalog.unreadable:
        if prefix.startswith(damaged.scope):
            raise StoreError(damaged.describe())
        log.warning("listing without a backup: %s", damaged.describe())
    return catalog.entries


def _entry(store: BackupStore, folder: str, names: set[str]) -> CatalogEntry | UnreadableManifest:
    key = folder + MANIFEST_NAME
    try:
        raw = json.loads(store.read_bytes(key))
        if not isinstance(raw, dict):
            raise TypeError(f"a JSON {type(raw).__name__}, not an object")
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
        if not all(isinstance(text, str) for text in (entry.kind, entry.name, entry.backup_id)):
            raise TypeError("kind, name and backup_id must be strings")
        return entry
    except (ValueError, KeyError, TypeError) as exc:
        reason = str(exc) if not isinstance(exc, KeyError) else f"no field {exc}"
        return UnreadableManifest(key, store.location(key), reason)


def _pin_label(store: BackupStore, folder: str) -> str:
    # A damaged pin still pins: keeping a backup too long is the safe mistake.
    try:
        record = json.loads(store.read_bytes(folder + PINNED_NAME))
    except ValueError:
        return "pinned (pinned.json unreadable)"
    return str(record.get("label", "pinned")) if isinstance(record, dict) else "pinned"


def mark_verified(store: BackupStore, folder: str, details: dict[str, object]) -> None:
    """Record that a verification restore proved the backup in ``folder``."""
    store.put_bytes(folder + VERIFIED_NAME, json.dumps(details, sort_keys=True).encode())


def pin(store: BackupStore, folder: str, label: str, now: datetime) -> None:
    """Keep the backup in ``folder`` from retention until it is unpinned."""
    record = {"label": label, "pinned_at": now.astimezone(UTC).isoformat()}
    store.put_bytes(folder + PINNED_NAME, json.dumps(record).encode())


def unpin(store: BackupStore, folder: str) -> None:
    store.delete(folder + PINNED_NAME)
