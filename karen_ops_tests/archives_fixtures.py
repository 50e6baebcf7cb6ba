"""Fixtures for the file archives: a fake host tree, a settings file, runs and extraction.

Test modules import the fixtures by their ``*_fixture`` names; pytest offers them under the
short names (``host``, ``day``, ``week``).
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml
import zstandard

from karen_ops.archives.assets import build_archive_assets
from karen_ops.archives.manifest import ArchiveManifest
from karen_ops.archives.partitions import (
    daily_partitions,
    last_complete_partition,
    weekly_partitions,
)
from karen_ops.resources.store import BackupStore, BackupStoreResource
from karen_ops.resources.store.catalog import list_backups
from karen_ops.resources.store.file import FileStore
from karen_ops.settings import OPS_CONFIG

START = "2026-11-01"
DAILY = daily_partitions("UTC", START)
WEEKLY = weekly_partitions("UTC", START)


@dataclass
class Host:
    """A host's file tree under a temporary folder, and the settings file that points at it."""

    root: Path
    settings_file: Path

    def write(self, relative: str, data: bytes) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def configure(self, **archives: object) -> None:
        archives.setdefault("host", "web-1")
        self.settings_file.write_text(yaml.safe_dump({"archives": archives}))


@pytest.fixture(name="host")
def host_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    settings_file = tmp_path / "karen-ops.yaml"
    settings_file.write_text("{}\n")
    monkeypatch.setenv(OPS_CONFIG, str(settings_file))
    return Host(tmp_path / "host", settings_file)


@pytest.fixture(name="day")
def day_fixture() -> str:
    return last_complete_partition(DAILY, datetime.now(UTC))


@pytest.fixture(name="week")
def week_fixture() -> str:
    return last_complete_partition(WEEKLY, datetime.now(UTC))


class EncryptedFileStore(FileStore):
    """A folder store that claims client-side encryption, for the secrets check only."""

    encrypted = True


class EncryptedStoreResource(BackupStoreResource):
    def open(self) -> BackupStore:
        return EncryptedFileStore(Path(self.url.removeprefix("file://")))


def materialize(
    asset: str,
    store: BackupStore,
    partition: str,
    resource: BackupStoreResource | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        build_archive_assets(DAILY, WEEKLY),
        selection=[asset],
        partition_key=partition,
        resources={"backup_store": resource or BackupStoreResource(url=store.url)},
        raise_on_error=False,
        instance=instance,
    )


def warnings_logged(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    """The warning lines the run logged, as an operator reads them in the UI."""
    return [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING
    ]


def manifests(store: BackupStore, kind: str) -> list[ArchiveManifest]:
    entries = [entry for entry in list_backups(store) if entry.kind == kind]
    return [
        ArchiveManifest.from_json(store.read_bytes(entry.manifest_key), location=entry.folder)
        for entry in entries
    ]


def only_manifest(store: BackupStore, kind: str) -> ArchiveManifest:
    found = manifests(store, kind)
    assert len(found) == 1, found
    return found[0]


def extract(store: BackupStore, manifest: ArchiveManifest) -> dict[str, bytes]:
    """Every regular file in the stored archive, by its name inside the archive."""
    plain = (
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress(store.read_bytes(manifest.archive_key))
    )
    files = {}
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
        for member in tar.getmembers():
            if member.isfile():
                files[member.name] = tar.extractfile(member).read()
    return files


def archive_names(store: BackupStore, manifest: ArchiveManifest) -> list[str]:
    plain = (
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress(store.read_bytes(manifest.archive_key))
    )
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
        return tar.getnames()


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = result.asset_materializations_for_node(asset)
    return {key: value.value for key, value in event.metadata.items()}


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "expected a failed step"
    return failures[0].step_failure_data.user_failure_data.description


def stored_keys(store: FileStore) -> list[str]:
    """Every file under the store's root, partial uploads included."""
    if not store.root.exists():
        return []
    return sorted(
        p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file()
    )


def read_manifest_json(store: BackupStore, manifest: ArchiveManifest) -> dict:
    return json.loads(store.read_bytes(manifest.manifest_key))
