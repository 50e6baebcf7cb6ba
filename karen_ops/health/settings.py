"""What the health checks probe and when they complain, resolved when a run starts.

Each setting comes from the ``health_settings`` resource when set there (the launchpad), else
from an environment variable where one is named, else from the ``health`` section of the
YAML file named by ``KAREN_OPS_CONFIG``, else from the default below::

    health:
      backend_url: https://karen.example.org/api/health
      probe_timeout_seconds: 5
      disk_paths: [/, /var/lib/postgresql]
      tls_hosts: [karen.example.org:443]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from karen_ops import settings

BACKEND_URL = "KAREN_BACKEND_URL"
FRONTEND_URL = "KAREN_FRONTEND_URL"
SECTION = "health"


@dataclass(frozen=True)
class HealthSettings:
    """Targets and thresholds of every health check."""

    backend_url: str = "http://localhost:8000/api/health"
    frontend_url: str = "http://localhost:3000"
    # Long enough for a loaded backend to answer, short enough that a five-minute schedule
    # never piles runs up behind a hanging component.
    probe_timeout_seconds: float = 5.0
    disk_paths: list[str] = field(default_factory=lambda: ["/"])
    disk_percent: float = 85.0
    memory_percent: float = 90.0
    connections_ratio: float = 0.8
    long_query_seconds: float = 300.0
    redis_memory_ratio: float = 0.9
    tls_hosts: list[str] = field(default_factory=list)
    tls_warn_days: int = 30
    tls_error_days: int = 7


# Settings that an environment variable may also give, checked before the settings file.
_ENVIRONMENT = {"backend_url": BACKEND_URL, "frontend_url": FRONTEND_URL}


def resolve_health_settings(overrides: dict[str, object]) -> HealthSettings:
    """Merge, highest first: ``overrides`` (non-None), environment, settings file, defaults."""
    merged: dict[str, object] = dict(_file_section())
    for name, variable in _ENVIRONMENT.items():
        value = settings.env(variable)
        if value is not None:
            merged[name] = value
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return HealthSettings(**merged)


def _file_section() -> dict[str, object]:
    known = [f.name for f in dataclasses.fields(HealthSettings)]
    return settings.config_section(SECTION, known=known)
