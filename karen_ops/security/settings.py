"""Log paths, critical files and thresholds of the security domain, resolved at run time.

A field set on the ``security_settings`` resource wins, then the ``security`` section of the
YAML file named by ``KAREN_OPS_CONFIG``, then the defaults below::

    security:
      access_log: /var/log/nginx/access.log
      critical_files: [/etc/nginx/nginx.conf, /opt/ai-karen/.env]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import dagster as dg
from pydantic import Field

from karen_ops import settings

SECTION = "security"


@dataclass(frozen=True)
class SecuritySettings:
    security_log: str = "/var/log/ai-karen/security.log"
    error_log: str = "/var/log/ai-karen/error.log"
    access_log: str = "/var/log/nginx/access.log"
    critical_files: list[str] = field(
        default_factory=lambda: [
            "/etc/nginx/nginx.conf",
            "/etc/passwd",
            "/etc/ssh/sshd_config",
            "/etc/sudoers",
        ]
    )
    failed_login_limit: int = 10
    failed_login_window_minutes: int = 5
    write_request_limit: int = 100
    application_python: str = "/opt/ai-karen/venv/bin/python"
    # Empty: pip asks the index the application's environment is configured for.
    python_index_args: list[str] = field(default_factory=list)
    host_updates_command: list[str] = field(
        default_factory=lambda: ["apt-get", "--simulate", "--quiet", "upgrade"]
    )


class SecuritySettingsResource(dg.ConfigurableResource):
    """Overrides of the security settings; unset fields fall back to the settings file."""

    security_log: str | None = Field(default=None, description="JSON-lines security log.")
    error_log: str | None = Field(default=None, description="JSON-lines error log.")
    access_log: str | None = Field(default=None, description="nginx access log (combined).")
    critical_files: list[str] | None = Field(
        default=None, description="Files whose SHA-256 is compared with the baseline."
    )
    failed_login_limit: int | None = Field(
        default=None,
        description="Failed logins of one client in one window above which "
        "an event is raised (10).",
    )
    failed_login_window_minutes: int | None = Field(
        default=None, description="Length of the sliding window for failed logins (5)."
    )
    write_request_limit: int | None = Field(
        default=None,
        description="POST/PUT/DELETE/PATCH of one client per day above which "
        "an event is raised (100).",
    )
    application_python: str | None = Field(
        default=None,
        description="Python of the application's environment, for pending_updates.",
    )
    python_index_args: list[str] | None = Field(
        default=None,
        description="pip options saying where newer versions are looked up, e.g. "
        "['--index-url', 'https://pypi.internal/simple'] or ['--no-index', '--find-links', "
        "'/srv/wheels'] (default: none, the environment's own pip configuration). They are "
        "visible in the process list: keep index credentials in that pip configuration.",
    )
    host_updates_command: list[str] | None = Field(
        default=None,
        description="Argument list printing the host's pending upgrades as apt-get does "
        "(default ['apt-get', '--simulate', '--quiet', 'upgrade']); it must not install.",
    )

    def resolve(self) -> SecuritySettings:
        merged = dict(_file_section())
        merged.update(
            {n: getattr(self, n) for n in type(self).model_fields if getattr(self, n) is not None}
        )
        return SecuritySettings(**merged)


def _file_section() -> dict[str, object]:
    known = [f.name for f in dataclasses.fields(SecuritySettings)]
    return settings.config_section(SECTION, known=known)
