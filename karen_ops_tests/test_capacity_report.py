"""The weekly report for a backfilled week: charts drawn without a display, forecasts with
their crossing dates, triggers, gaps, and the files in the store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from karen_ops.resources.conninfo import ConnInfo
from karen_ops_tests.capacity_fixtures import (
    add_chats,
    add_sessions,
    add_users,
    capacity_assets,
    capacity_resources,
    karen_schema,
    run_days,
    spread,
)
from karen_ops_tests.servers import Server

WEEK = "2025-11-24"  # Monday; the report covers the 90 days up to Sunday 2025-11-30
FIRST_DAY = date(2025, 9, 2)
DAYS = [FIRST_DAY + timedelta(days=i) for i in range(90)]
GIB = 1024**3
MISSED = {DAYS[i] for i in (5, 17, 40, 41, 66)}  # days the snapshot schedule did not run


@pytest.fixture
def karen_db(server: Server) -> Iterator[ConnInfo]:
    with karen_schema(server) as target:
        start = datetime(2025, 8, 1, tzinfo=UTC)
        users = add_users(target, spread(start, 200, timedelta(days=121)))
        active = spread(start, 600, timedelta(days=121), step=7919)
        add_sessions(target, [(users[i % 200], at) for i, at in enumerate(active)])
        add_chats(target, users[0], [(at, 3) for at in spread(start, 150, timedelta(days=121))])
        yield target


def _record_snapshots(instance: dg.DagsterInstance) -> None:
    """The daily snapshots a deployment would have recorded: sizes growing on a straight line."""
    for i, day in enumerate(DAYS):
        if day in MISSED:
            continue
        metadata = {
            "database_size_bytes": dg.MetadataValue.int(40 * GIB + i * GIB // 2),
            "disk_used_percent": dg.MetadataValue.float(50 + 0.25 * i),
            "memory_used_percent": dg.MetadataValue.float(60.0),
            "cpu_percent": dg.MetadataValue.float(30.0),
            "connections_percent": dg.MetadataValue.float(10.0),
        }
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                "capacity_snapshot", partition=day.isoformat(), metadata=metadata
            )
        )


def test_report_for_a_backfilled_week_has_charts_crossing_dates_and_triggers(
    karen_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("DISPLAY", raising=False)
    instance = dg.DagsterInstance.ephemeral()
    _record_snapshots(instance)
    store_url = (tmp_path / "store").as_uri()
    resources = capacity_resources(karen_db, store_url)
    growth = ["user_growth", "daily_active_users", "chat_activity"]
    assert run_days(
        growth, DAYS[0].isoformat(), DAYS[-1].isoformat(), resources, instance=instance
    ).success

    result = dg.materialize(
        capacity_assets(),
        selection=["capacity_report"],
        partition_key=WEEK,
        resources=resources,
        instance=instance,
    )
    [materialization] = result.asset_materializations_for_node("capacity_report")
    metadata = {key: value.value for key, value in materialization.metadata.items()}

    # 40 GiB + 0.5 GiB a day reaches 100 GiB on day 120; 50% + 0.25 a day reaches 85% on day 140.
    size_day = FIRST_DAY + timedelta(days=120)
    disk_day = FIRST_DAY + timedelta(days=140)
    as_of = DAYS[-1]
    assert metadata["as_of"] == "2025-11-30"
    assert metadata["database_size_crossing"] == f"{size_day} (in {(size_day - as_of).days} days)"
    assert metadata["disk_use_crossing"] == f"{disk_day} (in {(disk_day - as_of).days} days)"
    assert metadata["gap_days: database_size_bytes"] == len(MISSED)
    assert metadata["gap_days: active_users"] == 0
    assert metadata["trigger: storage over 85%"] == "not met"
    assert metadata["trigger: CPU over 70% for an hour"] == "not enough data"
    assert metadata["trigger: sustained CPU or memory use over 80%"] == "not met"

    markdown = metadata["report"]
    assert markdown.count("](data:image/png;base64,") == 6
    assert f"| disk use | 85.0% | +0.25 points | {disk_day} (in 51 days) | 94.8% | full" in markdown

    folder = tmp_path / "store" / "reports" / "capacity" / WEEK
    charts = sorted(p.name for p in folder.glob("*.png"))
    assert charts == [
        "cumulative_users.png",
        "daily_active_users.png",
        "database_size.png",
        "disk_use.png",
        "messages.png",
        "new_users.png",
    ]
    assert all((folder / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for name in charts)
    stored = (folder / "capacity_report.md").read_text()
    assert "![Database size](database_size.png)" in stored
    assert metadata["location"] == (folder / "capacity_report.md").as_uri()


def test_report_without_any_history_says_not_enough_data(karen_db, tmp_path: Path):
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        capacity_assets(),
        selection=["capacity_report"],
        partition_key=WEEK,
        resources=capacity_resources(karen_db, (tmp_path / "store").as_uri()),
        instance=instance,
    )
    [materialization] = result.asset_materializations_for_node("capacity_report")
    metadata = {key: value.value for key, value in materialization.metadata.items()}

    assert metadata["database_size_crossing"] == (
        "not enough data (0 daily observations; a forecast needs 14, spread over at least 14 days)"
    )
    assert metadata["gap_days: new_users"] == 90
    assert metadata["trigger: storage over 85%"] == "not enough data"
    # Growth, unlike a snapshot, can still be counted: the run log says how.
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING
    ]
    assert any(
        "growth was not counted for 7 of its days" in message
        and "launch weekly_capacity_report over" in message
        and message.endswith("whose success makes this report again")
        for message in warnings
    )
