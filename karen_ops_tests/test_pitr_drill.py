"""pitr_drill's work: base backup plus archived WAL recovered to the nightly dump's snapshot."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import pytest

from karen_ops.backups.dump import BackupRequest, take_backup
from karen_ops.pitr.basebackup import BaseBackupRequest, take_base_backup
from karen_ops.pitr.drill import DrillRequest, run_drill
from karen_ops.resources.store.file import FileStore

pytest_plugins = ["karen_ops_tests.pitr_fixtures"]
log = logging.getLogger(__name__)


@pytest.mark.parametrize("server_user", ["15", "16"], indirect=True)
def test_drill_recovers_to_the_logical_backups_snapshot_with_its_exact_counts(
    server_folder: Path, private_server_factory, karen_ops_argv, server_user, request
) -> None:
    env = {"KAREN_BACKUP_URL": server_folder.as_uri(), "KAREN_PITR_CLUSTER": "karen-test"}
    server = private_server_factory(env)
    assert (
        server.execute("SHOW server_version")[0][0].split(".")[0]
        == (request.node.callspec.params["server_user"])
    )
    server.execute("CREATE DATABASE appdb")
    server.execute("CREATE TABLE messages (id int PRIMARY KEY, body text)", "appdb")
    server.execute("CREATE TABLE users (id int PRIMARY KEY)", "appdb")
    server.execute("INSERT INTO messages SELECT g, 'm' FROM generate_series(1, 100) g", "appdb")
    store = FileStore(server_folder)
    bin_dir = str(server.user.bin_dir)
    base = take_base_backup(
        BaseBackupRequest(server.conninfo(), store, "karen-test", bin_dir=bin_dir), log
    )

    # Written after the base backup: only the archived WAL carries these rows.
    server.execute("INSERT INTO messages SELECT g, 'm' FROM generate_series(101, 150) g", "appdb")
    server.execute("INSERT INTO users SELECT g FROM generate_series(1, 7) g", "appdb")
    server.switch_and_wait()
    server.execute("INSERT INTO messages VALUES (151, 'in the current segment')", "appdb")
    logical = take_backup(
        BackupRequest(server.conninfo("appdb"), store, "2026-12-04", bin_dir), log
    )
    # After the snapshot: the drill must stop before these.
    server.execute(
        "INSERT INTO messages SELECT g, 'late' FROM generate_series(152, 220) g", "appdb"
    )
    server.execute("DELETE FROM users WHERE id <= 3", "appdb")

    result = run_drill(
        DrillRequest(
            store=store,
            cluster="karen-test",
            source=server.conninfo("appdb"),
            karen_ops_command=karen_ops_argv,
            env={**os.environ, **env},
            os_user=server_user.name,
            bin_dir=bin_dir,
            timeout_seconds=120,
        ),
        log,
    )

    assert logical.inventory.row_counts == {"public.messages": 151, "public.users": 7}
    manifest = json.loads(store.read_bytes(logical.folder + "manifest.json"))
    assert result.target_lsn == manifest["snapshot_wal_lsn"] == logical.snapshot_wal_lsn
    assert result.recovered == {"public.messages": 151, "public.users": 7}
    assert result.mismatches == {}
    assert (result.base_backup_id, result.logical_backup_id) == (base.backup_id, logical.backup_id)
    assert 0 < result.rto_seconds < 120
    assert result.rpo_seconds is not None and result.rpo_seconds >= 0
    assert not list(Path(tempfile.gettempdir()).glob("karen-drill-*/data/recovery.signal"))
