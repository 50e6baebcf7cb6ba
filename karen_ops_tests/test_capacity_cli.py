"""The operator's own command for a year of history: ``dagster asset materialize`` with a
partition range, run against the code location as installed, is one run with a value for
every day."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from karen_ops.resources.conninfo import ConnInfo
from karen_ops_tests.capacity_fixtures import add_users, karen_schema, recorded, spread
from karen_ops_tests.servers import Server

REPOSITORY = Path(__file__).resolve().parents[1]
SIGN_UPS = 250


@pytest.fixture
def karen_db(server: Server) -> Iterator[ConnInfo]:
    with karen_schema(server) as target:
        start = datetime(2025, 1, 1, tzinfo=UTC)
        add_users(target, spread(start, SIGN_UPS, timedelta(days=365)))
        yield target


def test_materialize_with_a_partition_range_records_a_year_in_one_run(karen_db, tmp_path):
    home = tmp_path / "dagster"
    home.mkdir()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KAREN_", "DAGSTER_"))},
        "DAGSTER_HOME": str(home),
        "KAREN_OPS_HOME": str(tmp_path / "karen-ops"),
        "KAREN_DATABASE_URL": karen_db.public_dsn(),
        "KAREN_BACKUP_URL": (tmp_path / "backups").as_uri(),
    }
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "asset", "materialize", "-m", "karen_ops.definitions",
        "--select", "user_growth",
        "--partition-range", "2025-01-01...2025-12-31",
    ]  # fmt: skip
    result = subprocess.run(
        command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]

    days = [(date(2025, 1, 1) + timedelta(days=i)).isoformat() for i in range(365)]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        per_day = recorded(instance, "user_growth", days)
    assert len(runs) == 1
    assert runs[0].status is dg.DagsterRunStatus.SUCCESS
    assert sorted(per_day) == days
    assert sum(day["new_users"] for day in per_day.values()) == SIGN_UPS
    assert per_day["2025-12-31"]["cumulative_users"] == SIGN_UPS
