"""A backup store in a local or mounted folder (``file:///var/backups/karen``)."""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from karen_ops.errors import StoreError
from karen_ops.resources.store.base import BackupStore, IncompleteUpload, Upload

# Uploads in progress carry this marker; listings never show them.
PARTIAL_MARKER = ".partial-"

# Backups hold every row of the database: only the owner may read them, whatever the umask.
PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700


class FileStore(BackupStore):
    """Objects are files under ``root``; an upload is a hidden file renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def upload(self, key: str, expected_bytes: int | None = None) -> Upload:
        return _FileUpload(self, key)

    def reader(self, key: str) -> AbstractContextManager[BinaryIO]:
        path = self.path(key)
        try:
            return path.open("rb")
        except OSError as exc:
            raise StoreError(f"could not read {self.location(key)}: {exc.strerror}") from exc

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = self.path(prefix) if prefix else self.root
        if not base.is_dir():
            return
        for folder, _dirs, files in os.walk(base):
            for name in files:
                if PARTIAL_MARKER not in name:
                    yield (Path(folder) / name).relative_to(self.root).as_posix()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
        self.prune_empty_folders(self.path(key).parent)

    def location(self, key: str) -> str:
        return self.path(key).as_uri()

    def incomplete_uploads(self) -> list[IncompleteUpload]:
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.rglob(f".*{PARTIAL_MARKER}*"):
            final = path.name[1:].split(PARTIAL_MARKER, 1)[0]
            key = (path.parent / final).relative_to(self.root).as_posix()
            started = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            found.append(IncompleteUpload(key, started, path.relative_to(self.root).as_posix()))
        return found

    def discard(self, upload: IncompleteUpload) -> None:
        partial = self.path(upload.handle)
        partial.unlink(missing_ok=True)
        self.prune_empty_folders(partial.parent)

    def path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"backup store key {key!r} must be a relative path without '..'")
        return self.root / key

    def open_partial(self, path: Path) -> BinaryIO:
        """Create the hidden file an upload writes to, owner-only; every byte goes through it."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        return os.fdopen(fd, "wb")

    def prune_empty_folders(self, folder: Path) -> None:
        """Remove folders emptied by a delete or an abort, up to the store's root."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent


class _FileUpload(Upload):
    def __init__(self, store: FileStore, key: str) -> None:
        self.store = store
        self.final = store.path(key)
        self.partial = self.final.with_name(f".{self.final.name}{PARTIAL_MARKER}{uuid.uuid4().hex}")
        try:
            _make_private_folders(self.final.parent, store.root)
            self.file = store.open_partial(self.partial)
        except OSError as exc:
            raise StoreError(
                f"could not write to backup store {store.url}: {exc.strerror}; "
                f"check that KAREN_BACKUP_URL names a writable folder"
            ) from exc

    def write(self, data: bytes) -> int:
        try:
            return self.file.write(data)
        except OSError as exc:
            hint = _write_hint(exc, self.store)
            raise StoreError(
                f"could not write {self.final.as_uri()}: {exc.strerror}; {hint}"
            ) from exc

    def publish(self) -> None:
        # fsync before rename: a crash must leave either nothing or the whole object.
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.partial, self.final)
            _fsync_folder(self.final.parent)
        except OSError as exc:
            raise StoreError(
                f"could not publish {self.final.as_uri()}: {exc.strerror}; check the backup "
                "folder's permissions and free space"
            ) from exc

    def abort(self) -> None:
        # Closing flushes what is still buffered, which fails again on a full disk.
        with contextlib.suppress(OSError):
            self.file.close()
        self.partial.unlink(missing_ok=True)
        self.store.prune_empty_folders(self.final.parent)


def _write_hint(exc: OSError, store: FileStore) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"free space in {store.url} or point KAREN_BACKUP_URL at a store with room"
    return "check that KAREN_BACKUP_URL names a writable folder"


def _make_private_folders(folder: Path, root: Path) -> None:
    """Create ``folder`` and whatever is missing between it and the store's root, owner-only."""
    root.parent.mkdir(parents=True, exist_ok=True)
    for path in reversed([folder, *folder.parents]):
        if (path == root or root in path.parents) and not path.exists():
            path.mkdir(mode=PRIVATE_FOLDER, exist_ok=True)
            path.chmod(PRIVATE_FOLDER)  # mkdir's mode is masked by the umask


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
