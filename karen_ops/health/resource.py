"""The health_settings resource: per-deployment overrides of the health settings."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from karen_ops.health.settings import HealthSettings, resolve_health_settings


class HealthSettingsResource(dg.ConfigurableResource):
    """Overrides for the health checks; every field left unset falls back at run time to
    its environment variable, then the ``health`` section of $KAREN_OPS_CONFIG, then the
    built-in default."""

    backend_url: str | None = Field(
        default=None,
        description="Backend health endpoint (default: $KAREN_BACKEND_URL, else "
        "http://localhost:8000/api/health). Only a 2xx answer is healthy; redirects fail.",
    )
    frontend_url: str | None = Field(
        default=None,
        description="Frontend URL (default: $KAREN_FRONTEND_URL, else http://localhost:3000).",
    )
    probe_timeout_seconds: float | None = Field(
        default=None, description="Longest any probe may take (default 5)."
    )
    disk_paths: list[str] | None = Field(
        default=None, description="Mount points whose use is checked (default ['/'])."
    )
    disk_percent: float | None = Field(default=None, description="Disk use that fails (85).")
    memory_percent: float | None = Field(default=None, description="Memory use that fails (90).")
    connections_ratio: float | None = Field(
        default=None, description="Share of max_connections in use that warns (0.8)."
    )
    long_query_seconds: float | None = Field(
        default=None, description="Queries running longer than this warn (300)."
    )
    redis_memory_ratio: float | None = Field(
        default=None, description="Share of Redis maxmemory in use that warns (0.9)."
    )
    tls_hosts: list[str] | None = Field(
        default=None, description="host:port of every certificate whose expiry is checked."
    )
    tls_warn_days: int | None = Field(
        default=None, description="WARN when a certificate expires in fewer days (30)."
    )
    tls_error_days: int | None = Field(
        default=None, description="ERROR when a certificate expires in fewer days (7)."
    )

    def resolve(self) -> HealthSettings:
        fields = type(self).model_fields
        return resolve_health_settings({name: getattr(self, name) for name in fields})
