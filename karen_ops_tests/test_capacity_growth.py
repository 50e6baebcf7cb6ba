"""Growth counted from the application's timestamps: exact per-day and per-month numbers,
days of 23 and 25 hours, gaps before the record begins, and backfills of a year in one run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
import pytest

from karen_ops.capacity.growth import count_per_day
from karen_ops.capacity.partitions import daily_partitions, day_windows
from karen_ops.capacity.resource import CapacityResource
from karen_ops.resources.conninfo import ConnInfo
from karen_ops_tests.capacity_fixtures import (
    add_chats,
    add_sessions,
    add_users,
    capacity_resources,
    karen_schema,
    recorded,
    run_days,
    spread,
)
from karen_ops_tests.runs import failure_message
from karen_ops_tests.servers import Server

GROWTH = ["user_growth", "daily_active_users", "chat_activity"]


@pytest.fixture
def karen_db(server: Server) -> Iterator[ConnInfo]:
    with karen_schema(server) as target:
        yield target


def _days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def test_known_sign_ups_give_exact_new_and_cumulative_users_per_day_and_month(karen_db):
    # 40 users before the range, then sign-ups spread over three months, none for three days.
    before = [datetime(2024, 12, 1, 12, tzinfo=UTC)] * 40
    quiet = {date(2025, 2, 14), date(2025, 2, 15), date(2025, 2, 16)}
    signups = [
        at
        for at in spread(datetime(2025, 1, 1, tzinfo=UTC), 600, timedelta(days=90))
        if at.date() not in quiet
    ]
    add_users(karen_db, before + signups)
    per_day = Counter(at.date().isoformat() for at in signups)
    days = _days(date(2025, 1, 1), date(2025, 3, 31))

    instance = dg.DagsterInstance.ephemeral()
    result = run_days(
        ["user_growth"], days[0], days[-1], capacity_resources(karen_db), instance=instance
    )
    assert result.success
    values = recorded(instance, "user_growth", days)

    total = 40
    for day in days:
        total += per_day[day]
        assert values[day]["new_users"] == per_day[day], day
        assert values[day]["cumulative_users"] == total, day
    for month in ("2025-01", "2025-02", "2025-03"):
        recorded_month = sum(v["new_users"] for d, v in values.items() if d.startswith(month))
        assert recorded_month == sum(n for d, n in per_day.items() if d.startswith(month))
    assert values[days[-1]]["cumulative_users"] == 40 + len(signups)
    assert [values[d.isoformat()]["new_users"] for d in sorted(quiet)] == [0, 0, 0]


def test_days_of_23_and_25_hours_are_cut_at_local_midnight(karen_db):
    berlin = ZoneInfo("Europe/Berlin")
    instants = [
        datetime(2025, 3, 29, 23, 30, tzinfo=UTC),  # 00:30 CET on 30 March
        datetime(2025, 3, 30, 21, 59, tzinfo=UTC),  # 23:59 CEST on 30 March
        datetime(2025, 3, 30, 22, 0, tzinfo=UTC),  # 00:00 CEST on 31 March
        datetime(2025, 10, 25, 22, 0, tzinfo=UTC),  # 00:00 CEST on 26 October
        datetime(2025, 10, 26, 0, 30, tzinfo=UTC),  # 02:30 CEST, the first of two 02:30s
        datetime(2025, 10, 26, 1, 30, tzinfo=UTC),  # 02:30 CET, the second
        datetime(2025, 10, 26, 22, 59, tzinfo=UTC),  # 23:59 CET on 26 October
        datetime(2025, 10, 26, 23, 0, tzinfo=UTC),  # 00:00 CET on 27 October
    ]
    user = add_users(karen_db, [datetime(2025, 1, 1, tzinfo=UTC)])[0]
    # A first conversation long before: every day below is observed, quiet days are zeros.
    add_chats(karen_db, user, [(at, 2) for at in [datetime(2025, 1, 1, tzinfo=UTC), *instants]])
    expected = Counter(at.astimezone(berlin).date().isoformat() for at in instants)
    days = _days(date(2025, 3, 29), date(2025, 3, 31)) + _days(
        date(2025, 10, 25), date(2025, 10, 27)
    )

    instance = dg.DagsterInstance.ephemeral()
    for first, last in ((days[0], days[2]), (days[3], days[5])):
        resources = capacity_resources(karen_db)
        result = run_days(
            ["chat_activity"], first, last, resources, timezone="Europe/Berlin", instance=instance
        )
        assert result.success
    values = recorded(instance, "chat_activity", days)

    assert {d: values[d]["conversations"] for d in days} == {d: expected[d] for d in days}
    assert {d: values[d]["messages"] for d in days} == {d: 2 * expected[d] for d in days}
    assert values["2025-03-30"]["day_hours"] == 23.0
    assert values["2025-10-26"]["day_hours"] == 25.0
    assert values["2025-10-27"]["day_hours"] == 24.0


def test_days_before_the_first_row_are_gaps_and_quiet_days_are_true_zeros(karen_db):
    users = add_users(karen_db, [datetime(2025, 1, 1, tzinfo=UTC)] * 3)
    add_sessions(
        karen_db,
        [
            (users[0], datetime(2025, 2, 10, 9, tzinfo=UTC)),
            (users[0], datetime(2025, 2, 10, 17, tzinfo=UTC)),  # same user: counted once
            (users[1], datetime(2025, 2, 10, 23, 59, tzinfo=UTC)),
            (users[2], datetime(2025, 2, 14, 0, 0, tzinfo=UTC)),
        ],
    )
    days = _days(date(2025, 2, 7), date(2025, 2, 15))

    instance = dg.DagsterInstance.ephemeral()
    result = run_days(
        ["daily_active_users"], days[0], days[-1], capacity_resources(karen_db), instance=instance
    )
    assert result.success
    values = recorded(instance, "daily_active_users", days)

    for gap_day in days[:3]:
        assert values[gap_day]["observed"] is False
        assert "active_users" not in values[gap_day]
        assert values[gap_day]["gap"].startswith("before the first row of public.user_sessions")
    assert [values[d]["active_users"] for d in days[3:]] == [2, 0, 0, 0, 1, 0]


def test_a_year_backfills_in_one_run_and_agrees_with_single_day_runs(karen_db):
    start, year = datetime(2025, 1, 1, tzinfo=UTC), timedelta(days=365)
    users = add_users(karen_db, spread(start, 300, year))
    activity = spread(start, 900, year, step=7919)
    add_sessions(karen_db, [(users[i % 300], at) for i, at in enumerate(activity)])
    chats = spread(start, 400, year, step=15_013)
    add_chats(karen_db, users[0], [(at, 1 + i % 3) for i, at in enumerate(chats)])
    days = _days(date(2025, 1, 1), date(2025, 12, 31))

    instance = dg.DagsterInstance.ephemeral()
    result = run_days(GROWTH, days[0], days[-1], capacity_resources(karen_db), instance=instance)
    assert result.success
    assert len(instance.get_runs()) == 1
    year = {asset: recorded(instance, asset, days) for asset in GROWTH}
    for asset in GROWTH:
        assert len(year[asset]) == 365
        assert all(v["observed"] is not False or "gap" in v for v in year[asset].values())
    assert sum(v.get("new_users", 0) for v in year["user_growth"].values()) == 300

    sample = ["2025-01-01", "2025-03-30", "2025-06-15", "2025-10-26", "2025-12-31"]
    for day in sample:
        single = run_days(GROWTH, day, day, capacity_resources(karen_db), instance=instance)
        assert single.success
    for asset in GROWTH:
        assert recorded(instance, asset, sample) == {d: year[asset][d] for d in sample}


def test_counting_a_year_takes_as_many_statements_as_one_day(karen_db):
    partitions = daily_partitions("UTC")
    sources = [CapacityResource().conversations(), CapacityResource().messages()]
    statements = []

    def spy(original):
        def execute(query, params=None, **kwargs):
            statements.append(query)
            return original(query, params, **kwargs)

        return execute

    counts = []
    for days in (["2025-05-05"], _days(date(2025, 1, 1), date(2025, 12, 31))):
        statements.clear()
        with psycopg.connect(**karen_db.psycopg_kwargs()) as conn:
            conn.execute = spy(conn.execute)
            count_per_day(conn, sources, day_windows(partitions, days), "UTC")
        counts.append(len(statements))
    assert counts[0] == counts[1] == 3  # table check, session time zone, the count itself


def test_a_missing_table_or_column_is_named_in_the_error(karen_db):
    resources = capacity_resources(karen_db, messages_time_column="sent_at")
    result = run_days(["chat_activity"], "2025-01-01", "2025-01-02", resources)
    assert not result.success
    assert (
        "cannot count messages: column sent_at does not exist in table public.messages "
        "(it has content, conversation_id, created_at, id, role, tokens); set the capacity "
        "resource's column for messages"
    ) in failure_message(result)

    resources = capacity_resources(karen_db, activity_table="sessions")
    result = run_days(["daily_active_users"], "2025-01-01", "2025-01-01", resources)
    assert not result.success
    assert "cannot count active_users: table public.sessions does not exist" in failure_message(
        result
    )
