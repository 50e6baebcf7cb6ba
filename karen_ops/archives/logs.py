"""Removing rotated logs from the host once their archive is verified in the store.

Only files that went into that archive are removed, and only while they are still the very
file that was read: same device, inode, size and modification time. A log rotated again since
(``app.log.1`` now holding newer lines) or appended to is kept for the next archive.
"""

from __future__ import annotations

import enum
import logging
import os
from dataclasses import dataclass, field

from karen_ops.archives.readback import ReadBack
from karen_ops.archives.tarstream import ArchivedFile


class KeptReason(enum.Enum):
    """Why an archived log was left on the host."""

    CHANGED = "changed since it was archived"  # a newer file at the path, or lines appended
    GONE = "already gone"  # removed by someone else meanwhile
    NOT_REMOVABLE = "could not be removed"  # the folder denies this user deletion


@dataclass
class Removal:
    """Which archived logs were removed from the host and which were kept, with why."""

    removed: list[str] = field(default_factory=list)
    removed_bytes: int = 0
    kept: dict[str, str] = field(default_factory=dict)


def remove_archived_logs(
    files: list[ArchivedFile], checked: ReadBack, log: logging.Logger
) -> Removal:
    """Delete the local copies of ``files``; refuses unless ``checked`` verified the archive."""
    if not checked.verified:
        raise ValueError("local logs may only be removed after their archive is verified")
    removal = Removal()
    for file in files:
        reason = _remove_if_unchanged(file)
        if reason is None:
            removal.removed.append(file.path)
            removal.removed_bytes += file.size_bytes
        else:
            removal.kept[file.path] = reason
            log.warning("archived log kept path=%s reason=%s", file.path, reason)
    log.info(
        "archived logs removed files=%d bytes=%d kept=%d",
        len(removal.removed),
        removal.removed_bytes,
        len(removal.kept),
    )
    return removal


def _remove_if_unchanged(file: ArchivedFile) -> str | None:
    try:
        status = os.lstat(file.path)
    except FileNotFoundError:
        return KeptReason.GONE.value
    identity = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)
    if identity != (file.device, file.inode, file.size_bytes, file.mtime_ns):
        return KeptReason.CHANGED.value
    try:
        os.unlink(file.path)
    except FileNotFoundError:
        return KeptReason.GONE.value
    except OSError as exc:
        return f"{KeptReason.NOT_REMOVABLE.value}: {exc.strerror}"
    return None
