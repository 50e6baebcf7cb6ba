"""The daily capacity assets: the snapshot of now, and growth counted from the application."""

from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg

from karen_ops import settings
from karen_ops.capacity.fleet import FleetObservation, RelationQuery, observe_fleet
from karen_ops.capacity.growth import (
    DayRecord,
    MetricSource,
    SourceCounts,
    count_per_day,
    merged_days,
    single_metric_days,
    user_growth_days,
)
from karen_ops.capacity.partitions import DayWindow, day_windows, require_observable_day
from karen_ops.capacity.redis_usage import observe_redis
from karen_ops.capacity.resource import CapacityResource
from karen_ops.capacity.snapshot import observe_database, observe_host
from karen_ops.capacity.snapshot_metadata import fleet_metadata, snapshot_metadata
from karen_ops.errors import CapacityError
from karen_ops.failures import expected_failures
from karen_ops.resources.postgres import PostgresResource, connect
from karen_ops.resources.redis import RedisResource

GROUP = "capacity"
OWNERS = ["team:platform-ops"]

# Each growth metric's counts over the run's days, by metric name.
Counts = dict[str, SourceCounts]


def build_daily_assets(partitions: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    # A year of days is one run and one statement per asset, not 365 runs. The snapshot shares
    # the policy so that the daily_capacity job has one; it refuses any range itself.
    single_run = dg.BackfillPolicy.single_run()
    growth = {
        "partitions_def": partitions,
        "backfill_policy": single_run,
        "group_name": GROUP,
        "owners": OWNERS,
        "kinds": {"postgres"},
    }

    @dg.asset(
        partitions_def=partitions,
        backfill_policy=single_run,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"postgres", "redis"},
        description="Database and largest table and index sizes, connections against "
        "max_connections, cache hit ratio, host disk, memory and load, Redis memory and keys, "
        "as observed when the run starts; only the day just ended can be recorded. The "
        "database figures are those of the application's database (KAREN_DATABASE_URL); each "
        "database of a fleet in the settings file adds its own size, connections, cache hit "
        "ratio and largest relations, or is recorded as unreachable.",
    )
    def capacity_snapshot(
        context: dg.AssetExecutionContext,
        postgres: PostgresResource,
        capacity: CapacityResource,
        redis: RedisResource,
    ) -> dg.MaterializeResult:
        now = datetime.now(UTC)
        with expected_failures():
            day = require_observable_day(partitions, list(context.partition_keys), now)
            with connect(postgres.source(), setting=settings.DATABASE_URL) as conn:
                conn.read_only = True
                database = observe_database(
                    conn,
                    schema=capacity.schema_name,
                    always=capacity.always_listed_tables(),
                    limit=capacity.largest_relations,
                )
            host = observe_host(capacity.disk_path)
            fleet = _observe_fleet(context, postgres, capacity)
        try:
            cache = observe_redis(redis)
        except CapacityError as exc:
            # A snapshot without Redis is still worth keeping; its Redis figures are a gap.
            context.log.warning(f"capacity snapshot continues without Redis: {exc}")
            cache = None
        context.log.info(
            f"capacity snapshot day={day} database_bytes={database.size_bytes} "
            f"disk_used_percent={host.disk_used_percent:.1f} "
            f"connections={database.connections}/{database.max_connections}"
        )
        metadata = {**snapshot_metadata(now, database, host, cache), **fleet_metadata(fleet)}
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(
        **growth,
        description="New users per day and all users at each day's end, from the users' "
        "sign-up timestamps (capacity resource: users_table, users_time_column) in the "
        "application's database (KAREN_DATABASE_URL), not the fleet's.",
    )
    def user_growth(
        context: dg.AssetExecutionContext, postgres: PostgresResource, capacity: CapacityResource
    ) -> dg.MaterializeResult:
        def shape(counts: Counts, windows: list[DayWindow]) -> list[DayRecord]:
            return user_growth_days(counts["new_users"], windows)

        return _record_days(context, partitions, postgres, [capacity.new_users()], shape)

    @dg.asset(
        **growth,
        description="Distinct users with recorded activity per day (default: "
        "user_sessions.last_activity_at), in the application's database.",
    )
    def daily_active_users(
        context: dg.AssetExecutionContext, postgres: PostgresResource, capacity: CapacityResource
    ) -> dg.MaterializeResult:
        def shape(counts: Counts, windows: list[DayWindow]) -> list[DayRecord]:
            return single_metric_days(counts["active_users"], windows)

        return _record_days(context, partitions, postgres, [capacity.active_users()], shape)

    @dg.asset(
        **growth,
        description="Conversations started and messages sent per day, in the application's "
        "database.",
    )
    def chat_activity(
        context: dg.AssetExecutionContext, postgres: PostgresResource, capacity: CapacityResource
    ) -> dg.MaterializeResult:
        def shape(counts: Counts, windows: list[DayWindow]) -> list[DayRecord]:
            parts = [single_metric_days(counts[name], windows) for name in counts]
            return merged_days(parts)

        sources = [capacity.conversations(), capacity.messages()]
        return _record_days(context, partitions, postgres, sources, shape)

    return [capacity_snapshot, user_growth, daily_active_users, chat_activity]


def _observe_fleet(
    context: dg.AssetExecutionContext, postgres: PostgresResource, capacity: CapacityResource
) -> list[FleetObservation]:
    """Each database of the fleet in the settings file; those out of reach are logged."""
    fleet = settings.load_fleet()
    relations = RelationQuery(
        capacity.schema_name, capacity.always_listed_tables(), capacity.largest_relations
    )
    observations = observe_fleet(postgres, fleet, relations)
    for observation in observations:
        if not observation.observed:
            # The problem names the database and server, never the URL with its password.
            context.log.warning(
                f"capacity snapshot continues without fleet database {observation.name}: "
                f"{observation.problem}"
            )
    if observations:
        observed = sum(o.observed for o in observations)
        context.log.info(
            f"capacity snapshot fleet databases={len(observations)} observed={observed}"
        )
    return observations


def _record_days(
    context: dg.AssetExecutionContext,
    partitions: dg.DailyPartitionsDefinition,
    postgres: PostgresResource,
    sources: list[MetricSource],
    shape: Callable[[Counts, list[DayWindow]], list[DayRecord]],
) -> dg.MaterializeResult:
    """Count the run's days in one statement and record each day on its own partition."""
    windows = day_windows(partitions, list(context.partition_keys))
    timezone = partitions.timezone
    context.log.info(
        f"counting {', '.join(s.describe() for s in sources)} days={len(windows)} "
        f"from={windows[0].day} to={windows[-1].day} timezone={timezone}"
    )
    with expected_failures(), connect(postgres.source(), setting=settings.DATABASE_URL) as conn:
        conn.read_only = True
        counts = count_per_day(
            conn, sources, windows, timezone, cumulative=frozenset({"new_users"})
        )

    records: list[DayRecord] = shape(counts, windows)
    for record in records:
        context.add_asset_metadata(
            day_metadata(record, timezone), partition_key=record.window.day.isoformat()
        )
    gaps = sum(record.values is None for record in records)
    context.log.info(f"recorded days={len(records)} gaps={gaps}")
    return dg.MaterializeResult()


def day_metadata(record: DayRecord, timezone: str) -> dict[str, object]:
    """What one day's partition shows: its own values, never a summary of the run's range."""
    metadata: dict[str, object] = {
        "observed": record.values is not None,
        "day_hours": dg.MetadataValue.float(record.window.hours),
        "timezone": timezone,
    }
    if record.gap_reason:
        metadata["gap"] = record.gap_reason
    for name, value in (record.values or {}).items():
        metadata[name] = dg.MetadataValue.int(value)
    return metadata
