"""The weekly capacity chain: Monday's tick counts last week again in one run, its success
launches the week's report, and a failed count launches nothing."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from karen_ops.capacity.definitions import build_definitions
from karen_ops.capacity.partitions import daily_partitions, weekly_partitions
from karen_ops.capacity.weekly import RECOUNT_RUN_TAG, counted_weeks
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.settings import ScheduleSettings
from karen_ops_tests.capacity_fixtures import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    add_chats,
    add_sessions,
    add_users,
    capacity_resources,
    karen_schema,
    recorded,
)
from karen_ops_tests.servers import Server

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = "2025-11-24"
WEEK_DAYS = [f"2025-11-{day}" for day in range(24, 31)]
MONDAY_AFTER = datetime(2025, 12, 1, 6, tzinfo=BERLIN)
GROWTH = ["user_growth", "daily_active_users", "chat_activity"]
SENSOR = "weekly_capacity_report_on_success"

# Sign-ups per Berlin day of the week: day i has i + 1 at noon; Sunday one more at 23:30,
# which is still Sunday in Berlin. 00:30 on the Monday after (Sunday 23:30 in UTC) is not.
NEW_USERS = [1, 2, 3, 4, 5, 6, 8]
EARLIER_USERS = 10


def _signups() -> list[datetime]:
    monday = datetime(2025, 11, 24, 12, tzinfo=BERLIN)
    noon = [monday + timedelta(days=i) for i in range(7) for _ in range(i + 1)]
    late = [datetime(2025, 11, 30, 23, 30, tzinfo=BERLIN), MONDAY_AFTER - timedelta(hours=5.5)]
    return noon + late


@pytest.fixture
def karen_db(server: Server) -> Iterator[ConnInfo]:
    with karen_schema(server) as target:
        # Each user is active when signing up, and the first starts a chat at each sign-up.
        signed_up = [datetime(2025, 11, 1, 12, tzinfo=UTC)] * EARLIER_USERS + _signups()
        users = add_users(target, signed_up)
        add_sessions(target, list(zip(users, signed_up, strict=True)))
        add_chats(target, users[0], [(at, 2) for at in _signups()])
        yield target


def _defs(target: ConnInfo, store: Path | None = None) -> dg.Definitions:
    """The capacity domain as it loads, with resources aimed at the test's own servers."""
    resources = capacity_resources(target, store.as_uri() if store else None)
    # The domain brings its own capacity resource; the test keeps its defaults.
    del resources["capacity"]
    return build_definitions(ScheduleSettings(timezone="Europe/Berlin")).with_resources(resources)


def _monday_request(defs: dg.Definitions) -> dg.RunRequest:
    schedule = defs.resolve_schedule_def("weekly_capacity_report_schedule")
    with dg.build_schedule_context(scheduled_execution_time=MONDAY_AFTER) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    return request


def _run(
    defs: dg.Definitions, job: str, request: dg.RunRequest, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """Execute a run request as the daemon would launch it: its job, partition and tags."""
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        tags=dict(request.tags),
        raise_on_error=False,
    )


def _materializing_runs(instance: dg.DagsterInstance, asset: str) -> dict[str, str]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=WEEK_DAYS),
        limit=100,
    ).records
    return {record.partition_key: record.run_id for record in records}


def _record_snapshots(instance: dg.DagsterInstance, days: list[str]) -> None:
    for day in days:
        metadata = {"database_size_bytes": 40 * 1024**3, "disk_used_percent": 50.0}
        instance.report_runless_asset_event(
            dg.AssetMaterialization("capacity_snapshot", partition=day, metadata=metadata)
        )


def test_monday_counts_last_week_in_one_run_and_its_success_publishes_the_report(
    karen_db, tmp_path: Path
):
    defs = _defs(karen_db, tmp_path / "store")
    instance = dg.DagsterInstance.ephemeral()
    # The nightly runs recorded Monday to Saturday; Sunday's snapshot never happened.
    _record_snapshots(instance, WEEK_DAYS[:-1])

    request = _monday_request(defs)
    assert request.tags[RANGE_START_TAG] == "2025-11-24"
    assert request.tags[RANGE_END_TAG] == "2025-11-30"
    recount = _run(defs, "weekly_capacity_report", request, instance)

    assert recount.success
    for asset in GROWTH:
        assert _materializing_runs(instance, asset) == dict.fromkeys(WEEK_DAYS, recount.run_id)
    growth = recorded(instance, "user_growth", WEEK_DAYS)
    assert [growth[day]["new_users"] for day in WEEK_DAYS] == NEW_USERS
    assert growth["2025-11-30"]["cumulative_users"] == EARLIER_USERS + sum(NEW_USERS)
    chats = recorded(instance, "chat_activity", WEEK_DAYS)
    assert [chats[day]["messages"] for day in WEEK_DAYS] == [2 * n for n in NEW_USERS]

    context = dg.build_run_status_sensor_context(
        sensor_name=SENSOR,
        dagster_event=recount.get_run_success_event(),
        dagster_instance=instance,
        dagster_run=recount.dagster_run,
    )
    report_request = defs.resolve_sensor_def(SENSOR)(context)
    assert report_request.partition_key == WEEK
    assert report_request.run_key == recount.run_id
    assert report_request.tags[RECOUNT_RUN_TAG] == recount.run_id

    report = _run(defs, "weekly_capacity_report_publish", report_request, instance)

    assert report.success
    [materialization] = report.asset_materializations_for_node("capacity_report")
    assert materialization.partition == WEEK
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["as_of"] == "2025-11-30"
    # 90 days of history: the week's seven counted days, six snapshots, the rest gaps.
    assert metadata["gap_days: new_users"] == 90 - 7
    assert metadata["gap_days: database_size_bytes"] == 90 - 6
    stored = tmp_path / "store" / "reports" / "capacity" / WEEK / "capacity_report.md"
    assert stored.is_file()


def test_failed_count_publishes_no_report_and_the_next_success_publishes_one(karen_db):
    defs = _defs(karen_db)
    # The same code location, its database gone: the count fails where it connects.
    unreachable = _defs(karen_db.with_dbname("karen_capacity_missing"))
    instance = dg.DagsterInstance.ephemeral()
    request = _monday_request(defs)
    # A run status sensor's first tick only marks where it starts reading.
    _, cursor = _tick(defs, instance, None)

    failed = _run(unreachable, "weekly_capacity_report", request, instance)
    requested, cursor = _tick(defs, instance, cursor)

    assert not failed.success
    assert requested == []

    succeeded = _run(defs, "weekly_capacity_report", request, instance)
    requested, cursor = _tick(defs, instance, cursor)

    assert succeeded.success
    [report_request] = requested
    assert report_request.partition_key == WEEK
    assert report_request.run_key == succeeded.run_id


def test_a_count_over_several_weeks_reports_each_week_that_has_ended():
    daily, weekly = daily_partitions("UTC"), weekly_partitions("UTC")
    run = dg.DagsterRun(
        job_name="weekly_capacity_report",
        tags={RANGE_START_TAG: "2026-11-12", RANGE_END_TAG: "2026-12-03"},
    )
    thursday = datetime(2026, 12, 4, 12, tzinfo=UTC)

    weeks = counted_weeks(run, daily, weekly, thursday)

    # From the week holding 12 November to the last one that ended, Sunday 29 November.
    assert weeks == dg.PartitionKeyRange("2026-11-09", "2026-11-23")
    this_week_only = dg.DagsterRun(
        job_name="weekly_capacity_report", tags={"dagster/partition": "2026-12-01"}
    )
    assert counted_weeks(this_week_only, daily, weekly, thursday) is None


@pytest.mark.parametrize("partition", ["yesterday", "2026-11-29|production"])
def test_a_count_whose_partition_is_not_a_day_is_skipped_with_the_reason(partition):
    # The sensor opens no database; the resources only let the definitions resolve.
    defs = _defs(ConnInfo.parse("postgresql://nobody@127.0.0.1:1/none", setting="unused"))
    instance = dg.DagsterInstance.ephemeral()
    _, cursor = _tick(defs, instance, None)
    run = instance.add_run(
        dg.DagsterRun(
            job_name="weekly_capacity_report",
            tags={"dagster/partition": partition},
            status=dg.DagsterRunStatus.SUCCESS,
        )
    )
    success = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name
    )
    instance.report_dagster_event(success, run_id=run.run_id)

    requested, _ = _tick(defs, instance, cursor)
    context = dg.build_run_status_sensor_context(
        sensor_name=SENSOR, dagster_event=success, dagster_instance=instance, dagster_run=run
    )
    skipped = defs.resolve_sensor_def(SENSOR)(context)

    assert requested == []
    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message == (
        f"run {run.run_id} of weekly_capacity_report names partition {partition!r}, which is "
        "not a day (YYYY-MM-DD), so it counted no day a weekly report covers; launch "
        "weekly_capacity_report from its schedule or as a backfill of days to report a week"
    )


def _tick(
    defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None
) -> tuple[list[dg.RunRequest], str | None]:
    """One evaluation as the daemon makes it: the runs it requests and the cursor it keeps."""
    sensor = defs.resolve_sensor_def(SENSOR)
    # No repository name: runs executed in process carry none, and must still match.
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as context:
        result = sensor.evaluate_tick(context)
    return list(result.run_requests or []), result.cursor
