"""How long a one-year backfill of the growth assets takes against a single day's run.

The growth assets backfill a range in one run with one statement per asset, so the database
work for a year costs little more than for a day. What grows with the range is Dagster's own
bookkeeping: one materialization event per day and asset, and (by default) one planned event
per day and asset, each written to the instance's event log one at a time.

This script loads the synthetic AI Karen database into a fresh database, gives Dagster a
PostgreSQL-backed instance in a second fresh database (the storage of a multi-host
deployment), and times a single day and a year of user_growth, daily_active_users and
chat_activity, each as one in-process run, under two instance configurations:

- ``defaults``: Dagster as installed;
- ``batched``: DAGSTER_EVENT_BATCH_SIZE (event writes in batches) and
  DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS (one planned event per asset per run).

It prints the times, the time spent in the counting statements alone, and the year/day
ratio of each, and exits non-zero when the ``batched`` ratio is above three. It is a benchmark
to run by hand, not a test:

    python benchmarks/growth_backfill.py --server postgresql://postgres@127.0.0.1:5432/postgres

The databases it creates are named karen_bench_<random>[_dagster] and dropped at the end.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from karen_ops.capacity.assets import build_daily_assets
from karen_ops.capacity.growth import count_per_day
from karen_ops.capacity.partitions import daily_partitions, day_windows
from karen_ops.capacity.resource import CapacityResource
from karen_ops.demo.synthetic import load_synthetic_database
from karen_ops.partitions import last_complete_partition
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.redis import RedisResource

GROWTH = ["user_growth", "daily_active_users", "chat_activity"]
LIMIT_RATIO = 3.0


# The deployment settings the ``batched`` configuration sets; both are read by Dagster at
# every event write, so they can be switched inside one process.
BATCHED_ENVIRONMENT = {
    "DAGSTER_EVENT_BATCH_SIZE": "1000",
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="libpq URL of a maintenance database on the server to benchmark against",
    )
    parser.add_argument("--users", type=int, default=20_000, help="synthetic users to load")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind; median taken")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    server = conninfo_to_dict(args.server)
    name = f"karen_bench_{secrets.token_hex(4)}"
    databases = [name, f"{name}_dagster"]
    for database in databases:
        _admin(server, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        return _benchmark(server, name, args.users, args.repeat)
    finally:
        for database in databases:
            _admin(
                server,
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)),
            )


def _benchmark(server: dict, name: str, users: int, repeat: int) -> int:
    target = {**server, "dbname": name}
    started = time.monotonic()
    with psycopg.connect(**target, autocommit=True) as conn:
        rows = load_synthetic_database(conn, users=users)
    print(f"loaded {sum(rows.values()):,} rows in {time.monotonic() - started:.1f} s: {rows}")

    partitions = daily_partitions("UTC")
    last = date.fromisoformat(last_complete_partition(partitions, datetime.now(UTC)))
    first = last - timedelta(days=364)
    resources = {
        "postgres": PostgresResource(database_url=make_conninfo(**target)),
        "capacity": CapacityResource(),
        "redis": RedisResource(),
    }
    home = Path(tempfile.mkdtemp(prefix="karen-bench-dagster-"))
    # SQLAlchemy 2.1 picks psycopg 3 for postgresql:// URLs, whose server-side parameters
    # dagster-postgres' NOTIFY cannot use; name the psycopg2 driver explicitly.
    storage_url = make_conninfo(**{**server, "dbname": f"{name}_dagster"})
    storage = "postgresql+psycopg2://" + _url_tail(storage_url)
    (home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {storage}\ntelemetry:\n  enabled: false\n"
    )
    instance = dg.DagsterInstance.from_config(str(home))

    with warnings.catch_warnings():
        # backfill_policy is marked beta in Dagster 1.13; the warning says nothing here.
        warnings.simplefilter("ignore", dg.BetaWarning)
        assets = build_daily_assets(partitions)

    def run(start: date, end: date) -> Callable[[], None]:
        def once() -> None:
            result = dg.materialize(
                assets,
                selection=GROWTH,
                resources=resources,
                instance=instance,
                # One console line per partition would time the terminal, not the run.
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                tags={
                    "dagster/asset_partition_range_start": start.isoformat(),
                    "dagster/asset_partition_range_end": end.isoformat(),
                },
            )
            assert result.success

        return once

    statements_day = _median(lambda: _count_only(target, partitions, [last.isoformat()]), repeat)
    statements_year = _median(lambda: _count_only(target, partitions, _keys(first, last)), repeat)
    print(f"counting statements alone: day {statements_day:.3f} s, year {statements_year:.3f} s")

    ratios = {}
    try:
        run(last, last)()  # warm-up: imports, first connections, instance schema
        for configuration, environment in (("defaults", {}), ("batched", BATCHED_ENVIRONMENT)):
            with _environment(environment):
                day = _median(run(last, last), repeat)
                year = _median(run(first, last), repeat)
            ratios[configuration] = year / day
            print(
                f"{configuration:9} single day {last}: {day:6.2f} s   "
                f"year {first}..{last}: {year:6.2f} s   ratio {year / day:5.2f}"
            )
    finally:
        instance.dispose()

    if ratios["batched"] > LIMIT_RATIO:
        print(f"FAIL: with batched event writes a year takes {ratios['batched']:.1f}x a day")
        return 1
    print(
        f"OK: with batched event writes a year takes {ratios['batched']:.1f}x a day "
        f"(limit {LIMIT_RATIO:.0f}x); with Dagster's defaults {ratios['defaults']:.1f}x"
    )
    return 0


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _url_tail(conninfo: str) -> str:
    """user@host:port/dbname from keyword conninfo, for a SQLAlchemy URL."""
    params = conninfo_to_dict(conninfo)
    user = params.get("user", "postgres")
    password = f":{params['password']}" if params.get("password") else ""
    host = params.get("host", "127.0.0.1")
    return f"{user}{password}@{host}:{params.get('port', 5432)}/{params['dbname']}"


def _count_only(target: dict, partitions: dg.DailyPartitionsDefinition, keys: list[str]) -> None:
    capacity = CapacityResource()
    windows = day_windows(partitions, keys)
    with psycopg.connect(**target) as conn:
        count_per_day(
            conn, [capacity.new_users()], windows, "UTC", cumulative=frozenset({"new_users"})
        )
        count_per_day(conn, [capacity.active_users()], windows, "UTC")
        count_per_day(conn, [capacity.conversations(), capacity.messages()], windows, "UTC")


def _keys(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _median(work: Callable[[], None], repeat: int) -> float:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def _admin(server: dict, statement: sql.Composed) -> None:
    with psycopg.connect(**server, autocommit=True) as conn:
        conn.execute(statement)


if __name__ == "__main__":
    sys.exit(main())
