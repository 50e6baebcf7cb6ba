"""The health asset checks: every five minutes the probes, every hour the detail.

Each group of checks is one Dagster step whose probes run side by side under one deadline,
so one hanging component delays no other and the step ends soon after the timeout. Every
PostgreSQL database (each of a fleet) is probed on its own under that deadline; the answers
are then judged together into one result per check.
"""

from collections.abc import Callable, Iterator
from functools import partial

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,
)

from karen_ops import settings
from karen_ops.health import cache, database, host, web
from karen_ops.health.fleet import (
    database_targets,
    judge_connections,
    judge_long_queries,
    judge_queries,
)
from karen_ops.health.probes import Probe, Verdict, run_concurrently
from karen_ops.health.resource import HealthSettingsResource
from karen_ops.health.settings import BACKEND_URL, FRONTEND_URL
from karen_ops.health.tls import fetch_expiry, judge_expiry, now_utc
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.redis import RedisResource

# (asset, check) -> what the check asserts; the probe behind each is chosen below.
FIVE_MINUTE_CHECKS = {
    ("karen_backend", "api_responds_healthy"): "The backend health endpoint answers 2xx, "
    "without a redirect, and does not report itself unhealthy.",
    ("karen_frontend", "frontend_responds"): "The web frontend answers 2xx without a redirect.",
    ("karen_postgres", "accepts_queries"): "Every fleet database (without a fleet, the one at "
    "KAREN_DATABASE_URL) accepts a connection and answers SELECT 1 (latency in metadata); a "
    "failure names each database that does not.",
    ("karen_redis", "answers_ping"): "Redis answers PING (latency in metadata).",
    ("karen_host", "disk_below_threshold"): "Every watched mount point is under the disk limit.",
    ("karen_host", "memory_below_threshold"): "Memory use is under the limit.",
}

# Earlier evaluations searched for the last eviction count (a day of hourly checks).
_EARLIER_EVALUATIONS = 24

HOURLY_CHECKS = {
    ("karen_postgres", "connections_below_limit"): "On each PostgreSQL server of the fleet, "
    "counted once however many of its databases are probed, client connections are under the "
    "share of max_connections that warns (WARN).",
    ("karen_postgres", "no_long_running_queries"): "No statement on any of the fleet's servers "
    "has run longer than the threshold (WARN).",
    ("karen_redis", "memory_below_limit"): "Redis uses less than its share of maxmemory (WARN).",
    ("karen_redis", "no_evictions"): "Redis evicted no keys since the last check (WARN).",
    ("tls_certificates", "certificates_not_expiring"): "Every configured certificate has 30+ "
    "days left (WARN under 30, ERROR under 7 or when it cannot be read).",
}

# Every health check, whichever job runs it: what the daily report reads.
ALL_CHECKS = {**FIVE_MINUTE_CHECKS, **HOURLY_CHECKS}


def _specs(checks: dict[tuple[str, str], str]) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(n, asset=a, description=d) for (a, n), d in checks.items()]


@dg.multi_asset_check(
    specs=_specs(FIVE_MINUTE_CHECKS),
    name="health_probes",
    description="Probes the backend, frontend, PostgreSQL, Redis and the host side by side.",
)
def health_probes(
    context: dg.AssetCheckExecutionContext,
    health_settings: HealthSettingsResource,
    postgres: PostgresResource,
    redis: RedisResource,
) -> Iterator[dg.AssetCheckResult]:
    s = health_settings.resolve()
    timeout = s.probe_timeout_seconds
    probes: dict[tuple[str, str], Callable[[], Probe]] = {
        ("karen_backend", "api_responds_healthy"): partial(
            web.probe_http, s.backend_url, timeout, setting=BACKEND_URL
        ),
        ("karen_frontend", "frontend_responds"): partial(
            web.probe_http, s.frontend_url, timeout, setting=FRONTEND_URL
        ),
        ("karen_redis", "answers_ping"): partial(cache.probe_ping, redis, timeout),
        ("karen_host", "disk_below_threshold"): partial(
            host.probe_disk, s.disk_paths, s.disk_percent
        ),
        ("karen_host", "memory_below_threshold"): partial(host.probe_memory, s.memory_percent),
    }
    for target in database_targets(postgres, settings.load_fleet()):
        probes[(_DATABASE, target.name)] = partial(database.probe_query, target, timeout)

    results = run_concurrently(probes, timeout, _label)
    answers = _take(results, _DATABASE)
    results[("karen_postgres", "accepts_queries")] = judge_queries(answers)
    for key, probe in results.items():
        yield _result(context, key, probe)


@dg.multi_asset_check(
    specs=_specs(HOURLY_CHECKS),
    name="health_details",
    description="Connections and long queries in PostgreSQL, Redis memory and evictions, and "
    "days left on every configured TLS certificate.",
)
def health_details(
    context: dg.AssetCheckExecutionContext,
    health_settings: HealthSettingsResource,
    postgres: PostgresResource,
    redis: RedisResource,
) -> Iterator[dg.AssetCheckResult]:
    s = health_settings.resolve()
    timeout = s.probe_timeout_seconds
    previous_evictions = _last_metadata_int(
        context, ("karen_redis", "no_evictions"), "evicted_keys"
    )
    probes: dict[tuple[str, str], Callable[[], Probe]] = {
        ("karen_redis", "memory_below_limit"): partial(
            cache.probe_memory, redis, timeout, s.redis_memory_ratio
        ),
        ("karen_redis", "no_evictions"): partial(
            cache.probe_evictions, redis, timeout, previous_evictions
        ),
    }
    for target in database_targets(postgres, settings.load_fleet()):
        probes[(_DATABASE, target.name)] = partial(
            database.probe_activity, target, timeout, s.long_query_seconds
        )
    for host_port in s.tls_hosts:
        probes[(_TLS, host_port)] = partial(_certificate, host_port, timeout)

    results = run_concurrently(probes, timeout, _label)
    activity = _take(results, _DATABASE)
    results[("karen_postgres", "connections_below_limit")] = judge_connections(
        activity, s.connections_ratio
    )
    results[("karen_postgres", "no_long_running_queries")] = judge_long_queries(
        activity, s.long_query_seconds
    )
    expiries = {
        host_port: probe.metadata["expires"] if probe.passed else probe.detail
        for host_port, probe in _take(results, _TLS).items()
    }
    results[("tls_certificates", "certificates_not_expiring")] = judge_expiry(
        expiries, now_utc(), s.tls_warn_days, s.tls_error_days
    )
    for key, probe in results.items():
        yield _result(context, key, probe)


# Probes whose answers are judged together into one check: one per database, one per
# certificate. Their keys start with these words instead of an asset's name.
_DATABASE = "database"
_TLS = "tls"


def _label(key: tuple[str, str]) -> str:
    # A database or certificate probe is named by its target, every other by its component.
    if key[0] == _DATABASE:
        return f"database {key[1]}"
    return key[1] if key[0] == _TLS else key[0]


def _take(results: dict[tuple[str, str], Probe], kind: str) -> dict[str, Probe]:
    """Remove the probes of one kind from ``results``; return them by target."""
    keys = [key for key in results if key[0] == kind]
    return {key[1]: results.pop(key) for key in keys}


def _certificate(host_port: str, timeout: float) -> Probe:
    expiry = fetch_expiry(host_port, timeout)
    return Probe(Verdict.HEALTHY, f"{host_port} expires {expiry}", {"expires": expiry})


def _result(
    context: dg.AssetCheckExecutionContext, key: tuple[str, str], probe: Probe
) -> dg.AssetCheckResult:
    asset, check = key
    if not probe.passed:
        context.log.warning(
            "check failing asset=%s check=%s verdict=%s: %s",
            asset,
            check,
            probe.verdict.value,
            probe.detail,
        )
    severity = (
        dg.AssetCheckSeverity.WARN
        if probe.verdict is Verdict.WARNING
        else dg.AssetCheckSeverity.ERROR
    )
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=check,
        passed=probe.passed,
        severity=severity,
        description=probe.detail,
        metadata={"verdict": probe.verdict.value, **probe.metadata},
    )


def _last_metadata_int(
    context: dg.AssetCheckExecutionContext, key: tuple[str, str], name: str
) -> int | None:
    """A number from the newest finished evaluation of a check that recorded it, or None.

    The newest record is this run's own planned evaluation, so only finished ones are read;
    a few are looked at because an evaluation whose probe failed carries no number.
    """
    check_key = dg.AssetCheckKey(dg.AssetKey(key[0]), key[1])
    records = context.instance.event_log_storage.get_asset_check_execution_history(
        check_key,
        limit=_EARLIER_EVALUATIONS,
        status={
            AssetCheckExecutionRecordStatus.SUCCEEDED,
            AssetCheckExecutionRecordStatus.FAILED,
        },
    )
    for record in records:
        evaluation = record.event.dagster_event.event_specific_data if record.event else None
        value = getattr(evaluation, "metadata", {}).get(name)
        if value is not None and isinstance(value.value, int):
            return value.value
    return None
