"""The capacity snapshot: what it observes now, and its refusal to label the past."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest
import redis

from karen_ops.capacity.partitions import daily_partitions
from karen_ops.partitions import last_complete_partition
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.redis import RedisResource
from karen_ops_tests.capacity_fixtures import (
    LOCAL_REDIS,
    RANGE_END_TAG,
    RANGE_START_TAG,
    add_chats,
    add_users,
    capacity_assets,
    capacity_resources,
    karen_schema,
)
from karen_ops_tests.runs import failure_message
from karen_ops_tests.servers import Server


@pytest.fixture
def karen_db(server: Server) -> Iterator[ConnInfo]:
    with karen_schema(server) as target:
        user = add_users(target, [datetime(2025, 1, 1, tzinfo=UTC)])[0]
        add_chats(target, user, [(datetime(2025, 1, 2, tzinfo=UTC), 50)])
        yield target


def _snapshot(
    target: ConnInfo, day: str, **resource_overrides: object
) -> dg.ExecuteInProcessResult:
    resources = {**capacity_resources(target), **resource_overrides}
    return dg.materialize(
        capacity_assets(),
        selection=["capacity_snapshot"],
        partition_key=day,
        resources=resources,
        raise_on_error=False,
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    [materialization] = result.asset_materializations_for_node("capacity_snapshot")
    return {key: value.value for key, value in materialization.metadata.items()}


def _yesterday() -> str:
    return last_complete_partition(daily_partitions("UTC"), datetime.now(UTC))


def test_snapshot_records_database_host_and_redis_figures(karen_db):
    client = redis.Redis.from_url(LOCAL_REDIS)
    client.set("karen-ops-capacity-test", "1", ex=60)
    try:
        result = _snapshot(karen_db, _yesterday())
    finally:
        client.delete("karen-ops-capacity-test")
    assert result.success
    metadata = _metadata(result)

    with psycopg.connect(**karen_db.psycopg_kwargs()) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        max_connections = int(conn.execute("SHOW max_connections").fetchone()[0])
    assert metadata["database_size_bytes"] == size
    assert metadata["max_connections"] == max_connections
    assert 1 <= metadata["connections"] <= max_connections
    for table in ("public.users", "public.conversations", "public.messages"):
        assert f"| {table} | table |" in metadata["largest_relations"]
    assert "| public.messages_pkey (on public.messages) | index |" in metadata["largest_relations"]

    disk = shutil.disk_usage("/")
    assert metadata["disk_total_bytes"] == disk.total
    assert 0 < metadata["disk_used_percent"] < 100
    assert 0 < metadata["memory_used_percent"] < 100
    assert metadata["redis"] == "redis://127.0.0.1:6379/0"
    assert metadata["redis_keys"] >= 1
    assert metadata["redis_used_memory_bytes"] > 0


def test_snapshot_refuses_to_record_today_under_a_past_day(karen_db):
    old = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    result = _snapshot(karen_db, old)

    assert not result.success
    message = failure_message(result)
    assert f"cannot record a capacity snapshot for {old}: a snapshot observes the platform" in (
        message
    )
    assert "the past cannot be observed afterwards; materialize the newest partition, " in message
    assert _yesterday() in message


def test_snapshot_refuses_a_range_of_days(karen_db):
    last = _yesterday()
    first = (datetime.fromisoformat(last) - timedelta(days=6)).date().isoformat()
    result = dg.materialize(
        capacity_assets(),
        selection=["capacity_snapshot"],
        resources=capacity_resources(karen_db),
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last},
        raise_on_error=False,
    )

    assert not result.success
    assert (
        f"cannot record capacity snapshots for {first}...{last}: a snapshot observes the "
        "platform once, now, and cannot fill a range of days; backfill the growth assets "
        f"alone, and materialize capacity_snapshot for {last}"
    ) in failure_message(result)


def test_snapshot_without_redis_keeps_the_rest_and_marks_redis_unobserved(karen_db):
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    result = _snapshot(karen_db, _yesterday(), redis=RedisResource(url="redis://127.0.0.1:1/0"))

    assert result.success
    metadata = _metadata(result)
    assert metadata["redis"].startswith("not observed")
    assert "redis_keys" not in metadata
    assert metadata["database_size_bytes"] > 0


def test_snapshot_names_a_disk_path_that_does_not_exist(karen_db):
    resources = capacity_resources(karen_db, disk_path="/no/such/disk")
    result = _snapshot(karen_db, _yesterday(), capacity=resources["capacity"])

    assert not result.success
    assert (
        "could not observe disk use at /no/such/disk: No such file or directory; set disk_path "
        "of the capacity resource to a path on the database's data disk"
    ) in failure_message(result)
