"""The five-minute health check against real local servers that behave well and badly."""

from __future__ import annotations

import time

import dagster as dg
import pytest

from karen_ops.health.checks import health_probes
from karen_ops.health.probes import Verdict
from karen_ops.health.resource import HealthSettingsResource
from karen_ops.health.web import probe_http
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.redis import RedisResource
from karen_ops_tests.health_fixtures import http_server, redis_with_password

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory):
    with redis_with_password(tmp_path_factory.mktemp("redis")) as url:
        yield url


def _run_health_check(server, backend, frontend, redis_url=None, instance=None):
    job = dg.define_asset_job(
        "health_check",
        selection=dg.AssetSelection.checks(health_probes),
        executor_def=dg.in_process_executor,
    )
    names = ["karen_backend", "karen_frontend", "karen_postgres", "karen_redis", "karen_host"]
    defs = dg.Definitions(
        assets=[dg.AssetSpec(name) for name in names],
        asset_checks=[health_probes],
        jobs=[job],
        resources={
            "health_settings": HealthSettingsResource(
                backend_url=backend,
                frontend_url=frontend,
                probe_timeout_seconds=TIMEOUT,
                # The machine's real use is not under test here; thresholds of 100% pass.
                disk_percent=100.0,
                memory_percent=100.0,
            ),
            "postgres": PostgresResource(database_url=server.url("postgres")),
            "redis": RedisResource(url=redis_url),
        },
    )
    resolved = defs.resolve_job_def("health_check")
    instance = instance or dg.DagsterInstance.ephemeral()
    started = time.monotonic()
    result = resolved.execute_in_process(instance=instance, raise_on_error=False)
    return result, time.monotonic() - started


def _evaluations(result):
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def test_failing_backend_and_hanging_frontend_fail_within_the_timeout_others_pass(
    service_server,
):
    with http_server("failing") as backend, http_server("hang") as frontend:
        result, seconds = _run_health_check(service_server, f"{backend}/api/health", frontend)

    checks = _evaluations(result)
    assert result.success
    assert seconds < TIMEOUT + 1.0, seconds
    backend_check = checks[("karen_backend", "api_responds_healthy")]
    assert not backend_check.passed
    assert backend_check.severity == dg.AssetCheckSeverity.ERROR
    assert backend_check.description == f"{backend}/api/health answered HTTP 500"
    assert backend_check.metadata["status_code"].value == 500
    frontend_check = checks[("karen_frontend", "frontend_responds")]
    assert not frontend_check.passed
    # Whichever fires first, the request's own timeout or the run's deadline, says the same.
    assert frontend_check.metadata["verdict"].value == "timed out"
    assert frontend_check.description.endswith("gave no answer within 2 seconds")
    for key in [
        ("karen_postgres", "accepts_queries"),
        ("karen_redis", "answers_ping"),
        ("karen_host", "disk_below_threshold"),
        ("karen_host", "memory_below_threshold"),
    ]:
        assert checks[key].passed, checks[key].description
    assert checks[("karen_postgres", "accepts_queries")].metadata["latency_ms"].value < 2000


def test_healthy_backend_and_frontend_pass_with_status_and_latency(service_server):
    with http_server("healthy") as backend, http_server("healthy") as frontend:
        result, _ = _run_health_check(service_server, f"{backend}/api/health", frontend)

    checks = _evaluations(result)
    assert all(c.passed for c in checks.values()), [c.description for c in checks.values()]
    assert (
        checks[("karen_backend", "api_responds_healthy")].metadata["reported_status"].value
        == "healthy"
    )


def test_redirect_to_a_login_page_is_not_a_healthy_api():
    with http_server("redirect") as backend:
        probe = probe_http(f"{backend}/api/health", TIMEOUT, setting="KAREN_BACKEND_URL")

    assert probe.verdict is Verdict.FAILED
    assert probe.metadata["status_code"] == 302
    assert probe.detail == (
        f"{backend}/api/health answered 302, a redirect to /login; a redirect is not a "
        "healthy answer (point KAREN_BACKEND_URL at the final URL)"
    )


def test_backend_that_answers_200_but_reports_unhealthy_fails():
    with http_server("unwell") as backend:
        probe = probe_http(f"{backend}/api/health", TIMEOUT, setting="KAREN_BACKEND_URL")

    assert probe.verdict is Verdict.FAILED
    assert probe.detail == f"{backend}/api/health answered 200 but reports 'unhealthy'"


def test_nothing_listening_fails_with_the_setting_to_fix():
    probe = probe_http("http://127.0.0.1:9/api/health", TIMEOUT, setting="KAREN_BACKEND_URL")

    assert probe.verdict is Verdict.FAILED
    assert probe.detail.endswith("check KAREN_BACKEND_URL")


def test_redis_with_password_answers_ping_and_a_wrong_password_fails_without_showing_it(
    service_server, password_redis
):
    wrong = password_redis.replace("s3cret-pass", "wrong-pass")
    with http_server("healthy") as web:
        good, _ = _run_health_check(service_server, web, web, redis_url=password_redis)
        bad, _ = _run_health_check(service_server, web, web, redis_url=wrong)

    assert _evaluations(good)[("karen_redis", "answers_ping")].passed
    failed = _evaluations(bad)[("karen_redis", "answers_ping")]
    assert not failed.passed
    assert failed.description.startswith("Redis at redis://127.0.0.1:")
    assert "check KAREN_REDIS_URL" in failed.description
    logged = " ".join(str(e) for e in bad.all_events)
    assert "wrong-pass" not in logged and "wrong-pass" not in failed.description
