"""wal-push and wal-fetch: idempotent retries, refused conflicts, checked bytes, real archiving."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from karen_ops.errors import SegmentConflictError
from karen_ops.pitr import walnames, walstore
from karen_ops.pitr.__main__ import main as pitr_main
from karen_ops.pitr.commands import FETCH_ABORT, FETCH_NOT_FOUND
from karen_ops.resources.store import BackupStoreResource
from karen_ops.resources.store.file import FileStore

pytest_plugins = ["karen_ops_tests.pitr_fixtures"]

SEGMENT = "000000010000000000000003"
MiB = 1024 * 1024


def wal_file(folder: Path, name: str = SEGMENT, fill: bytes = b"a") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes((os.urandom(4096) + fill * MiB)[:MiB])
    return path


@pytest.fixture
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FileStore:
    monkeypatch.setenv("KAREN_BACKUP_URL", (tmp_path / "store").as_uri())
    monkeypatch.setenv("KAREN_PITR_CLUSTER", "karen-test")
    monkeypatch.delenv("KAREN_BACKUP_ENCRYPTION_KEY", raising=False)
    return FileStore(tmp_path / "store")


def test_a_retried_push_of_the_same_segment_succeeds_and_a_different_one_is_refused(
    tmp_path: Path, store_env: FileStore, capsys: pytest.CaptureFixture
) -> None:
    first = wal_file(tmp_path / "pg_wal")

    assert pitr_main(["wal-push", str(first)]) == 0
    assert pitr_main(["wal-push", str(first)]) == 0
    assert "already archived" in capsys.readouterr().err

    other = wal_file(tmp_path / "other_server")
    assert pitr_main(["wal-push", str(other)]) == 1
    err = capsys.readouterr().err
    assert f"could not archive {SEGMENT}: refusing to archive {other}" in err
    assert "already holds a different 000000010000000000000003" in err

    with pytest.raises(SegmentConflictError):
        walstore.push(store_env, "karen-test", other, datetime.now(UTC))
    fetched = tmp_path / "RECOVERYXLOG"
    assert pitr_main(["wal-fetch", SEGMENT, str(fetched)]) == 0
    assert fetched.read_bytes() == first.read_bytes()


def test_stored_segment_is_compressed_with_a_sidecar_holding_its_sha256(
    tmp_path: Path, store_env: FileStore
) -> None:
    import hashlib

    path = wal_file(tmp_path / "pg_wal")
    walstore.push(store_env, "karen-test", path, datetime.now(UTC))

    wal = walnames.parse_wal_name(SEGMENT)
    stored = store_env.read_bytes(walnames.data_key("karen-test", wal))
    sidecar = walstore.read_sidecar(store_env, "karen-test", wal)
    assert walnames.data_key("karen-test", wal) == f"wal/karen-test/00000001/00000000/{SEGMENT}.zst"
    assert stored[:4] == b"\x28\xb5\x2f\xfd"  # zstd frame magic
    assert len(stored) < MiB // 10
    assert sidecar.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (sidecar.size_bytes, sidecar.encryption) == (MiB, "none")


def test_fetch_of_a_damaged_segment_aborts_recovery_and_a_missing_one_says_not_found(
    tmp_path: Path, store_env: FileStore, capsys: pytest.CaptureFixture
) -> None:
    path = wal_file(tmp_path / "pg_wal")
    walstore.push(store_env, "karen-test", path, datetime.now(UTC))
    target = tmp_path / "restored" / "RECOVERYXLOG"
    target.parent.mkdir()

    assert pitr_main(["wal-fetch", "000000010000000000000004", str(target)]) == FETCH_NOT_FOUND
    assert "000000010000000000000004 is not in the WAL archive" in capsys.readouterr().err

    data_path = store_env.path(walnames.data_key("karen-test", walnames.parse_wal_name(SEGMENT)))
    import zstandard

    damaged = bytearray(path.read_bytes())
    damaged[100] ^= 0xFF
    data_path.write_bytes(zstandard.ZstdCompressor().compress(bytes(damaged)))
    assert pitr_main(["wal-fetch", SEGMENT, str(target)]) == FETCH_ABORT
    assert "does not match its sidecar" in capsys.readouterr().err
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_truncated_segment_is_refused(tmp_path: Path, store_env: FileStore) -> None:
    path = tmp_path / SEGMENT
    path.write_bytes(b"x" * (MiB - 10))
    assert pitr_main(["wal-push", str(path)]) == 1
    assert list(store_env.list_keys("")) == []


def test_encrypted_archive_holds_no_readable_wal_and_fetches_back_exactly(
    tmp_path: Path, store_env: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAREN_BACKUP_ENCRYPTION_KEY", base64.b64encode(os.urandom(32)).decode())
    path = wal_file(tmp_path / "pg_wal", fill=b"conversation text ")
    assert pitr_main(["wal-push", str(path)]) == 0

    wal = walnames.parse_wal_name(SEGMENT)
    stored = store_env.read_bytes(walnames.data_key("karen-test", wal))
    assert stored.startswith(b"KAROPS-E1")
    assert walstore.read_sidecar(store_env, "karen-test", wal).encryption == "aes-256-gcm"

    target = tmp_path / "RECOVERYXLOG"
    assert pitr_main(["wal-fetch", SEGMENT, str(target)]) == 0
    assert target.read_bytes() == path.read_bytes()

    monkeypatch.delenv("KAREN_BACKUP_ENCRYPTION_KEY")
    assert pitr_main(["wal-fetch", SEGMENT, str(tmp_path / "again")]) == FETCH_ABORT


@pytest.mark.parametrize("server_user", ["15", "16"], indirect=True)
@pytest.mark.parametrize("backend", ["folder", "s3"])
def test_server_archives_every_switched_segment_through_wal_push(
    backend: str, request: pytest.FixtureRequest, private_server_factory, tmp_path
) -> None:
    if backend == "folder":
        url = request.getfixturevalue("server_folder").as_uri()
        env = {"KAREN_BACKUP_URL": url, "KAREN_PITR_CLUSTER": "karen-test"}
    else:
        endpoint = request.getfixturevalue("s3_env")
        bucket = request.getfixturevalue("s3_bucket")
        url = f"s3://{bucket}/archive"
        env = {
            "KAREN_BACKUP_URL": url,
            "KAREN_S3_ENDPOINT_URL": endpoint,
            "KAREN_PITR_CLUSTER": "karen-test",
            **{k: os.environ[k] for k in os.environ if k.startswith("AWS_")},
        }
    server = private_server_factory(env)
    assert (
        server.execute("SHOW server_version")[0][0].split(".")[0]
        == (request.node.callspec.params["server_user"])
    )
    server.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    server.execute("INSERT INTO notes SELECT g, repeat('x', 100) FROM generate_series(1, 500) g")
    first = server.switch_and_wait()
    server.execute("INSERT INTO notes VALUES (501, 'last')")
    second = server.switch_and_wait()

    store = BackupStoreResource(url=url, s3_endpoint_url=env.get("KAREN_S3_ENDPOINT_URL")).open()
    archived = walstore.archived_names(store, "karen-test")
    assert {first, second} <= archived
    assert all(name >= "000000010000000000000001" for name in archived)

    target = tmp_path / "fetched"
    sidecar = walstore.fetch(store, "karen-test", second, target)
    assert target.stat().st_size == 1 * MiB == sidecar.size_bytes
    row = server.execute("SELECT failed_count FROM pg_stat_archiver")
    assert row == [(0,)]
