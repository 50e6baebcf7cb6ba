"""Verification restores that must fail, and how they say so."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest
import zstandard

from karen_ops.backups.archive import archive_version, fetch_archive, require_readable
from karen_ops.backups.manifest import Inventory, manifest_key
from karen_ops.backups.scratch import drop_scratch_database, scratch_database
from karen_ops.errors import ArchiveFormatError, RestoreError
from karen_ops.resources.pg_tools import list_tools
from karen_ops_tests.conftest import check_evaluations
from karen_ops_tests.runs import materialize_day, only_manifest


def _rewrite_manifest(store, manifest, **changes):
    changed = dataclasses.replace(manifest, **changes)
    store.put_bytes(manifest_key(manifest.archive_key), changed.to_json())
    return changed


def test_tampered_archive_fails_checksum_and_is_never_restored(server, chinook, store, yesterday):
    materialize_day(chinook, store, yesterday, only="postgres_backup")
    manifest = only_manifest(store, chinook.dbname, yesterday)
    archive = store.path(manifest.archive_key)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))

    result = materialize_day(chinook, store, yesterday, only="backup_verification")

    assert not result.success
    checks = check_evaluations(result)
    assert not checks["checksum_matches"].passed
    assert checks["checksum_matches"].metadata["expected_sha256"].value == manifest.sha256
    assert not checks["restore_succeeded"].passed
    assert "not attempted" in checks["restore_succeeded"].description
    assert not [db for db in server.databases() if db.startswith("karen_verify_" + chinook.dbname)]


def test_restore_missing_rows_fails_row_counts_match_naming_the_table(chinook, store, yesterday):
    materialize_day(chinook, store, yesterday, only="postgres_backup")
    manifest = only_manifest(store, chinook.dbname, yesterday)
    # The manifest promises seven more tracks than the archive holds.
    counts = {**manifest.inventory.row_counts, "public.track": 3510}
    _rewrite_manifest(store, manifest, inventory=Inventory(counts, {}, 0))

    result = materialize_day(chinook, store, yesterday, only="backup_verification")

    assert not result.success
    checks = check_evaluations(result)
    assert checks["restore_succeeded"].passed
    failed = checks["row_counts_match"]
    assert not failed.passed
    assert failed.description == "1 differ: public.track: manifest 3510, restored 3503"
    assert failed.metadata["mismatched"].value == 1


def test_archive_that_is_not_a_dump_gives_a_clear_error(service_server, store, yesterday):
    with service_server.database() as db:
        materialize_day(db, store, yesterday, only="postgres_backup")
        manifest = only_manifest(store, db.dbname, yesterday)
        fake = zstandard.ZstdCompressor().compress(b"SELECT 1; -- a plain SQL file\n")
        store.put_bytes(manifest.archive_key, fake)
        _rewrite_manifest(
            store,
            manifest,
            size_bytes=len(fake),
            sha256=__import__("hashlib").sha256(fake).hexdigest(),
        )

        result = materialize_day(db, store, yesterday, only="backup_verification")

    checks = check_evaluations(result)
    assert checks["checksum_matches"].passed
    assert not checks["restore_succeeded"].passed
    assert "is not a PostgreSQL custom-format archive" in checks["restore_succeeded"].description


def test_empty_and_foreign_files_are_named_not_tracebacks(tmp_path):
    empty = tmp_path / "empty.dump"
    empty.write_bytes(b"")
    text = tmp_path / "notes.dump"
    text.write_text("hello, this is not a dump")

    with pytest.raises(ArchiveFormatError, match="archive file:///x is empty; take a new backup"):
        archive_version(empty, location="file:///x")
    with pytest.raises(ArchiveFormatError, match="is not a PostgreSQL custom-format archive"):
        archive_version(text, location="file:///y")


def test_stored_bytes_that_are_not_zstd_are_reported(store, tmp_path, chinook, yesterday):
    materialize_day(chinook, store, yesterday, only="postgres_backup")
    manifest = only_manifest(store, chinook.dbname, yesterday)
    store.put_bytes(manifest.archive_key, b"plain bytes, never compressed")

    fetched = fetch_archive(store, manifest, tmp_path / "out.dump")

    assert not fetched.matches(manifest)
    assert "not zstd-compressed data" in fetched.decode_error


def test_pg_restore_15_refuses_an_archive_from_pg_dump_16(
    embedded_server, store, yesterday, tmp_path
):
    old_restores = [tool for tool in list_tools("pg_restore") if tool.major == 15]
    if not old_restores:
        pytest.skip("no pg_restore 15 on this machine (Debian's postgresql-client-15)")
    with embedded_server.database() as db:
        materialize_day(db, store, yesterday, only="postgres_backup")
        manifest = only_manifest(store, db.dbname, yesterday)
    fetched = fetch_archive(store, manifest, tmp_path / "archive.dump")
    version = archive_version(fetched.path, location="the archive")

    with pytest.raises(ArchiveFormatError) as raised:
        require_readable(version, 15, manifest=manifest, location="the archive")

    assert manifest.pg_dump_major == 16
    assert str(raised.value) == (
        f"pg_restore 15 cannot read archive version 1.15 of the archive (written by pg_dump "
        f"{manifest.pg_dump_version}); set KAREN_PG_BIN_DIR to a PostgreSQL 16 bin folder"
    )


def test_dump_from_pg16_verifies_on_pg15_server_with_pg16_tools(
    embedded_server, service_server, store, yesterday
):
    if service_server.major >= embedded_server.major:
        pytest.skip("the service server is not older than the embedded one")
    with embedded_server.database("chinook16") as db:
        with psycopg.connect(**db.psycopg_kwargs(), autocommit=True) as conn:
            conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g")

        result = materialize_day(db, store, yesterday, verify_server=service_server.maintenance)

    assert result.success
    metadata = result.asset_materializations_for_node("backup_verification")[0].metadata
    assert metadata["pg_restore_version"].value.startswith("16.")
    assert metadata["rows_verified"].value == 1000


def test_scratch_database_is_dropped_even_when_a_session_holds_it(service_server):
    server = service_server.maintenance
    with scratch_database(server, server.with_dbname("karen"), "20261204T000000Z-abcd") as target:
        holder = psycopg.connect(**target.psycopg_kwargs())

    assert target.dbname not in service_server.databases()
    assert holder.closed or holder.broken or _connection_lost(holder)


def _connection_lost(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_refuses_to_drop_a_database_karen_ops_did_not_create(service_server):
    with service_server.database("karen_verify_lookalike") as db:
        with (
            psycopg.connect(**service_server.maintenance.psycopg_kwargs(), autocommit=True) as conn,
            pytest.raises(RestoreError, match="karen-ops did not create it"),
        ):
            drop_scratch_database(conn, db.dbname)

        assert db.dbname in service_server.databases()


def test_archives_that_fit_in_memory_are_restored_from_shared_memory():
    from karen_ops.backups.verify import fast_work_dir

    assert str(fast_work_dir(10 * 1024 * 1024)) == "/dev/shm"  # noqa: S108 (what it returns)
    assert fast_work_dir(10 * 1024**4) is None  # ten terabytes go to the temporary folder
