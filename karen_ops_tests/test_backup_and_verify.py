"""The nightly backup and its verification restore against real PostgreSQL servers."""

from __future__ import annotations

import hashlib
import json
import logging

import dagster as dg

from karen_ops.backups.dump import BackupRequest, take_backup
from karen_ops.backups.manifest import manifest_key
from karen_ops.backups.scratch import SCRATCH_PREFIX
from karen_ops.demo.synthetic import load_synthetic_database, table_row_counts
from karen_ops.resources.postgres import connect
from karen_ops_tests.conftest import check_evaluations, stored_files
from karen_ops_tests.runs import failure_message, materialize_day, only_manifest
from karen_ops_tests.servers import exact_row_counts


def test_chinook_is_backed_up_and_verified_with_exact_counts(server, chinook, store, yesterday):
    result = materialize_day(chinook, store, yesterday)

    assert result.success
    manifest = only_manifest(store, chinook.dbname, yesterday)
    stored = store.path(manifest.archive_key).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == manifest.sha256
    assert len(stored) == manifest.size_bytes
    assert manifest.inventory.row_counts == exact_row_counts(chinook)
    assert manifest.inventory.row_counts["public.track"] == 3503
    assert manifest.pg_dump_version.split(".")[0] == str(server.major)
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert len(result.get_asset_check_evaluations()) == 5
    assert not [db for db in server.databases() if db.startswith(SCRATCH_PREFIX + chinook.dbname)]


def test_backup_metadata_shows_size_checksum_duration_and_location(chinook, store, yesterday):
    result = materialize_day(chinook, store, yesterday, only="postgres_backup")

    manifest = only_manifest(store, chinook.dbname, yesterday)
    metadata = result.asset_materializations_for_node("postgres_backup")[0].metadata
    assert metadata["sha256"].value == manifest.sha256
    assert metadata["size_bytes"].value == manifest.size_bytes
    assert metadata["tables"].value == 11
    assert metadata["location"].value == store.location(manifest.archive_key)
    assert metadata["duration_seconds"].value > 0
    assert metadata["throughput_mb_per_s"].value > 0


def test_synthetic_ai_karen_database_is_backed_up_and_verified(server, store, yesterday):
    with server.database("karen") as karen:
        with connect(karen, setting="test", autocommit=True) as conn:
            load_synthetic_database(conn, users=300)
            expected = table_row_counts(conn)

        result = materialize_day(karen, store, yesterday)

        assert result.success
        counts = only_manifest(store, karen.dbname, yesterday).inventory.row_counts
        assert {name.removeprefix("public."): n for name, n in counts.items()} == expected
        assert expected["messages"] == 300 * 5 * 8
        rows = result.asset_materializations_for_node("backup_verification")[0].metadata
        assert rows["rows_verified"].value == sum(expected.values())


def test_sequences_and_large_objects_are_compared(server, store, yesterday):
    with server.database() as db:
        with connect(db, setting="test", autocommit=True) as conn:
            conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text)")
            conn.execute("INSERT INTO notes (body) SELECT 'n' FROM generate_series(1, 42)")
            conn.execute("SELECT lo_from_bytea(0, 'attachment'::bytea)")

        result = materialize_day(db, store, yesterday)

        assert result.success
        manifest = only_manifest(store, db.dbname, yesterday)
        assert manifest.inventory.sequences == {"public.notes_id_seq": 42}
        assert manifest.inventory.large_objects == 1
        checks = check_evaluations(result)
        assert checks["sequence_values_match"].passed
        assert checks["large_object_count_matches"].passed


def test_a_rerun_keeps_the_earlier_backup_and_verifies_the_newest(chinook, store, yesterday):
    first = materialize_day(chinook, store, yesterday, only="postgres_backup")
    with connect(chinook, setting="test", autocommit=True) as conn:
        conn.execute("DELETE FROM playlist_track WHERE playlist_id = 1")

    second = materialize_day(chinook, store, yesterday)

    assert first.success and second.success
    verified = second.asset_materializations_for_node("backup_verification")[0].metadata
    newest = second.asset_materializations_for_node("postgres_backup")[0].metadata
    assert verified["backup_id"].value == newest["backup_id"].value
    assert len([p for p in stored_files(store) if p.name == "manifest.json"]) == 2


def test_materializations_are_recorded_per_partition(chinook, store, yesterday):
    result = materialize_day(chinook, store, yesterday)

    keys = {m.partition for m in result.asset_materializations_for_node("postgres_backup")}
    assert keys == {yesterday}
    assert isinstance(result, dg.ExecuteInProcessResult)


def test_stored_backups_are_readable_by_their_owner_only(chinook, store, yesterday):
    materialize_day(chinook, store, yesterday, only="postgres_backup")

    assert stored_files(store), "expected a backup"
    for path in [*stored_files(store), *(p for p in store.root.rglob("*") if p.is_dir())]:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"


def test_damaged_manifests_stop_no_other_backups_verification(chinook, store, yesterday):
    materialize_day(chinook, store, yesterday, only="postgres_backup")
    good = json.loads(only_manifest(store, chinook.dbname, yesterday).to_json())
    # Beside it, a manifest whose creation time is not a time; elsewhere, ones not even JSON.
    timeless = {**good, "backup_id": "20260101T000000Z-dead", "created_at": 5}
    store.put_bytes(
        f"postgres/{chinook.dbname}/{yesterday}/{timeless['backup_id']}/manifest.json",
        json.dumps(timeless).encode(),
    )
    for n, body in enumerate((b"{", b"[]", b"null")):
        store.put_bytes(f"postgres/other/{yesterday}/20260101T00000{n}Z-dead/manifest.json", body)

    result = materialize_day(chinook, store, yesterday, only="backup_verification")

    assert result.success
    verified = result.asset_materializations_for_node("backup_verification")[0].metadata
    assert verified["backup_id"].value == good["backup_id"]


def test_verification_restores_the_backup_this_instance_took_not_a_newer_namesake(
    server, chinook, store, yesterday
):
    instance = dg.DagsterInstance.ephemeral()
    ours = materialize_day(chinook, store, yesterday, only="postgres_backup", instance=instance)
    ours_id = ours.asset_materializations_for_node("postgres_backup")[0].metadata["backup_id"]
    # Another deployment sharing the store backs up its own database of the same name, later.
    with server.database("namesake") as other:
        with connect(other, setting="test", autocommit=True) as conn:
            conn.execute("CREATE TABLE elsewhere AS SELECT 1 AS only_here")
        request = BackupRequest(other, store, partition=yesterday, label=chinook.dbname)
        theirs = take_backup(request, logging.getLogger("test"))

    verified = materialize_day(
        chinook, store, yesterday, only="backup_verification", instance=instance
    )

    assert verified.success
    metadata = verified.asset_materializations_for_node("backup_verification")[0].metadata
    assert metadata["backup_id"].value == ours_id.value != theirs.backup_id
    assert all(e.passed for e in check_evaluations(verified).values())


def test_verification_of_a_recorded_backup_gone_from_the_store_names_it(chinook, store, yesterday):
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_day(chinook, store, yesterday, only="postgres_backup", instance=instance)
    manifest = only_manifest(store, chinook.dbname, yesterday)
    store.delete(manifest_key(manifest.archive_key))

    verified = materialize_day(
        chinook, store, yesterday, only="backup_verification", instance=instance
    )

    assert not verified.success
    assert (
        f"backup {manifest.backup_id}, which postgres_backup recorded for {yesterday}, is not "
        f"among the complete backups of database {chinook.dbname} in {store.url}"
    ) in failure_message(verified)
