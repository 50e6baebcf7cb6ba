"""The five-minute health check against real local servers that behave well and badly."""

from __future__ import annotations

import time

import dagster as dg
import pytest

from karen_ops.health.cache import probe_evictions, probe_memory
from karen_ops.health.definitions import build_definitions
from karen_ops.health.probes import Verdict
from karen_ops.health.resource import HealthSettingsResource
from karen_ops.health.web import probe_http
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.redis import RedisResource
from karen_ops.settings import ScheduleSettings
from karen_ops_tests.health_fixtures import (
    REDIS_PASSWORD,
    http_server,
    redis_with_password,
    redis_with_tls,
)

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory):
    with redis_with_password(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    with redis_with_tls(tmp_path_factory.mktemp("tls-redis")) as server:
        yield server


def _run_health_check(server, backend, frontend, redis_url=None, instance=None):
    """Run the ``health_check`` job exactly as the code location defines it."""
    domain = build_definitions(ScheduleSettings())
    defs = dg.Definitions(
        assets=domain.assets,
        asset_checks=domain.asset_checks,
        jobs=domain.jobs,
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
    wrong = password_redis.replace(REDIS_PASSWORD, "wrong-pass")
    with http_server("healthy") as web:
        good, _ = _run_health_check(service_server, web, web, redis_url=password_redis)
        bad, _ = _run_health_check(service_server, web, web, redis_url=wrong)

    assert _evaluations(good)[("karen_redis", "answers_ping")].passed
    failed = _evaluations(bad)[("karen_redis", "answers_ping")]
    assert not failed.passed
    assert failed.description.startswith("Redis at redis://127.0.0.1:")
    assert failed.description.endswith("; set the right password in KAREN_REDIS_URL")
    logged = " ".join(str(e) for e in bad.all_events)
    assert "wrong-pass" not in logged and "wrong-pass" not in failed.description


def test_redis_over_tls_with_password_and_its_ca_answers_ping(service_server, tls_redis):
    url = f"{tls_redis.url}?ssl_ca_certs={tls_redis.ca}"
    with http_server("healthy") as web:
        result, _ = _run_health_check(service_server, web, web, redis_url=url)

    check = _evaluations(result)[("karen_redis", "answers_ping")]
    assert check.passed, check.description
    assert check.description.startswith("Redis answered PING in ")
    assert check.metadata["server"].value == f"rediss://127.0.0.1:{_port(tls_redis.url)}/0"


def test_redis_over_tls_with_a_wrong_password_fails_without_showing_it(service_server, tls_redis):
    url = f"{tls_redis.url}?ssl_ca_certs={tls_redis.ca}".replace(REDIS_PASSWORD, "wrong-pass")
    with http_server("healthy") as web:
        result, _ = _run_health_check(service_server, web, web, redis_url=url)

    check = _evaluations(result)[("karen_redis", "answers_ping")]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description == (
        f"Redis at rediss://127.0.0.1:{_port(tls_redis.url)}/0 did not answer PING: it "
        "refused the password (invalid username-password pair or user is disabled.); "
        "set the right password in KAREN_REDIS_URL"
    )
    _assert_secret_nowhere(result, check, ["wrong-pass", REDIS_PASSWORD])


def test_redis_certificate_from_an_untrusted_ca_fails_naming_the_ca_setting(
    service_server, tls_redis
):
    url = f"{tls_redis.url}?ssl_ca_certs={tls_redis.other_ca}"
    with http_server("healthy") as web:
        result, _ = _run_health_check(service_server, web, web, redis_url=url)

    check = _evaluations(result)[("karen_redis", "answers_ping")]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    prefix = (
        f"Redis at rediss://127.0.0.1:{_port(tls_redis.url)}/0 did not answer PING: "
        "its TLS certificate is not trusted ("
    )
    assert check.description.startswith(prefix), check.description
    assert "CERTIFICATE_VERIFY_FAILED" in check.description
    assert check.description.endswith(
        "); name the CA file that signed it as ?ssl_ca_certs=/path/ca.pem in KAREN_REDIS_URL"
    )
    _assert_secret_nowhere(result, check, [REDIS_PASSWORD])


def _port(url):
    return url.rsplit(":", 1)[1].split("/")[0]


def _assert_secret_nowhere(result, check, secrets):
    logged = " ".join(str(e) for e in result.all_events)
    shown = " ".join(f"{k}={v.value}" for k, v in check.metadata.items())
    for secret in secrets:
        assert secret not in logged
        assert secret not in check.description
        assert secret not in shown


def test_hourly_redis_probes_read_info_over_tls_and_explain_an_untrusted_certificate(tls_redis):
    trusted = RedisResource(url=f"{tls_redis.url}?ssl_ca_certs={tls_redis.ca}")
    untrusted = RedisResource(url=f"{tls_redis.url}?ssl_ca_certs={tls_redis.other_ca}")

    memory = probe_memory(trusted, TIMEOUT, 0.9)
    assert memory.verdict is Verdict.HEALTHY, memory.detail
    assert memory.metadata["maxmemory_bytes"] == 64 * 1024 * 1024
    with pytest.raises(ConnectionError) as raised:
        probe_evictions(untrusted, TIMEOUT, None)
    message = str(raised.value)
    assert message.startswith(
        f"could not read INFO stats from Redis at rediss://127.0.0.1:{_port(tls_redis.url)}/0: "
        "its TLS certificate is not trusted ("
    )
    assert REDIS_PASSWORD not in message
