"""The code location loads and offers what operators expect to find in the UI."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import yaml

from karen_ops.backups.partitions import DATABASE
from karen_ops.definitions import defs
from karen_ops.settings import DATABASE_PARTITION_TAG, DATABASE_TAG

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_offer_the_backup_assets_checks_job_and_schedule():
    repository = defs.get_repository_def()
    assets = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    checks = {key.name for key in repository.asset_graph.asset_check_keys}

    assert {"postgres_backup", "backup_verification"} <= assets
    assert {"checksum_matches", "restore_succeeded", "row_counts_match"} <= checks
    assert "nightly_backup" in {job.name for job in repository.get_all_jobs()}
    assert "nightly_backup_schedule" in {s.name for s in repository.schedule_defs}


def test_workspace_file_loads_the_definitions_module():
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == "karen_ops.definitions"


def test_definitions_import_without_touching_any_database():
    # A fresh interpreter with nowhere to connect must still load the code location.
    completed = subprocess.run(
        [sys.executable, "-c", "import karen_ops.definitions"],
        env={"PATH": "/usr/bin:/bin", "KAREN_DATABASE_URL": "postgresql://nobody@192.0.2.1/x"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_nightly_schedule_backs_up_the_day_that_just_ended_with_the_database_tag():
    schedule = defs.resolve_schedule_def("nightly_backup_schedule")
    at_two = datetime(2026, 12, 4, 2, 0, tzinfo=ZoneInfo("UTC"))

    repository = defs.get_repository_def()
    with dg.build_schedule_context(
        scheduled_execution_time=at_two, repository_def=repository
    ) as context:
        request = schedule.evaluate_tick(context).run_requests[0]

    assert request.partition_key == "2026-12-03"
    assert schedule.cron_schedule == "0 2 * * *"
    assert defs.resolve_job_def("nightly_backup").tags[DATABASE_TAG] == "primary"


@pytest.mark.parametrize("path", ["dagster.yaml", "deploy/dagster.postgres.yaml"])
def test_instance_allows_one_run_per_database_at_a_time(path):
    instance = yaml.safe_load((ROOT / path).read_text())
    limits = instance["concurrency"]["runs"]["tag_concurrency_limits"]

    for tag in (DATABASE_TAG, DATABASE_PARTITION_TAG):
        assert {"key": tag, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
    # The fleet's partition tag is Dagster's name for the backups' database dimension.
    assert f"dagster/partition/{DATABASE}" == DATABASE_PARTITION_TAG


def test_instance_configuration_is_accepted_by_dagster(tmp_path):
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        config = instance.get_concurrency_config()
    limits = config.run_queue_config.tag_concurrency_limits
    assert limits[0]["key"] == DATABASE_TAG


def test_weekly_maintenance_runs_sunday_at_three_under_the_database_limit():
    schedule = defs.resolve_schedule_def("weekly_maintenance_schedule")
    job = defs.resolve_job_def("weekly_maintenance")
    repository = defs.get_repository_def()
    assets = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}

    assert schedule.cron_schedule == "0 3 * * 0"
    assert job.tags[DATABASE_TAG] == defs.resolve_job_def("nightly_backup").tags[DATABASE_TAG]
    assert {"table_health", "postgres_vacuum", "postgres_reindex"} <= assets
