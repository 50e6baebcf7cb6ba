"""The PITR assets in Dagster: a base backup, then wal_archive proving continuity or a gap."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from karen_ops.pitr import walnames
from karen_ops.pitr.assets import build_wal_archive, postgres_base_backup
from karen_ops.pitr.definitions import build_definitions, hourly_partitions
from karen_ops.pitr.resource import PitrResource
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.store import BackupStoreResource
from karen_ops.settings import ScheduleSettings
from karen_ops_tests.conftest import check_evaluations

pytest_plugins = ["karen_ops_tests.pitr_fixtures"]


def test_definitions_hold_the_pitr_assets_jobs_and_schedules() -> None:
    defs = build_definitions(ScheduleSettings())
    assert {a.key.to_user_string() for a in defs.assets} == {
        "postgres_base_backup",
        "wal_archive",
        "pitr_drill",
        "wal_retention",
    }
    base_job = next(job for job in defs.jobs if job.name == "base_backup")
    assert {k.to_user_string() for k in base_job.selection.resolve(defs.assets)} == {
        "postgres_base_backup",
        "wal_retention",
    }
    assert {s.name for s in defs.schedules} == {
        "base_backup_schedule",
        "wal_archive_schedule",
        "weekly_pitr_drill_schedule",
    }


def test_wal_archive_passes_then_names_the_gap_when_a_segment_is_deleted(
    server_folder: Path, private_server_factory
) -> None:
    env = {"KAREN_BACKUP_URL": server_folder.as_uri(), "KAREN_PITR_CLUSTER": "karen-test"}
    server = private_server_factory(env)
    resources = {
        "postgres": PostgresResource(
            database_url=server.url(), pg_bin_dir=str(server.user.bin_dir)
        ),
        "backup_store": BackupStoreResource(url=server_folder.as_uri()),
        "pitr": PitrResource(cluster="karen-test"),
    }
    base = dg.materialize([postgres_base_backup], resources=resources)
    assert check_evaluations(base)["base_backup_verified"].passed

    server.execute("CREATE TABLE notes AS SELECT g AS id FROM generate_series(1, 5000) g")
    middle = server.switch_and_wait()
    server.execute("INSERT INTO notes SELECT g FROM generate_series(5001, 6000) g")
    server.switch_and_wait()

    hourly = hourly_partitions(ScheduleSettings())
    partition = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d-%H:00")
    wal_archive = build_wal_archive(hourly)
    first = dg.materialize(
        [wal_archive], resources=resources, partition_key=partition, selection=[wal_archive]
    )
    checks = check_evaluations(first)
    assert checks["wal_archive_continuous"].passed
    assert checks["archive_lag_within_hour"].passed

    wal = walnames.parse_wal_name(middle)
    (server_folder / walnames.data_key("karen-test", wal)).unlink()
    second = dg.materialize(
        [wal_archive], resources=resources, partition_key=partition, raise_on_error=False
    )
    gap = check_evaluations(second)["wal_archive_continuous"]
    assert not gap.passed
    assert gap.severity == dg.AssetCheckSeverity.ERROR
    assert gap.description.startswith("1 WAL segment(s) missing from the archive after base")
    assert gap.description.endswith(f": {middle}")
    assert gap.metadata["missing"].value == middle


def test_archive_lag_names_the_waiting_segments_and_where_to_look_when_archiving_stops(
    server_folder: Path, private_server_factory
) -> None:
    env = {"KAREN_BACKUP_URL": server_folder.as_uri(), "KAREN_PITR_CLUSTER": "karen-test"}
    server = private_server_factory(env)
    resources = {
        "postgres": PostgresResource(
            database_url=server.url(), pg_bin_dir=str(server.user.bin_dir)
        ),
        "backup_store": BackupStoreResource(url=server_folder.as_uri()),
        # No idle switch: it would wait a minute for a segment that can no longer be archived.
        "pitr": PitrResource(cluster="karen-test", max_lag_seconds=2, idle_switch_seconds=86400),
    }
    dg.materialize([postgres_base_backup], resources=resources)
    newest = server.switch_and_wait()

    server.execute("ALTER SYSTEM SET archive_command = 'false'")
    server.execute("SELECT pg_reload_conf()")
    server.execute("CREATE TABLE notes AS SELECT g AS id FROM generate_series(1, 1000) g")
    server.execute("SELECT pg_switch_wal()")
    # Right after a switch the server's position names the closed segment; move past it.
    server.execute("INSERT INTO notes VALUES (0)")
    _wait_until_archiving_fails(server)

    hourly = hourly_partitions(ScheduleSettings())
    partition = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d-%H:00")
    wal_archive = build_wal_archive(hourly)
    result = dg.materialize(
        [wal_archive], resources=resources, partition_key=partition, raise_on_error=False
    )

    lag = check_evaluations(result)["archive_lag_within_hour"]
    assert not lag.passed
    assert re.fullmatch(
        r"WAL archiving is behind: 1 completed segment\(s\) are not in the archive and the "
        r"server last archived a segment \d+ seconds ago, over the limit of 2 seconds; newest "
        rf"archived: {newest}\. A restore would lose the changes since then: see "
        r"pg_stat_archiver \(last_failed_wal\) and the server log for why archive_command "
        r"\('karen-ops wal-push %p'\) fails",
        lag.description,
    )


def _wait_until_archiving_fails(server, timeout: float = 30.0) -> None:
    """The reload reaches the archiver on its own time; its first failure proves it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.execute("SELECT failed_count FROM pg_stat_archiver")[0][0] > 0:
            time.sleep(2.5)  # let the lag pass the 2-second limit
            return
        time.sleep(0.2)
    raise AssertionError(
        f"archiving did not fail within {timeout}s:\n{server.server_log()[-2000:]}"
    )
