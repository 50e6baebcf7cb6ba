"""The capacity domain loads beside the shared resources and schedules the right partitions."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from karen_ops.capacity.definitions import build_definitions
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.redis import RedisResource
from karen_ops.resources.store import BackupStoreResource
from karen_ops.settings import DATABASE_TAG, ScheduleSettings

GROWTH = ["user_growth", "daily_active_users", "chat_activity"]


def _defs(timezone: str = "UTC") -> dg.Definitions:
    return dg.Definitions.merge(
        build_definitions(ScheduleSettings(timezone=timezone)),
        dg.Definitions(
            resources={
                "postgres": PostgresResource(),
                "backup_store": BackupStoreResource(),
                "redis": RedisResource(),
            }
        ),
    )


def test_domain_offers_the_capacity_assets_jobs_and_schedules():
    repository = _defs().get_repository_def()
    assets = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}

    assert {"capacity_snapshot", *GROWTH, "capacity_report"} <= assets
    assert {"daily_capacity", "weekly_capacity_report"} <= {
        j.name for j in repository.get_all_jobs()
    }
    assert {s.name for s in repository.schedule_defs} == {
        "daily_capacity_schedule",
        "weekly_capacity_report_schedule",
    }


def test_daily_assets_and_their_job_backfill_a_range_in_a_single_run():
    defs = _defs()
    graph = defs.get_repository_def().asset_graph
    for name in ["capacity_snapshot", *GROWTH]:
        policy = graph.get(dg.AssetKey(name)).backfill_policy
        assert policy == dg.BackfillPolicy.single_run(), name
    assert defs.resolve_job_def("daily_capacity").backfill_policy == (
        dg.BackfillPolicy.single_run()
    )


def _tick(defs: dg.Definitions, name: str, at: datetime) -> dg.RunRequest:
    schedule = defs.resolve_schedule_def(name)
    with dg.build_schedule_context(
        scheduled_execution_time=at, repository_def=defs.get_repository_def()
    ) as context:
        return schedule.evaluate_tick(context).run_requests[0]


def test_monday_six_oclock_reports_the_week_that_ended_on_sunday():
    berlin = ZoneInfo("Europe/Berlin")
    defs = _defs("Europe/Berlin")

    request = _tick(
        defs, "weekly_capacity_report_schedule", datetime(2026, 12, 7, 6, tzinfo=berlin)
    )

    assert request.partition_key == "2026-11-30"
    schedule = defs.resolve_schedule_def("weekly_capacity_report_schedule")
    assert schedule.cron_schedule == "0 6 * * 1"
    assert schedule.execution_timezone == "Europe/Berlin"


def test_daily_capacity_records_the_day_that_just_ended_with_the_database_tag():
    defs = _defs()
    at = datetime(2026, 12, 4, 0, 30, tzinfo=ZoneInfo("UTC"))

    request = _tick(defs, "daily_capacity_schedule", at)

    assert request.partition_key == "2026-12-03"
    assert defs.resolve_job_def("daily_capacity").tags[DATABASE_TAG] == "primary"
