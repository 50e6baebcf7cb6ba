"""The platform components the health checks attach to, and the daily health report."""

import time

import dagster as dg

from karen_ops.health.checks import ALL_CHECKS
from karen_ops.health.report import load_evaluations, uptime_markdown

GROUP = "health"
OWNERS = ["team:platform-ops"]

# Components are observed, never materialized: they are the running platform itself.
COMPONENTS = [
    dg.AssetSpec(
        "karen_backend",
        group_name=GROUP,
        owners=OWNERS,
        description="The AI Karen backend API, probed at its health endpoint.",
    ),
    dg.AssetSpec(
        "karen_frontend",
        group_name=GROUP,
        owners=OWNERS,
        description="The AI Karen web frontend.",
    ),
    dg.AssetSpec(
        "karen_postgres",
        group_name=GROUP,
        owners=OWNERS,
        kinds={"postgres"},
        description="The AI Karen PostgreSQL databases (each of a fleet named in the settings "
        "file, else the one at KAREN_DATABASE_URL): queries, and per server connections and long "
        "statements.",
    ),
    dg.AssetSpec(
        "karen_redis",
        group_name=GROUP,
        owners=OWNERS,
        kinds={"redis"},
        description="The AI Karen Redis cache: PING, memory against maxmemory, evictions.",
    ),
    dg.AssetSpec(
        "karen_host",
        group_name=GROUP,
        owners=OWNERS,
        description="The machine running the platform: disk and memory use.",
    ),
    dg.AssetSpec(
        "tls_certificates",
        group_name=GROUP,
        owners=OWNERS,
        description="The TLS certificates served by the platform's public endpoints.",
    ),
]

_DAY_SECONDS = 24 * 3600


def build_health_report(timezone: str) -> dg.AssetsDefinition:
    @dg.asset(
        name="health_report",
        group_name=GROUP,
        owners=OWNERS,
        kinds={"markdown"},
        description="Per component, the share of health check runs (five-minute and hourly) "
        "in which all its checks passed in the 24 hours before the run, and every failure with "
        "its time and severity.",
    )
    def health_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        until = time.time()
        since = until - _DAY_SECONDS
        evaluations = load_evaluations(context.instance, ALL_CHECKS, since)
        components = [spec.key.to_user_string() for spec in COMPONENTS]
        markdown, uptime = uptime_markdown(evaluations, components, since, until, timezone)
        context.log.info(
            "health report evaluations=%d failures=%d",
            len(evaluations),
            sum(1 for e in evaluations if not e.passed),
        )
        metadata: dict[str, object] = {
            "report": dg.MetadataValue.md(markdown),
            "evaluations": len(evaluations),
            "failures": sum(1 for e in evaluations if not e.passed),
        }
        for component, share in uptime.items():
            if share is not None:
                metadata[f"{component} uptime_percent"] = round(share * 100, 2)
        return dg.MaterializeResult(metadata=metadata)

    return health_report
