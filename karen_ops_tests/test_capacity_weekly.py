"""The weekly capacity chain: Monday's tick counts last week again in one run, its success
records Sunday's snapshot when the night missed it, then launches the week's report; a failed
count launches nothing, a failed snapshot leaves a gap in the report."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import time_machine

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
FAILURE_SENSOR = "weekly_capacity_report_on_snapshot_failure"
CANCELED_SENSOR = "weekly_capacity_report_on_snapshot_canceled"
SNAPSHOT_JOB = "weekly_capacity_report_snapshot"
PUBLISH_JOB = "weekly_capacity_report_publish"

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


@pytest.fixture
def monday_morning() -> Iterator[None]:
    """The clock at the Monday 06:00 tick that follows the week, running on from there."""
    with time_machine.travel(MONDAY_AFTER, tick=True):
        yield


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


def test_monday_counts_the_week_records_the_missing_sunday_and_publishes_the_report(
    karen_db, tmp_path: Path, monday_morning
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

    snapshot_request = _on_success(defs, instance, recount)
    assert snapshot_request.job_name == SNAPSHOT_JOB
    assert snapshot_request.partition_key == "2025-11-30"
    assert snapshot_request.tags[RECOUNT_RUN_TAG] == recount.run_id
    snapshot = _run(defs, SNAPSHOT_JOB, snapshot_request, instance)

    assert snapshot.success
    assert _materializing_runs(instance, "capacity_snapshot")["2025-11-30"] == snapshot.run_id
    report_request = _on_success(defs, instance, snapshot)
    assert report_request.job_name == PUBLISH_JOB
    assert report_request.partition_key == WEEK
    assert report_request.run_key == recount.run_id
    assert report_request.tags[RECOUNT_RUN_TAG] == recount.run_id

    report = _run(defs, PUBLISH_JOB, report_request, instance)

    assert report.success
    metadata = _report_metadata(report)
    assert metadata["as_of"] == "2025-11-30"
    # 90 days of history: the week's seven counted days and seven snapshots, the rest gaps.
    assert metadata["gap_days: new_users"] == 90 - 7
    assert metadata["gap_days: database_size_bytes"] == 90 - 7
    stored = tmp_path / "store" / "reports" / "capacity" / WEEK / "capacity_report.md"
    assert stored.is_file()


def test_a_sunday_the_night_recorded_goes_straight_to_the_report(monday_morning):
    defs = _unreachable_defs()
    instance = dg.DagsterInstance.ephemeral()
    _record_snapshots(instance, WEEK_DAYS)
    recount = _finished_run(instance, "weekly_capacity_report", _week_tags(), success=True)

    request = _on_success(defs, instance, recount)

    assert request.job_name == PUBLISH_JOB
    assert request.partition_key == WEEK
    assert request.run_key == recount.run_id


def test_a_sunday_past_observing_is_left_a_gap_and_the_report_follows_the_count():
    # Real time: 30 November 2025 ended long ago, and a snapshot now would not be Sunday's.
    defs = _unreachable_defs()
    instance = dg.DagsterInstance.ephemeral()
    _record_snapshots(instance, WEEK_DAYS[:-1])
    recount = _finished_run(instance, "weekly_capacity_report", _week_tags(), success=True)

    request = _on_success(defs, instance, recount)

    assert request.job_name == PUBLISH_JOB
    assert request.partition_key == WEEK
    assert request.run_key == recount.run_id


def test_a_failed_sunday_snapshot_still_publishes_the_report_with_sunday_a_gap(
    karen_db, tmp_path: Path, monday_morning
):
    defs = _defs(karen_db, tmp_path / "store")
    # The snapshot's database has gone between the count and the snapshot.
    unreachable = _defs(karen_db.with_dbname("karen_capacity_missing"))
    instance = dg.DagsterInstance.ephemeral()
    _record_snapshots(instance, WEEK_DAYS[:-1])
    recount = _run(defs, "weekly_capacity_report", _monday_request(defs), instance)
    snapshot_request = _on_success(defs, instance, recount)

    snapshot = _run(unreachable, SNAPSHOT_JOB, snapshot_request, instance)
    context = _status_context(instance, snapshot, FAILURE_SENSOR)
    report_request = defs.resolve_sensor_def(FAILURE_SENSOR)(context)

    assert not snapshot.success
    assert report_request.job_name == PUBLISH_JOB
    assert report_request.run_key == recount.run_id
    report = _run(defs, PUBLISH_JOB, report_request, instance)
    assert report.success
    assert _report_metadata(report)["gap_days: database_size_bytes"] == 90 - 6


def test_a_sunday_snapshot_canceled_in_the_queue_still_publishes_the_report(monday_morning):
    defs = _unreachable_defs()
    instance = dg.DagsterInstance.ephemeral()
    recount = _finished_run(instance, "weekly_capacity_report", _week_tags(), success=True)
    tags = {"dagster/partition": WEEK_DAYS[-1], RECOUNT_RUN_TAG: recount.run_id}
    canceled = instance.add_run(
        dg.DagsterRun(job_name=SNAPSHOT_JOB, tags=tags, status=dg.DagsterRunStatus.CANCELED)
    )
    event = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_CANCELED.value, job_name=SNAPSHOT_JOB
    )
    context = dg.build_run_status_sensor_context(
        sensor_name=CANCELED_SENSOR,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=canceled,
    )

    request = defs.resolve_sensor_def(CANCELED_SENSOR)(context)

    assert request.job_name == PUBLISH_JOB
    assert request.partition_key == WEEK
    assert request.run_key == recount.run_id


def test_a_snapshot_launched_by_hand_publishes_nothing(monday_morning):
    defs = _unreachable_defs()
    instance = dg.DagsterInstance.ephemeral()
    snapshot = _finished_run(
        instance, SNAPSHOT_JOB, {"dagster/partition": "2025-11-30"}, success=True
    )

    skipped = _on_success(defs, instance, snapshot)

    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message == (
        f"run {snapshot.run_id} of {SNAPSHOT_JOB} follows no recount run of this instance, so "
        "it reports no week; materialize capacity_report for the week to report it"
    )


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
    defs = _unreachable_defs()
    instance = dg.DagsterInstance.ephemeral()
    _, cursor = _tick(defs, instance, None)
    run = _finished_run(
        instance, "weekly_capacity_report", {"dagster/partition": partition}, success=True
    )

    requested, _ = _tick(defs, instance, cursor)
    skipped = _on_success(defs, instance, run)

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


def _unreachable_defs() -> dg.Definitions:
    """For the sensors alone: they open no database; the resources let definitions resolve."""
    return _defs(ConnInfo.parse("postgresql://nobody@127.0.0.1:1/none", setting="unused"))


def _week_tags() -> dict[str, str]:
    return {RANGE_START_TAG: WEEK_DAYS[0], RANGE_END_TAG: WEEK_DAYS[-1]}


def _finished_run(
    instance: dg.DagsterInstance, job: str, tags: dict[str, str], *, success: bool
) -> dg.DagsterRun:
    """A run of ``job`` recorded as ended, with the event a run status sensor reads."""
    status = dg.DagsterRunStatus.SUCCESS if success else dg.DagsterRunStatus.FAILURE
    event = dg.DagsterEventType.RUN_SUCCESS if success else dg.DagsterEventType.RUN_FAILURE
    run = instance.add_run(dg.DagsterRun(job_name=job, tags=tags, status=status))
    instance.report_dagster_event(
        dg.DagsterEvent(event_type_value=event.value, job_name=job), run_id=run.run_id
    )
    return run


def _status_context(
    instance: dg.DagsterInstance,
    run: dg.ExecuteInProcessResult | dg.DagsterRun,
    sensor: str = SENSOR,
) -> dg.RunStatusSensorContext:
    if isinstance(run, dg.ExecuteInProcessResult):
        event = run.get_run_success_event() if run.success else run.get_run_failure_event()
        run = run.dagster_run
    else:
        [record] = instance.get_records_for_run(run.run_id).records
        event = record.event_log_entry.dagster_event
    return dg.build_run_status_sensor_context(
        sensor_name=sensor, dagster_event=event, dagster_instance=instance, dagster_run=run
    )


def _on_success(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    run: dg.ExecuteInProcessResult | dg.DagsterRun,
) -> dg.RunRequest | dg.SkipReason:
    """What weekly_capacity_report_on_success asks for when ``run`` has succeeded."""
    return defs.resolve_sensor_def(SENSOR)(_status_context(instance, run))


def _report_metadata(report: dg.ExecuteInProcessResult) -> dict[str, object]:
    [materialization] = report.asset_materializations_for_node("capacity_report")
    assert materialization.partition == WEEK
    return {key: value.value for key, value in materialization.metadata.items()}
