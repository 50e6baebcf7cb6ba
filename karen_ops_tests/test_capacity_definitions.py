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
from karen_ops_tests.capacity_fixtures import RANGE_END_TAG, RANGE_START_TAG

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


def test_domain_offers_the_capacity_assets_jobs_schedules_and_sensor():
    repository = _defs().get_repository_def()
    assets = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}

    assert {"capacity_snapshot", *GROWTH, "capacity_report"} <= assets
    assert {
        "daily_capacity",
        "weekly_capacity_report",
        "weekly_capacity_report_snapshot",
        "weekly_capacity_report_publish",
    } <= {j.name for j in repository.get_all_jobs()}
    assert {s.name for s in repository.schedule_defs} == {
        "daily_capacity_schedule",
        "weekly_capacity_report_schedule",
    }
    assert {s.name for s in repository.sensor_defs} == {
        "weekly_capacity_report_on_success",
        "weekly_capacity_report_on_snapshot_failure",
        "weekly_capacity_report_on_snapshot_canceled",
    }


def test_weekly_chain_counts_the_week_records_sunday_then_publishes_the_report():
    defs = _defs()
    recount = defs.resolve_job_def("weekly_capacity_report")
    snapshot = defs.resolve_job_def("weekly_capacity_report_snapshot")
    publish = defs.resolve_job_def("weekly_capacity_report_publish")
    on_success = defs.resolve_sensor_def("weekly_capacity_report_on_success")
    on_failure = defs.resolve_sensor_def("weekly_capacity_report_on_snapshot_failure")
    on_cancel = defs.resolve_sensor_def("weekly_capacity_report_on_snapshot_canceled")

    assert defs.resolve_schedule_def("weekly_capacity_report_schedule").job_name == recount.name
    assert _assets(recount) == set(GROWTH)
    assert _assets(snapshot) == {"capacity_snapshot"}
    assert _assets(publish) == {"capacity_report"}
    assert recount.tags[DATABASE_TAG] == snapshot.tags[DATABASE_TAG] == "primary"
    assert {job.name for job in on_success.jobs} == {snapshot.name, publish.name}
    assert on_failure.job_name == on_cancel.job_name == publish.name
    assert on_success.default_status == on_failure.default_status == dg.DefaultSensorStatus.RUNNING
    # Each job's description names the step it is and what leads on from it.
    assert "step 1 of 3" in recount.description
    assert "weekly_capacity_report_on_success" in recount.description
    assert "step 2 of 3" in snapshot.description
    assert "step 3 of 3" in publish.description


def _assets(job: dg.JobDefinition) -> set[str]:
    return {key.to_user_string() for key in job.asset_layer.executable_asset_keys}


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


def test_monday_six_oclock_counts_the_local_week_that_ended_on_sunday_in_one_run():
    # Monday 06:00 in Auckland is still Sunday in UTC, when the UTC week has not ended yet.
    auckland = ZoneInfo("Pacific/Auckland")
    defs = _defs("Pacific/Auckland")

    request = _tick(
        defs, "weekly_capacity_report_schedule", datetime(2026, 12, 7, 6, tzinfo=auckland)
    )

    assert request.partition_key is None
    assert request.tags[RANGE_START_TAG] == "2026-11-30"
    assert request.tags[RANGE_END_TAG] == "2026-12-06"
    assert request.run_key == "2026-11-30"
    schedule = defs.resolve_schedule_def("weekly_capacity_report_schedule")
    assert schedule.cron_schedule == "0 6 * * 1"
    assert schedule.execution_timezone == "Pacific/Auckland"


def test_monday_after_the_clocks_change_counts_all_seven_days():
    berlin = ZoneInfo("Europe/Berlin")
    defs = _defs("Europe/Berlin")

    # Summer time ended on Sunday 2026-10-25: a week of 169 hours, still seven days.
    request = _tick(
        defs, "weekly_capacity_report_schedule", datetime(2026, 10, 26, 6, tzinfo=berlin)
    )

    assert request.tags[RANGE_START_TAG] == "2026-10-19"
    assert request.tags[RANGE_END_TAG] == "2026-10-25"


def test_daily_capacity_records_the_day_that_just_ended_with_the_database_tag():
    defs = _defs()
    at = datetime(2026, 12, 4, 0, 30, tzinfo=ZoneInfo("UTC"))

    request = _tick(defs, "daily_capacity_schedule", at)

    assert request.partition_key == "2026-12-03"
    assert defs.resolve_job_def("daily_capacity").tags[DATABASE_TAG] == "primary"
