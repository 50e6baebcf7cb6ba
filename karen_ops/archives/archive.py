"""Taking one file archive: stream it into the store, publish it, read it back, mark it.

A file archive is trusted only once it has been read back from the store and every file in it
matched its manifest; then the catalog's ``verified.json`` mark is written beside it, so
retention and restores can tell it from an unproven one.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from karen_ops.archives.collect import Selection
from karen_ops.archives.manifest import (
    ARCHIVE_FORMAT,
    ArchiveKind,
    ArchiveManifest,
    archive_key,
    new_backup_id,
    publish,
)
from karen_ops.archives.readback import ReadBack, read_back
from karen_ops.archives.tarstream import ArchivedFile, WrittenArchive, write_archive
from karen_ops.errors import ArchiveError, KarenOpsError
from karen_ops.resources.store import BackupStore
from karen_ops.resources.store.catalog import mark_verified


class Phase(enum.Enum):
    """The step an archive is in, so a failure says which step broke."""

    ARCHIVE = "archive"  # tar, zstd and SHA-256 streaming into the store
    PUBLISH = "publish"  # the archive made visible, then its manifest written
    VERIFY = "verify"  # the stored archive read back and compared with its manifest


@dataclass(frozen=True)
class ArchiveRequest:
    """What to archive, from which host, for which partition, and into which store."""

    kind: ArchiveKind
    name: str
    partition: str
    selection: Selection
    store: BackupStore
    # The setting that lists these paths, named in errors that the operator fixes there.
    setting: str
    compression_level: int


@dataclass(frozen=True)
class ArchiveResult:
    """A published, verified archive, and the files as they were read."""

    manifest: ArchiveManifest
    files: list[ArchivedFile]
    read_back: ReadBack


def take_verified_archive(request: ArchiveRequest, log: logging.Logger) -> ArchiveResult:
    """Archive, publish, read back and mark verified; raise if any step fails."""
    phase = Phase.ARCHIVE
    try:
        manifest, files = _archive_and_publish(request, log)
        phase = Phase.VERIFY
        checked = read_back(request.store, manifest)
        if not checked.verified:
            raise ArchiveError(
                f"the stored archive {request.store.location(manifest.archive_key)} does not "
                f"match its manifest: {checked.summary()}; it stays in the store without a "
                "verified mark, and no local file was removed"
            )
        mark_verified(request.store, manifest.folder, _verification_record(checked))
    except KarenOpsError as exc:
        raise ArchiveError(
            f"could not take the {request.kind.value} archive of {request.name} during "
            f"{phase.value}: {exc}"
        ) from exc
    log.info(
        "archive verified kind=%s name=%s backup_id=%s files=%d",
        request.kind.value,
        request.name,
        manifest.backup_id,
        checked.files_checked,
    )
    return ArchiveResult(manifest, files, checked)


def _archive_and_publish(
    request: ArchiveRequest, log: logging.Logger
) -> tuple[ArchiveManifest, list[ArchivedFile]]:
    store, selection = request.store, request.selection
    created = datetime.now(UTC)
    started = time.monotonic()
    backup_id = new_backup_id(created)
    key = archive_key(request.kind, request.name, request.partition, backup_id)
    log.info(
        "archive starting kind=%s name=%s entries=%d missing=%d target=%s",
        request.kind.value,
        request.name,
        len(selection.sources),
        len(selection.missing),
        store.location(key),
    )

    upload = store.upload(key)
    try:
        written = write_archive(
            selection.sources,
            upload,
            location=store.location(key),
            level=request.compression_level,
            setting=request.setting,
        )
    except BaseException:
        upload.abort()
        raise

    manifest = _manifest(request, written, key, backup_id, created, started)
    publish(store, upload, manifest)
    log.info(
        "archive published kind=%s name=%s files=%d file_bytes=%d bytes=%d sha256=%s seconds=%.1f",
        manifest.kind,
        manifest.name,
        len(manifest.files),
        manifest.file_bytes,
        manifest.size_bytes,
        manifest.sha256,
        manifest.duration_seconds,
    )
    return manifest, written.files


def _manifest(
    request: ArchiveRequest,
    written: WrittenArchive,
    key: str,
    backup_id: str,
    created: datetime,
    started: float,
) -> ArchiveManifest:
    return ArchiveManifest(
        kind=request.kind.value,
        name=request.name,
        backup_id=backup_id,
        partition=request.partition,
        created_at=created.isoformat(),
        duration_seconds=round(time.monotonic() - started, 3),
        archive_key=key,
        format=ARCHIVE_FORMAT,
        compression=f"zstd:{request.compression_level}",
        encrypted=request.store.encrypted,
        size_bytes=written.stored_bytes,
        sha256=written.sha256,
        file_bytes=written.file_bytes,
        files=[file.manifest_entry() for file in written.files],
        other_entries=written.other_entries,
        missing=list(request.selection.missing),
        vanished=written.vanished,
        skipped=written.skipped,
        excluded=len(request.selection.excluded),
    )


def _verification_record(checked: ReadBack) -> dict[str, object]:
    return {
        "verified_at": datetime.now(UTC).isoformat(),
        "method": "read back from the store; archive and per-file SHA-256 compared",
        "files_checked": checked.files_checked,
        "sha256": checked.sha256,
    }
