"""Backups that cannot be taken fail clearly and publish nothing."""

from __future__ import annotations

import logging
import re
import stat
from pathlib import Path
from typing import BinaryIO

import psycopg
import pytest

from karen_ops.backups.dump import BackupRequest, take_backup
from karen_ops.errors import BackupError
from karen_ops.resources.pg_tools import find_tool
from karen_ops.resources.store.file import FileStore
from karen_ops_tests.conftest import stored_files
from karen_ops_tests.runs import failure_message, materialize_day


@pytest.fixture
def pg(request):
    return request.getfixturevalue("service_server")


def test_missing_database_fails_names_it_and_leaves_store_empty(pg, store, yesterday):
    missing = pg.maintenance.with_dbname("karen_no_such_database")

    result = materialize_day(missing, store, yesterday)

    assert not result.success
    message = failure_message(result)
    assert "could not back up database karen_no_such_database on" in message
    assert 'database "karen_no_such_database" does not exist' in message
    assert "check KAREN_DATABASE_URL" in message
    assert stored_files(store) == []


def test_unreachable_server_fails_and_leaves_store_empty(pg, store, yesterday):
    nowhere = pg.maintenance.with_dbname("karen").__class__(
        {"host": "127.0.0.1", "port": "1", "dbname": "karen", "user": "postgres"}
    )

    result = materialize_day(nowhere, store, yesterday)

    assert not result.success
    assert "could not connect to database karen on 127.0.0.1:1" in failure_message(result)
    assert stored_files(store) == []


def test_dump_that_fails_midway_publishes_nothing(chinook, store, yesterday):
    # Another session holds a table exclusively: pg_dump gives up after the lock timeout.
    with psycopg.connect(**chinook.psycopg_kwargs()) as blocker:
        blocker.execute("LOCK TABLE track IN ACCESS EXCLUSIVE MODE")

        result = materialize_day(chinook, store, yesterday, lock_wait_timeout_seconds=1)

    assert not result.success
    message = failure_message(result)
    assert "during dump: pg_dump exited with status 1" in message
    assert "another session held a table lock for longer than 1 s" in message
    assert stored_files(store) == []


def test_verification_without_a_backup_says_what_to_run(chinook, store, yesterday):
    result = materialize_day(chinook, store, yesterday, only="backup_verification")

    assert not result.success
    message = failure_message(result)
    assert f"no complete backup of database {chinook.dbname} for {yesterday}" in message
    assert (
        f"materialize postgres_backup for partition {yesterday} first (a day can be backed up "
        "until 2 days after it ends; an older day without a backup has none to verify)"
    ) in message


def test_an_old_partition_is_refused_rather_than_mislabelled(chinook, store):
    result = materialize_day(chinook, store, "2026-11-05", only="postgres_backup")

    assert not result.success
    message = failure_message(result)
    assert "cannot back up partition 2026-11-05" in message
    assert "materialize a recent partition" in message
    assert stored_files(store) == []


def _pg_dump_killed_by_sigkill(folder, real_pg_dump) -> str:
    """A bin folder whose pg_dump reports the real version, then dies as if OOM-killed."""
    script = folder / "pg_dump"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = --version ]; then exec "{real_pg_dump}" --version; fi\n'
        "kill -KILL $$\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(folder)


def test_pg_dump_killed_by_a_signal_is_named_by_the_signal(
    server, chinook, store, yesterday, tmp_path
):
    real = find_tool("pg_dump", server.major).path
    bin_dir = _pg_dump_killed_by_sigkill(tmp_path, real)

    result = materialize_day(chinook, store, yesterday, only="postgres_backup", pg_bin_dir=bin_dir)

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    description = failure.step_failure_data.user_failure_data.description
    # Nothing follows the signal's name: pg_dump died before it could write to stderr.
    assert description.endswith(" during dump: pg_dump was killed by signal 9 (SIGKILL)")
    assert stored_files(store) == []


class _FullDiskStore(FileStore):
    """A folder store whose disk is full: the kernel refuses every write to an upload."""

    def open_partial(self, path: Path) -> BinaryIO:
        super().open_partial(path).close()  # the partial file exists, as on a real disk
        return open("/dev/full", "wb")  # the kernel fails every write to it with ENOSPC


def test_disk_filling_up_mid_dump_names_the_store_and_leaves_nothing(chinook, tmp_path, yesterday):
    store = _FullDiskStore(tmp_path / "backups")
    request = BackupRequest(source=chinook, store=store, partition=yesterday)

    with pytest.raises(BackupError) as raised:
        take_backup(request, logging.getLogger(__name__))

    archive = re.escape(f"{store.url}/postgres/{chinook.dbname}/{yesterday}/") + r"[^/]+/"
    assert re.fullmatch(
        rf"could not back up database {chinook.dbname} on \S+ during dump: could not write "
        rf"{archive}database\.dump\.zst: No space left on device; free space in "
        rf"{re.escape(store.url)} or point KAREN_BACKUP_URL at a store with room",
        str(raised.value),
    )
    assert stored_files(store) == []
