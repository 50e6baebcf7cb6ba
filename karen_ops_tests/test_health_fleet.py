"""The PostgreSQL health checks with a fleet: every database probed, each server counted once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import dagster as dg
import psycopg
import pytest

from karen_ops.health.definitions import build_definitions
from karen_ops.health.resource import HealthSettingsResource
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.redis import RedisResource
from karen_ops.settings import ScheduleSettings
from karen_ops_tests.fleet_fixtures import (
    FLEET_PASSWORD,
    UNREACHABLE,
    configure_fleet,
    everything_recorded,
    fleet_databases,
)
from karen_ops_tests.health_fixtures import http_server

TIMEOUT = 2.0
QUERIES = ("karen_postgres", "accepts_queries")
CONNECTIONS = ("karen_postgres", "connections_below_limit")
LONG_QUERIES = ("karen_postgres", "no_long_running_queries")


@pytest.fixture
def fleet(service_server) -> Iterator[dict[str, ConnInfo]]:
    rows = {"production": 10, "staging": 10, "tenant_acme": 10}
    with fleet_databases(service_server, rows) as targets:
        yield targets


def _run(job: str, **settings: object) -> tuple[dict[tuple[str, str], object], str]:
    """Run one health job as the code location defines it; its checks and all it recorded."""
    domain = build_definitions(ScheduleSettings())
    with http_server("healthy") as web:
        defs = dg.Definitions(
            assets=domain.assets,
            asset_checks=domain.asset_checks,
            jobs=domain.jobs,
            resources={
                "health_settings": HealthSettingsResource(
                    backend_url=f"{web}/api/health",
                    frontend_url=web,
                    probe_timeout_seconds=TIMEOUT,
                    disk_percent=100.0,
                    memory_percent=100.0,
                    **settings,
                ),
                # With a fleet only its databases are probed; this one is never asked.
                "postgres": PostgresResource(database_url=UNREACHABLE.public_dsn()),
                "redis": RedisResource(url="redis://127.0.0.1:6379/0"),
            },
        )
        with dg.DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def(job).execute_in_process(
                instance=instance, raise_on_error=False
            )
            recorded = everything_recorded(instance, result.run_id)
    assert result.success
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }
    return checks, recorded


def test_every_fleet_database_answering_passes(fleet, tmp_path, monkeypatch):
    configure_fleet(tmp_path, monkeypatch, fleet)

    checks, _ = _run("health_check")

    check = checks[QUERIES]
    assert check.passed, check.description
    assert check.metadata["databases"].value == 3
    assert check.metadata["answered"].value == 3
    for name in fleet:
        assert 0 < check.metadata[f"{name} latency_ms"].value < TIMEOUT * 1000
    assert check.description.startswith("3 databases answered SELECT 1; slowest ")


def test_check_fails_naming_exactly_the_database_that_does_not_answer(
    fleet, tmp_path, monkeypatch, caplog
):
    configure_fleet(tmp_path, monkeypatch, {**fleet, "tenant_acme": UNREACHABLE})
    caplog.set_level(logging.DEBUG)

    checks, recorded = _run("health_check")

    check = checks[QUERIES]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["unreachable"].value == "tenant_acme"
    assert check.metadata["answered"].value == 2
    assert check.description.startswith(
        "1 of 3 databases did not answer SELECT 1 (tenant_acme): database tenant_acme could "
        "not be probed: could not connect to karen_acme_unreachable on 127.0.0.1:1: "
    )
    assert check.description.endswith("; check KAREN_TEST_ACME_URL")
    for other in ("production", "staging"):
        assert other not in check.description
        assert fleet[other].dbname not in check.description
    assert FLEET_PASSWORD not in recorded
    assert FLEET_PASSWORD not in caplog.text


def test_connections_and_long_queries_count_each_server_once(
    service_server, embedded_server, tmp_path, monkeypatch
):
    # Two databases on one server and a third on another: two servers, never three.
    with (
        fleet_databases(service_server, {"production": 1, "staging": 1}) as shared,
        fleet_databases(embedded_server, {"tenant_acme": 1}) as other,
    ):
        configure_fleet(tmp_path, monkeypatch, {**shared, **other})
        with (
            psycopg.connect(**shared["production"].psycopg_kwargs(), autocommit=True) as sleeper,
            # An idle session, so the second server has a connection of its own to report.
            psycopg.connect(**other["tenant_acme"].psycopg_kwargs()),
        ):
            pid = sleeper.info.backend_pid
            thread = threading.Thread(target=sleeper.execute, args=("SELECT pg_sleep(4)",))
            thread.start()
            time.sleep(1.5)
            checks, recorded = _run(
                "health_check_hourly", long_query_seconds=1.0, connections_ratio=0.0
            )
            thread.join()

    connections = checks[CONNECTIONS]
    assert not connections.passed
    assert connections.severity == dg.AssetCheckSeverity.WARN
    assert connections.metadata["servers"].value == 2
    assert connections.metadata["databases"].value == 3
    assert "(databases production, staging)" in connections.description
    assert "(databases tenant_acme)" in connections.description
    shared_server = shared["production"].server()
    assert connections.metadata[f"{shared_server} connections"].value >= 1
    assert [key for key in connections.metadata if key.endswith(" connections")] == [
        f"{shared_server} connections",
        f"{other['tenant_acme'].server()} connections",
    ]
    long_queries = checks[LONG_QUERIES]
    assert not long_queries.passed
    assert long_queries.severity == dg.AssetCheckSeverity.WARN
    # The sleeper is seen from both databases of its server, and listed once.
    assert long_queries.description.count(f"pid {pid} ") == 1
    assert "SELECT pg_sleep(4)" in long_queries.description
    assert FLEET_PASSWORD not in recorded


def test_hourly_checks_pass_when_every_server_is_quiet(fleet, tmp_path, monkeypatch):
    configure_fleet(tmp_path, monkeypatch, fleet)

    checks, _ = _run("health_check_hourly", long_query_seconds=3600.0, connections_ratio=1.0)

    assert checks[CONNECTIONS].passed, checks[CONNECTIONS].description
    assert checks[CONNECTIONS].metadata["servers"].value == 1
    assert checks[CONNECTIONS].metadata["databases"].value == 3
    assert checks[LONG_QUERIES].passed, checks[LONG_QUERIES].description
