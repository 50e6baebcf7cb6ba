"""Unfinished backups: uploads never published, and data whose manifest was never written.

Neither is a backup: nothing lists, verifies or restores them. Retention reports them and
removes them once they are old enough that no running backup can still be writing them, except
those of a database with an unreadable manifest, which it leaves as found.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from karen_ops.resources.store.base import BackupStore, IncompleteUpload
from karen_ops.resources.store.catalog import MANIFEST_NAME

_BACKUP_ID_TIME = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Leftovers:
    uploads: list[IncompleteUpload]
    folders: dict[str, list[str]]  # folder -> its keys, for folders without a manifest

    def describe(self) -> list[str]:
        described = [
            f"unfinished upload {u.key} started {u.started_at:%Y-%m-%d %H:%M}" for u in self.uploads
        ]
        described += [
            f"{folder} has no manifest ({len(keys)} objects)"
            for folder, keys in sorted(self.folders.items())
        ]
        return described

    def outside(self, scopes: set[str]) -> Leftovers:
        """These leftovers without those under any of the ``scopes`` prefixes."""

        def kept(key: str) -> bool:
            return not any(key.startswith(scope) for scope in scopes)

        uploads = [upload for upload in self.uploads if kept(upload.key)]
        return Leftovers(uploads, {f: keys for f, keys in self.folders.items() if kept(f)})


def find_leftovers(store: BackupStore, older_than: datetime) -> Leftovers:
    uploads = [u for u in store.incomplete_uploads() if u.started_at < older_than]
    folders: dict[str, list[str]] = defaultdict(list)
    for key in store.list_keys(""):
        folders[key.rpartition("/")[0] + "/"].append(key)

    orphaned = {
        folder: keys
        for folder, keys in folders.items()
        if not any(key.endswith("/" + MANIFEST_NAME) for key in keys)
        and _started_before(folder, older_than)
    }
    return Leftovers(uploads, orphaned)


def remove_leftovers(store: BackupStore, leftovers: Leftovers) -> int:
    for upload in leftovers.uploads:
        store.discard(upload)
    for keys in leftovers.folders.values():
        for key in keys:
            store.delete(key)
    return len(leftovers.uploads) + len(leftovers.folders)


def _started_before(folder: str, moment: datetime) -> bool:
    """Whether the backup in ``folder`` started before ``moment``, judged by its id.

    Folders whose last part is not a backup id are not karen-ops backups and are left alone.
    """
    backup_id = folder.rstrip("/").rpartition("/")[2]
    try:
        started = datetime.strptime(backup_id.split("-", 1)[0], _BACKUP_ID_TIME)
    except ValueError:
        return False
    return started.replace(tzinfo=UTC) < moment
