"""A timeline change: a recovered copy promoted onto timeline 2 archives into the same store, and
wal_archive follows the history file across the switch; a real gap is still named."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from karen_ops.pitr import walnames
from karen_ops.pitr.assets import build_wal_archive
from karen_ops.pitr.basebackup import BaseBackupRequest, take_base_backup
from karen_ops.pitr.definitions import hourly_partitions
from karen_ops.pitr.resource import PitrResource
from karen_ops.pitr.restore import (
    RestoreRequest,
    StartRequest,
    TargetAction,
    restore,
    start_recovered,
)
from karen_ops.pitr.server import wait_until_archived
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.store import BackupStoreResource
from karen_ops.resources.store.file import FileStore
from karen_ops.settings import ScheduleSettings
from karen_ops_tests.conftest import check_evaluations

pytest_plugins = ["karen_ops_tests.pitr_fixtures"]
log = logging.getLogger(__name__)


@pytest.mark.parametrize("server_user", ["15", "16"], indirect=True)
def test_wal_archive_follows_a_promotion_to_timeline_2_and_still_names_a_real_gap(
    server_folder: Path,
    private_server_factory,
    server_user,
    karen_ops_argv,
    restore_folder: Path,
    unused_port: int,
) -> None:
    env = {"KAREN_BACKUP_URL": server_folder.as_uri(), "KAREN_PITR_CLUSTER": "karen-test"}
    primary = private_server_factory(env)
    store = FileStore(server_folder)
    bin_dir = str(server_user.bin_dir)
    base = take_base_backup(
        BaseBackupRequest(primary.conninfo(), store, "karen-test", bin_dir=bin_dir), log
    )
    primary.execute("CREATE TABLE notes AS SELECT g AS id FROM generate_series(1, 3000) g")
    middle = primary.switch_and_wait()
    primary.execute("INSERT INTO notes SELECT g FROM generate_series(3001, 3100) g")
    branch_lsn = primary.execute("SELECT pg_current_wal_lsn()::text")[0][0]
    primary.execute("INSERT INTO notes SELECT g FROM generate_series(3101, 3200) g")
    primary.switch_and_wait()

    target = restore_folder / "promoted"
    outcome = restore(
        RestoreRequest(
            store,
            "karen-test",
            target,
            karen_ops_argv,
            to_lsn=branch_lsn,
            action=TargetAction.PROMOTE,
            archive=True,
            port=unused_port,
        ),
        log,
    )
    assert outcome.plan.base.backup_id == base.backup_id
    promoted_url = f"postgresql://postgres@127.0.0.1:{unused_port}/postgres"
    try:
        start_recovered(
            StartRequest(
                target,
                base.server_version,
                unused_port,
                TargetAction.PROMOTE,
                env={**os.environ, **env},
                os_user=server_user.name,
                bin_dir=bin_dir,
                timeout_seconds=120,
            )
        )
        with psycopg.connect(promoted_url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM notes").fetchone() == (3100,)
            conn.execute("INSERT INTO notes SELECT g FROM generate_series(1, 2000) g")
            switched = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
            assert switched.startswith("00000002")
            assert wait_until_archived(conn, switched, 60)

        history = server_folder / "wal/karen-test/history/00000002.history.json"
        assert history.exists()
        resources = {
            "postgres": PostgresResource(database_url=promoted_url, pg_bin_dir=bin_dir),
            "backup_store": BackupStoreResource(url=server_folder.as_uri()),
            "pitr": PitrResource(cluster="karen-test"),
        }
        wal_archive = build_wal_archive(hourly_partitions(ScheduleSettings()))
        partition = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d-%H:00")
        first = dg.materialize([wal_archive], resources=resources, partition_key=partition)
        continuous = check_evaluations(first)["wal_archive_continuous"]
        assert continuous.passed, continuous.description
        metadata = first.asset_materializations_for_node("wal_archive")[0].metadata
        assert metadata["timelines"].value == "1, 2"
        assert continuous.metadata["first_segment"].value == base.start_wal_file
        assert continuous.metadata["last_segment"].value == switched

        (server_folder / walnames.data_key("karen-test", walnames.parse_wal_name(middle))).unlink()
        second = dg.materialize(
            [wal_archive], resources=resources, partition_key=partition, raise_on_error=False
        )
        gap = check_evaluations(second)["wal_archive_continuous"]
        assert not gap.passed
        assert gap.metadata["missing"].value == middle
    finally:
        server_user.run([server_user.tool("pg_ctl"), "-D", str(target), "-m", "fast", "stop"])
