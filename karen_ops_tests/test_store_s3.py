"""Backups in S3 (a real S3 API on localhost): multipart uploads, integrity, failures."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta

import pytest

from karen_ops.errors import StoreError
from karen_ops.resources.store import BackupStoreResource
from karen_ops.resources.store.catalog import list_backups
from karen_ops.resources.store.s3 import (
    MAX_PART_BYTES,
    MAX_PARTS,
    MiB,
    S3Store,
    choose_part_size,
    s3_client,
)
from karen_ops_tests.runs import materialize_day, only_manifest

TB = 1000**4


def test_backup_and_verification_run_against_s3(chinook, s3_store, s3_env, yesterday):
    resource = BackupStoreResource(url=s3_store.url, s3_endpoint_url=s3_env)

    result = materialize_day(chinook, s3_store, yesterday, store_resource=resource)

    assert result.success
    manifest = only_manifest(s3_store, chinook.dbname, yesterday)
    downloaded = s3_store.client.get_object(
        Bucket=s3_store.bucket, Key=s3_store.object_key(manifest.archive_key)
    )["Body"].read()
    assert hashlib.sha256(downloaded).hexdigest() == manifest.sha256
    assert [entry.verified for entry in list_backups(s3_store)] == [True]


def test_multipart_upload_with_a_small_part_size_round_trips(s3_env, s3_bucket):
    store = S3Store(
        s3_client(s3_env),
        s3_bucket,
        "parts",
        part_bytes=5 * MiB,
    )
    data = os.urandom(12 * MiB + 123)

    upload = store.upload("big/object.bin")
    for offset in range(0, len(data), 1_000_000):
        upload.write(data[offset : offset + 1_000_000])
    upload.publish()

    head = store.client.head_object(Bucket=s3_bucket, Key="parts/big/object.bin")
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 2 MiB
    assert store.read_bytes("big/object.bin") == data
    assert store.incomplete_uploads() == []


def test_failed_upload_is_aborted_and_leaves_no_parts(s3_store):
    s3_store.part_bytes = 5 * MiB
    upload = s3_store.upload("half/written.bin")
    upload.write(os.urandom(6 * MiB))  # one part sent, one started

    assert len(s3_store.incomplete_uploads()) == 1
    upload.abort()

    assert s3_store.incomplete_uploads() == []
    assert list(s3_store.list_keys("")) == []


def test_store_going_away_mid_upload_publishes_nothing(s3_env, s3_bucket):
    from moto.server import ThreadedMotoServer

    # A server of this test's own, so stopping it leaves the shared one alone.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = s3_client(f"http://{host}:{port}")
    client.create_bucket(Bucket="going-away")
    store = S3Store(client, "going-away", "p", part_bytes=5 * MiB)
    upload = store.upload("db/archive.zst")
    upload.write(os.urandom(6 * MiB))

    server.stop()
    with pytest.raises(StoreError, match=r"could not upload s3://going-away/p/db/archive\.zst"):
        upload.write(os.urandom(5 * MiB))
        upload.publish()
    upload.abort()  # the store is gone: the abort is logged, not raised

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        assert list(store.list_keys("")) == []
        leftovers = store.incomplete_uploads()
        assert [u.key for u in leftovers] == ["db/archive.zst"]
        store.discard(leftovers[0])
        assert store.incomplete_uploads() == []
    finally:
        server.stop()


def test_server_side_encryption_is_requested(s3_env, s3_bucket):
    store = S3Store(s3_client(s3_env), s3_bucket, "", server_side_encryption="AES256")
    store.put_bytes("a.json", b"{}")
    upload = store.upload("b.bin")
    upload.write(b"x" * 100)
    upload.publish()

    for key in ("a.json", "b.bin"):
        head = store.client.head_object(Bucket=s3_bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256"


@pytest.mark.parametrize("size", [0, 1, 10 * MiB, 50 * 1024 * MiB, 2 * TB, 5 * TB])
def test_part_size_keeps_any_dump_up_to_5_tb_under_the_part_limit(size):
    part = choose_part_size(size)

    assert 5 * MiB <= part <= MAX_PART_BYTES
    assert part % MiB == 0
    assert size / part <= MAX_PARTS * 0.8  # room for a dump a quarter larger than expected


def test_unknown_size_plans_for_a_terabyte():
    assert choose_part_size(None) * MAX_PARTS >= 1024**4


def test_s3_url_without_bucket_is_refused():
    from karen_ops.errors import ConfigurationError
    from karen_ops.resources.store.resource import open_store

    with pytest.raises(ConfigurationError, match="names no bucket; use s3://bucket/prefix"):
        open_store("s3:///prefix")


def test_entries_are_ordered_by_creation_time_not_by_name(s3_store):
    import json
    from datetime import UTC, datetime

    newer = datetime(2026, 12, 3, tzinfo=UTC)
    for folder, created in (
        ("postgres/k/a-first-by-name/", newer),
        ("postgres/k/z/", newer - timedelta(days=5)),
    ):
        s3_store.put_bytes(
            folder + "manifest.json",
            json.dumps(
                {
                    "kind": "postgres",
                    "backup_id": folder,
                    "created_at": created.isoformat(),
                    "size_bytes": 1,
                    "database": "k",
                }
            ).encode(),
        )

    assert [e.folder for e in list_backups(s3_store)] == [
        "postgres/k/z/",
        "postgres/k/a-first-by-name/",
    ]
