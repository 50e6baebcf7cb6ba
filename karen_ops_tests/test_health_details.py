"""Hourly detail checks, TLS expiry against a local TLS server, and the daily report."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import dagster as dg
import psycopg
import pytest
import redis

from karen_ops.health.definitions import build_definitions
from karen_ops.health.resource import HealthSettingsResource
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.redis import RedisResource
from karen_ops.settings import ScheduleSettings
from karen_ops_tests.health_fixtures import (
    free_port,
    http_server,
    make_certificate,
    redis_that_evicts,
    redis_with_password,
    tls_server,
)


def _defs(server, redis_url=None, **settings):
    domain = build_definitions(ScheduleSettings())
    return dg.Definitions(
        assets=domain.assets,
        asset_checks=domain.asset_checks,
        jobs=domain.jobs,
        resources={
            "health_settings": HealthSettingsResource(
                probe_timeout_seconds=2.0, disk_percent=100.0, memory_percent=100.0, **settings
            ),
            "postgres": PostgresResource(database_url=server.url("postgres")),
            "redis": RedisResource(url=redis_url),
        },
    )


def _run(defs, job, instance=None):
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert result.success
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def _tls_check(server, tmp_path, expires_in):
    cert, key, _ = make_certificate(tmp_path, expires_in)
    with tls_server(cert, key) as host:
        checks = _run(_defs(server, tls_hosts=[host]), "health_check_hourly")
    return host, checks[("tls_certificates", "certificates_not_expiring")]


def test_certificate_expiring_in_five_days_fails_with_the_days_left(service_server, tmp_path):
    host, check = _tls_check(service_server, tmp_path, timedelta(days=5, hours=2))

    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["days_left"].value == 5
    assert check.metadata[f"{host} days_left"].value == 5
    assert check.description.startswith(f"certificate(s) expire within 7 days: {host}: expires")
    assert check.description.endswith(", 5 day(s) left; renew them now")


def test_certificate_expiring_in_twenty_days_warns(service_server, tmp_path):
    _, check = _tls_check(service_server, tmp_path, timedelta(days=20, hours=2))

    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["days_left"].value == 20


def test_certificate_valid_for_ninety_days_passes(service_server, tmp_path):
    _, check = _tls_check(service_server, tmp_path, timedelta(days=90, hours=2))

    assert check.passed
    assert check.metadata["days_left"].value == 90


def test_expired_certificate_fails_with_negative_days(service_server, tmp_path):
    _, check = _tls_check(service_server, tmp_path, timedelta(days=-3, hours=2))

    assert not check.passed
    assert check.metadata["days_left"].value == -3


def test_unreachable_tls_host_is_an_error_never_a_silent_pass(service_server):
    host = f"127.0.0.1:{free_port()}"
    checks = _run(_defs(service_server, tls_hosts=[host]), "health_check_hourly")
    check = checks[("tls_certificates", "certificates_not_expiring")]

    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description.startswith(f"{host}: could not read the certificate: ")
    # Nothing to renew: the host gave no certificate at all.
    assert "renew" not in check.description
    assert check.description.endswith(
        "; check that each host serves TLS on the port given, or correct health.tls_hosts in "
        "$KAREN_OPS_CONFIG or in the health_settings resource"
    )


def test_long_running_query_and_crowded_connections_warn(service_server):
    with psycopg.connect(service_server.url("postgres"), autocommit=True) as sleeper:
        thread = threading.Thread(target=sleeper.execute, args=("SELECT pg_sleep(4)",))
        thread.start()
        time.sleep(1.5)
        checks = _run(
            _defs(service_server, long_query_seconds=1.0, connections_ratio=0.0),
            "health_check_hourly",
        )
        thread.join()

    long_queries = checks[("karen_postgres", "no_long_running_queries")]
    assert not long_queries.passed
    assert long_queries.severity == dg.AssetCheckSeverity.WARN
    assert long_queries.metadata["long_running_queries"].value >= 1
    assert "SELECT pg_sleep(4)" in long_queries.description
    connections = checks[("karen_postgres", "connections_below_limit")]
    assert not connections.passed
    assert connections.metadata["connections"].value >= 1


def _fill(url, prefix, count):
    """Write ``count`` 20 kB values; returns how many keys Redis evicted meanwhile."""
    client = redis.Redis.from_url(url)
    try:
        before = client.info("stats")["evicted_keys"]
        for i in range(count):
            client.set(f"{prefix}:{i}", b"x" * 20_000)
        evicted = client.info("stats")["evicted_keys"] - before
        # Leave room under the limit, so the probes' own connections evict nothing more.
        client.delete(*(f"{prefix}:{i}" for i in range(count - 20, count)))
        return evicted
    finally:
        client.close()


def test_redis_evictions_warn_once_then_count_only_new_ones(service_server, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    with redis_that_evicts(tmp_path) as url:
        defs = _defs(service_server, redis_url=url)
        first_evicted = _fill(url, "first", 300)
        first = _run(defs, "health_check_hourly", instance)[("karen_redis", "no_evictions")]
        quiet = _run(defs, "health_check_hourly", instance)[("karen_redis", "no_evictions")]
        later_evicted = _fill(url, "later", 100)
        later = _run(defs, "health_check_hourly", instance)[("karen_redis", "no_evictions")]

    assert first_evicted > 0 and later_evicted > 0
    assert not first.passed
    assert first.severity == dg.AssetCheckSeverity.WARN
    assert first.metadata["evicted_since_last_check"].value == first_evicted
    assert quiet.passed, quiet.description
    assert quiet.metadata["evicted_since_last_check"].value == 0
    assert quiet.metadata["evicted_keys"].value == first_evicted
    assert not later.passed
    assert later.metadata["evicted_since_last_check"].value == later_evicted
    assert later.description.startswith(
        f"Redis at redis://127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}/0 evicted "
        f"{later_evicted:,} key(s) since the last check"
    )


def test_daily_report_gives_uptime_and_failure_times_from_the_check_history(service_server):
    instance = dg.DagsterInstance.ephemeral()
    with http_server("healthy") as good, http_server("failing") as bad:
        for backend in (good, good, good, bad):
            _run(
                _defs(service_server, backend_url=backend, frontend_url=good),
                "health_check",
                instance,
            )
        report = (
            _defs(service_server)
            .resolve_job_def("daily_health_report")
            .execute_in_process(instance=instance)
        )

    metadata = report.asset_materializations_for_node("health_report")[0].metadata
    markdown = metadata["report"].value
    assert metadata["karen_backend uptime_percent"].value == 75.0
    assert metadata["karen_frontend uptime_percent"].value == 100.0
    assert "| karen_backend | 75.00% | 4 | 1 |" in markdown
    assert f"| karen_backend | api_responds_healthy | ERROR | {bad} answered HTTP 500 |" in markdown


def test_daily_report_lists_the_hourly_checks_failures_with_a_row_per_component(
    service_server, tmp_path
):
    instance = dg.DagsterInstance.ephemeral()
    cert, key, _ = make_certificate(tmp_path, timedelta(days=5))
    with (
        http_server("healthy") as good,
        redis_with_password(tmp_path) as redis_url,
        tls_server(cert, key) as host,
    ):
        defs = _defs(
            service_server,
            redis_url=redis_url,
            backend_url=good,
            frontend_url=good,
            tls_hosts=[host],
            # Any use of maxmemory is over a share of 0: memory_below_limit warns.
            redis_memory_ratio=0.0,
        )
        _run(defs, "health_check", instance)
        _run(defs, "health_check_hourly", instance)
        report = defs.resolve_job_def("daily_health_report").execute_in_process(instance=instance)

    metadata = report.asset_materializations_for_node("health_report")[0].metadata
    markdown = metadata["report"].value
    assert "| karen_redis | 50.00% | 2 | 1 |" in markdown
    assert "| tls_certificates | 0.00% | 1 | 1 |" in markdown
    assert "| karen_host | 100.00% | 1 | 0 |" in markdown
    assert metadata["failures"].value == 2
    assert metadata["tls_certificates uptime_percent"].value == 0.0
    assert "| karen_redis | memory_below_limit | WARN | Redis at redis://127.0.0.1:" in markdown
    assert (
        f"| tls_certificates | certificates_not_expiring | ERROR | certificate(s) expire within "
        f"7 days: {host}: expires "
    ) in markdown


def test_health_definitions_offer_components_jobs_and_schedules():
    shared = dg.Definitions(resources={"postgres": PostgresResource(), "redis": RedisResource()})
    defs = dg.Definitions.merge(build_definitions(ScheduleSettings()), shared)
    repository = defs.get_repository_def()
    assets = {k.to_user_string() for k in repository.asset_graph.get_all_asset_keys()}
    checks = {
        (k.asset_key.to_user_string(), k.name) for k in repository.asset_graph.asset_check_keys
    }

    assert {
        "karen_backend",
        "karen_frontend",
        "karen_postgres",
        "karen_redis",
        "karen_host",
        "tls_certificates",
        "health_report",
    } <= assets
    assert ("tls_certificates", "certificates_not_expiring") in checks
    assert defs.resolve_schedule_def("health_check_schedule").cron_schedule == "*/5 * * * *"
    assert defs.resolve_schedule_def("health_check_hourly_schedule").cron_schedule == "0 * * * *"
    assert defs.resolve_schedule_def("daily_health_report_schedule").cron_schedule == "0 8 * * *"


@pytest.mark.parametrize("text", ["health:\n  nonsense: 1\n", "health: [1]\n"])
def test_malformed_health_section_names_the_file(tmp_path, monkeypatch, text):
    from karen_ops.errors import ConfigurationError
    from karen_ops.health.settings import resolve_health_settings

    path = tmp_path / "ops.yaml"
    path.write_text(text)
    monkeypatch.setenv("KAREN_OPS_CONFIG", str(path))
    with pytest.raises(ConfigurationError, match=str(path)):
        resolve_health_settings({})


def test_settings_file_and_environment_feed_the_health_settings(tmp_path, monkeypatch):
    from karen_ops.health.settings import resolve_health_settings

    path = tmp_path / "ops.yaml"
    path.write_text("health:\n  tls_hosts: [karen.example.org:443]\n  frontend_url: http://f\n")
    monkeypatch.setenv("KAREN_OPS_CONFIG", str(path))
    monkeypatch.setenv("KAREN_FRONTEND_URL", "http://from-env")

    resolved = resolve_health_settings({"probe_timeout_seconds": 3.0})
    assert resolved.tls_hosts == ["karen.example.org:443"]
    assert resolved.frontend_url == "http://from-env"
    assert resolved.probe_timeout_seconds == 3.0
