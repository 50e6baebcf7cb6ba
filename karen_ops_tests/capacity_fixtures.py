"""Fixtures and helpers for the capacity tests: an empty AI Karen schema on each real server,
rows with timestamps the test chooses, and in-process runs of the capacity assets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import dagster as dg
import psycopg
from psycopg.conninfo import make_conninfo

from karen_ops.capacity.assets import build_daily_assets
from karen_ops.capacity.partitions import daily_partitions, weekly_partitions
from karen_ops.capacity.report_asset import build_report_asset
from karen_ops.capacity.resource import CapacityResource
from karen_ops.demo.synthetic import SCHEMA
from karen_ops.partitions import RANGE_END_TAG, RANGE_START_TAG
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.redis import RedisResource
from karen_ops.resources.store import BackupStoreResource
from karen_ops_tests.servers import Server

LOCAL_REDIS = "redis://127.0.0.1:6379/0"


@contextmanager
def karen_schema(server: Server) -> Iterator[ConnInfo]:
    """An empty AI Karen schema (the demo's tables) in a fresh database, dropped afterwards."""
    with server.database("karen_capacity") as target:
        with psycopg.connect(**target.psycopg_kwargs()) as conn:
            conn.execute(SCHEMA)
            conn.execute("INSERT INTO tenants (name, plan, created_at) VALUES ('t', 'team', now())")
        yield target


def spread(first: datetime, count: int, span: timedelta, step: int = 104_729) -> list[datetime]:
    """``count`` instants scattered over ``span`` from ``first`` by a fixed stride: uneven,
    repeatable, and some days left empty."""
    minutes = int(span.total_seconds() // 60)
    return [first + timedelta(minutes=(i * step) % minutes) for i in range(count)]


def add_users(target: ConnInfo, signed_up: list[datetime]) -> list[int]:
    """One user per timestamp; returns their ids in the same order."""
    with psycopg.connect(**target.psycopg_kwargs()) as conn:
        start = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        return [
            conn.execute(
                "INSERT INTO users (tenant_id, email, display_name, password_hash, created_at) "
                "VALUES (1, %s, 'u', 'x', %s) RETURNING id",
                (f"user{start + i}@example.com", at),
            ).fetchone()[0]
            for i, at in enumerate(signed_up)
        ]


def add_sessions(target: ConnInfo, activity: list[tuple[int, datetime]]) -> None:
    with psycopg.connect(**target.psycopg_kwargs()) as conn:
        conn.cursor().executemany(
            "INSERT INTO user_sessions (user_id, created_at, last_activity_at, expires_at, "
            "ip_address, user_agent) VALUES (%s, %s, %s, %s, '127.0.0.1', 'test')",
            [(user, at, at, at) for user, at in activity],
        )


def add_chats(target: ConnInfo, user: int, conversations: list[tuple[datetime, int]]) -> None:
    """Conversations started at the given times, each with the given number of messages sent
    at its start time."""
    with psycopg.connect(**target.psycopg_kwargs()) as conn:
        for started, messages in conversations:
            conversation = conn.execute(
                "INSERT INTO conversations (user_id, tenant_id, title, created_at, updated_at) "
                "VALUES (%s, 1, 'c', %s, %s) RETURNING id",
                (user, started, started),
            ).fetchone()[0]
            conn.cursor().executemany(
                "INSERT INTO messages (conversation_id, role, content, tokens, created_at) "
                "VALUES (%s, 'user', 'hi', 1, %s)",
                [(conversation, started)] * messages,
            )


def capacity_resources(
    target: ConnInfo, store_url: str | None = None, **capacity_settings: object
) -> dict[str, object]:
    resources: dict[str, object] = {
        "postgres": PostgresResource(database_url=make_conninfo(**target.params)),
        "capacity": CapacityResource(**capacity_settings),
        "redis": RedisResource(url=LOCAL_REDIS),
        # Only the report opens the store; the daily assets never touch it.
        "backup_store": BackupStoreResource(url=store_url),
    }
    return resources


def capacity_assets(timezone: str = "UTC") -> list[dg.AssetsDefinition]:
    return [
        *build_daily_assets(daily_partitions(timezone)),
        build_report_asset(weekly_partitions(timezone)),
    ]


def run_days(
    assets: list[str],
    first: str,
    last: str,
    resources: dict[str, object],
    *,
    timezone: str = "UTC",
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """One run over the days first..last, as a single-run backfill launches it."""
    return dg.materialize(
        capacity_assets(timezone),
        selection=assets,
        resources=resources,
        instance=instance,
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last},
        raise_on_error=False,
    )


def recorded(
    instance: dg.DagsterInstance, asset: str, partitions: list[str]
) -> dict[str, dict[str, object]]:
    """Each partition's newest materialization metadata, as plain values."""
    found: dict[str, dict[str, object]] = {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=partitions),
        limit=10_000,
    ).records
    for record in records:
        if record.partition_key not in found:
            metadata = record.asset_materialization.metadata
            found[record.partition_key] = {k: v.value for k, v in metadata.items()}
    return found
