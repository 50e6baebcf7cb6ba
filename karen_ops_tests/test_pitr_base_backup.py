"""postgres_base_backup's work: pg_basebackup streamed into the store, read back and verified."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from karen_ops.pitr.basebackup import BaseBackupRequest, take_base_backup
from karen_ops.pitr.basemanifest import list_base_backups
from karen_ops.pitr.unpack import VerifyOutcome, unpack_base_backup, verify_unpacked
from karen_ops.pitr.walnames import parse_lsn
from karen_ops.resources.store.file import FileStore

pytest_plugins = ["karen_ops_tests.pitr_fixtures"]
log = logging.getLogger(__name__)


@pytest.mark.parametrize("server_user", ["15", "16"], indirect=True)
def test_base_backup_is_streamed_with_a_manifest_and_passes_pg_verifybackup(
    server_folder: Path, private_server_factory, tmp_path: Path
) -> None:
    store_root = server_folder
    env = {"KAREN_BACKUP_URL": store_root.as_uri(), "KAREN_PITR_CLUSTER": "karen-test"}
    server = private_server_factory(env)
    server.execute("CREATE TABLE notes AS SELECT g AS id FROM generate_series(1, 1000) g")
    store = FileStore(store_root)

    manifest = take_base_backup(
        BaseBackupRequest(server.conninfo(), store, "karen-test", bin_dir=str(server.user.bin_dir)),
        log,
    )

    assert manifest.kind == "base" and manifest.timeline == 1
    assert parse_lsn(manifest.end_lsn) > parse_lsn(manifest.start_lsn)
    assert manifest.wal_segment_bytes == 1024 * 1024
    assert manifest.archive_key.startswith("base/karen-test/")
    assert manifest.archive_key.endswith(f"/{manifest.backup_id}/base.tar.zst")
    stored = json.loads(store.read_bytes(manifest.folder + "manifest.json"))
    assert stored["sha256"] == manifest.sha256 and stored["size_bytes"] == manifest.size_bytes
    assert [m.backup_id for m, _ in list_base_backups(store, "karen-test")] == [manifest.backup_id]
    # pg_basebackup waits until the backup's last WAL segment is archived.
    start_segment = manifest.start_wal_file
    assert (store_root / "wal/karen-test/00000001/00000000" / f"{start_segment}.json").exists()

    unpacked = tmp_path / "unpacked"
    unpack_base_backup(store, manifest, unpacked)
    assert (unpacked / "PG_VERSION").read_text().strip() == manifest.server_version.split(".")[0]
    result = verify_unpacked(unpacked, manifest, str(server.user.bin_dir))
    assert result.outcome is VerifyOutcome.PASSED, result.detail

    (unpacked / "PG_VERSION").write_text("99\n")
    result = verify_unpacked(unpacked, manifest, str(server.user.bin_dir))
    assert result.outcome is VerifyOutcome.FAILED
    assert "PG_VERSION" in result.detail
