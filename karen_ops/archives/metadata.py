"""What a file-archive materialization shows in the Dagster UI."""

from __future__ import annotations

import dagster as dg

from karen_ops.archives.archive import ArchiveResult
from karen_ops.archives.logs import Removal
from karen_ops.resources.store import BackupStore

# Enough rows to see what an archive holds without flooding the UI for a large folder.
_LISTED_FILES = 50


def archive_metadata(result: ArchiveResult, store: BackupStore) -> dict[str, object]:
    manifest = result.manifest
    return {
        "location": dg.MetadataValue.url(store.location(manifest.archive_key)),
        "backup_id": manifest.backup_id,
        "name": manifest.name,
        "size_bytes": dg.MetadataValue.int(manifest.size_bytes),
        "file_bytes": dg.MetadataValue.int(manifest.file_bytes),
        "sha256": manifest.sha256,
        "files": dg.MetadataValue.int(len(manifest.files)),
        "verified": result.read_back.verified,
        "encrypted": manifest.encrypted,
        "missing_paths": dg.MetadataValue.int(len(manifest.missing)),
        "missing": _listing(manifest.missing),
        "vanished": _listing(manifest.vanished),
        "excluded_entries": dg.MetadataValue.int(manifest.excluded),
        "duration_seconds": dg.MetadataValue.float(manifest.duration_seconds),
        "file_list": dg.MetadataValue.md(_files_table(manifest.files)),
    }


def removal_metadata(removal: Removal) -> dict[str, object]:
    return {
        "local_files_removed": dg.MetadataValue.int(len(removal.removed)),
        "local_bytes_removed": dg.MetadataValue.int(removal.removed_bytes),
        "local_files_kept": dg.MetadataValue.int(len(removal.kept)),
        "kept": _listing([f"{path} ({reason})" for path, reason in removal.kept.items()]),
    }


def nothing_to_archive_metadata(missing: list[str]) -> dict[str, object]:
    return {
        "files": dg.MetadataValue.int(0),
        "stored": False,
        "missing_paths": dg.MetadataValue.int(len(missing)),
        "missing": _listing(missing),
    }


def _listing(items: list[str]) -> str:
    return ", ".join(items) if items else "none"


def _files_table(files: list[dict[str, object]]) -> str:
    lines = ["| file | bytes | sha256 |", "|---|---:|---|"]
    lines += [
        f"| {entry['path']} | {entry['size_bytes']:,} | {str(entry['sha256'])[:16]}… |"
        for entry in files[:_LISTED_FILES]
    ]
    if len(files) > _LISTED_FILES:
        lines.append(f"| and {len(files) - _LISTED_FILES} more | | |")
    return "\n".join(lines)
