"""Client-side encryption: round trips, wrong keys, tampering, and encrypted backups verified."""

from __future__ import annotations

import base64
import os

import pytest

from karen_ops.backups.restore import restore_backup
from karen_ops.errors import ConfigurationError, StoreError
from karen_ops.resources.store import BackupStoreResource
from karen_ops.resources.store.encryption import CHUNK_BYTES, EncryptingStore, parse_key
from karen_ops.resources.store.file import FileStore
from karen_ops_tests.runs import materialize_day, only_manifest

KEY = os.urandom(32)


def _write(store, key: str, data: bytes) -> None:
    upload = store.upload(key)
    upload.write(data)
    upload.publish()


@pytest.mark.parametrize("size", [0, 5, CHUNK_BYTES, 3 * CHUNK_BYTES + 17])
def test_round_trip_of_any_size(tmp_path, size):
    plain_store = FileStore(tmp_path)
    store = EncryptingStore(plain_store, KEY)
    data = os.urandom(size)

    _write(store, "x/data.bin", data)

    assert store.read_bytes("x/data.bin") == data
    stored = plain_store.read_bytes("x/data.bin")
    assert stored[:9] == b"KAROPS-E1"
    assert data[:64] not in stored or size == 0


def test_wrong_key_is_a_clear_error(tmp_path):
    _write(EncryptingStore(FileStore(tmp_path), KEY), "a.bin", b"secret rows")

    with pytest.raises(StoreError, match="wrong KAREN_BACKUP_ENCRYPTION_KEY or the object"):
        EncryptingStore(FileStore(tmp_path), os.urandom(32)).read_bytes("a.bin")


def test_tampered_byte_is_detected(tmp_path):
    _write(EncryptingStore(FileStore(tmp_path), KEY), "a.bin", os.urandom(10_000))
    path = tmp_path / "a.bin"
    data = bytearray(path.read_bytes())
    data[5000] ^= 1
    path.write_bytes(bytes(data))

    with pytest.raises(StoreError, match="was changed after it was written"):
        EncryptingStore(FileStore(tmp_path), KEY).read_bytes("a.bin")


def test_cut_off_tail_is_detected(tmp_path):
    _write(EncryptingStore(FileStore(tmp_path), KEY), "a.bin", os.urandom(2 * CHUNK_BYTES + 5))
    path = tmp_path / "a.bin"
    path.write_bytes(path.read_bytes()[: CHUNK_BYTES + 100])  # whole first chunk survives

    with pytest.raises(StoreError):
        EncryptingStore(FileStore(tmp_path), KEY).read_bytes("a.bin")


def test_manifests_stay_readable_without_the_key(tmp_path):
    _write(EncryptingStore(FileStore(tmp_path), KEY), "b/manifest.json", b'{"kind": "x"}')

    assert FileStore(tmp_path).read_bytes("b/manifest.json") == b'{"kind": "x"}'


def test_bad_keys_say_how_to_make_a_good_one():
    with pytest.raises(ConfigurationError, match="decodes to 16 bytes, AES-256 needs 32"):
        parse_key(base64.b64encode(os.urandom(16)).decode())
    with pytest.raises(ConfigurationError, match="openssl rand -base64 32"):
        parse_key("not base64!")


def test_encrypted_backup_is_verified(chinook, store, yesterday):
    key = base64.b64encode(KEY).decode()
    resource = BackupStoreResource(url=store.url, encryption_key=key)

    result = materialize_day(chinook, store, yesterday, store_resource=resource)

    assert result.success
    manifest = only_manifest(store, chinook.dbname, yesterday)
    assert store.read_bytes(manifest.archive_key)[:9] == b"KAROPS-E1"
    assert manifest.encryption == "aes-256-gcm"
    events = [repr(e) for e in result.all_events]
    assert not [text for text in events if key in text]


def test_an_encrypted_backup_restored_without_the_key_says_the_key_is_missing(
    server, chinook, store, yesterday
):
    resource = BackupStoreResource(url=store.url, encryption_key=base64.b64encode(KEY).decode())
    assert materialize_day(chinook, store, yesterday, store_resource=resource).success
    manifest = only_manifest(store, chinook.dbname, yesterday)
    target = chinook.with_dbname("karen_restore_without_key")

    with pytest.raises(ConfigurationError) as raised:
        restore_backup(manifest, store, target)

    assert str(raised.value) == (
        f"backup {manifest.backup_id} was encrypted (aes-256-gcm) when it was written, and no "
        "key is set; set KAREN_BACKUP_ENCRYPTION_KEY to the key it was written with"
    )
    assert target.dbname not in server.databases()
