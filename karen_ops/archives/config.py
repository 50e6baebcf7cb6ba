"""Which files each archive takes, read from the ``archives`` section of the settings file.

The defaults mirror the AI Karen procedures: the application lives in ``/opt/ai-karen`` with
its ``.env``, nginx serves the ``ai-karen`` site, systemd runs ``ai-karen*.service`` units, the
certificate is ``/etc/ssl/certs/ai-karen.crt`` and logs are written to ``/var/log/ai-karen``.
The section is read when a run starts, so an edited file takes effect on the next run.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, fields

from karen_ops import settings
from karen_ops.errors import ConfigurationError

SECTION = "archives"

DEFAULT_CONFIG_PATHS = (
    "/opt/ai-karen/.env",
    "/etc/nginx/sites-available/ai-karen",
    "/etc/systemd/system/ai-karen*.service",
    "/etc/ssl/certs/ai-karen.crt",
)
# Besides these, every file named .env or .env.<something> counts as holding secrets.
DEFAULT_SECRET_FILES = ("*.key",)
DEFAULT_APPLICATION_PATHS = ("/opt/ai-karen",)
DEFAULT_APPLICATION_EXCLUDES = (
    # Virtual environments and dependencies are rebuilt from the lock files, not restored.
    ".venv",
    "venv",
    "node_modules",
    # Caches and bytecode are regenerated on start.
    "__pycache__",
    "*.pyc",
    ".cache",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".next/cache",
    # Version control data lives in the repository it was cloned from.
    ".git",
    ".hg",
    ".svn",
    # The .env is taken by config_backup, where secrets_are_encrypted watches it.
    ".env",
)
DEFAULT_LOG_PATHS = ("/var/log/ai-karen",)
# What logrotate leaves behind: app.log.1, app.log.2.gz, error.log-20261204.gz.
DEFAULT_LOG_PATTERNS = ("*.log.[0-9]*", "*.log-[0-9]*", "*.gz")

# zstd's default level: smaller than gzip -6 at several times its speed.
DEFAULT_COMPRESSION_LEVEL = 3

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class ArchiveSettings:
    """What the three file archives take from this host, and under which name."""

    # The host label in store keys and manifests; the machine's hostname when unset.
    host: str | None = None
    config_paths: tuple[str, ...] = DEFAULT_CONFIG_PATHS
    secret_files: tuple[str, ...] = DEFAULT_SECRET_FILES
    application_paths: tuple[str, ...] = DEFAULT_APPLICATION_PATHS
    application_excludes: tuple[str, ...] = DEFAULT_APPLICATION_EXCLUDES
    log_paths: tuple[str, ...] = DEFAULT_LOG_PATHS
    log_patterns: tuple[str, ...] = DEFAULT_LOG_PATTERNS
    compression_level: int = DEFAULT_COMPRESSION_LEVEL

    @property
    def name(self) -> str:
        """The host label, checked to be usable as one folder name in the store."""
        label = self.host or socket.gethostname()
        if not _LABEL.fullmatch(label) or ".." in label:
            raise ConfigurationError(
                f"host label {label!r} cannot name a folder in the backup store; set "
                f"{SECTION}.host in the {settings.OPS_CONFIG} file to letters, digits, '.', "
                "'_' or '-'"
            )
        return label


def load_archive_settings() -> ArchiveSettings:
    """The ``archives`` section of the ``KAREN_OPS_CONFIG`` file, over the defaults."""
    section = settings.config_section(SECTION, known=[f.name for f in fields(ArchiveSettings)])

    values: dict[str, object] = {}
    for name, value in section.items():
        if name == "host":
            values[name] = _string(name, value) if value is not None else None
        elif name == "compression_level":
            values[name] = _level(value)
        else:
            values[name] = _string_list(name, value)
    return ArchiveSettings(**values)


def _string(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"{SECTION}.{name} must be a non-empty string")
    return value.strip()


def _string_list(name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(f"{SECTION}.{name} must be a list of strings")
    return tuple(item.strip() for item in value if item.strip())


def _level(value: object) -> int:
    # zstd accepts levels 1 to 22; above 19 it needs far more memory on both sides.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 19:
        raise _invalid(f"{SECTION}.compression_level must be a whole number from 1 to 19")
    return value


def _invalid(problem: str) -> ConfigurationError:
    return ConfigurationError(
        f"settings file {settings.env(settings.OPS_CONFIG)} is invalid: {problem}; "
        f"fix it or unset {settings.OPS_CONFIG}"
    )
