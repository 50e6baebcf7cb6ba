"""Where settings come from, and the defaults that serve the embedded demo.

Connection settings are read when a run starts, never when the code location is imported, so
one loaded code location serves any environment. The only exception is the structure of the
definitions themselves (schedule timezone and times), which Dagster needs when it loads the
code location; those come from the YAML file named by ``KAREN_OPS_CONFIG``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from karen_ops.errors import ConfigurationError

DATABASE_URL = "KAREN_DATABASE_URL"
VERIFY_DATABASE_URL = "KAREN_VERIFY_DATABASE_URL"
BACKUP_URL = "KAREN_BACKUP_URL"
S3_ENDPOINT_URL = "KAREN_S3_ENDPOINT_URL"
PG_BIN_DIR = "KAREN_PG_BIN_DIR"
REDIS_URL = "KAREN_REDIS_URL"
DAGSTER_UI_URL = "KAREN_DAGSTER_UI_URL"
OPS_CONFIG = "KAREN_OPS_CONFIG"
OPS_HOME = "KAREN_OPS_HOME"

# The run tag that serialises every run touching one database (see dagster.yaml).
DATABASE_TAG = "karen-ops/database"
PRIMARY_DATABASE = "primary"


def env(name: str) -> str | None:
    """The value of a karen-ops environment variable, or None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def ops_home() -> Path:
    """The folder holding the embedded demo's server, backups and Dagster instance."""
    configured = env(OPS_HOME)
    return Path(configured).expanduser().resolve() if configured else Path.cwd() / ".karen-ops"


def default_backup_url() -> str:
    """Backups of the embedded demo go to a folder beside its server."""
    return (ops_home() / "backups").as_uri()


@dataclass(frozen=True)
class ScheduleSettings:
    """When the scheduled jobs run."""

    timezone: str = "UTC"
    # The first backup partition. Older days cannot be backed up after the fact, so the UI
    # should not offer them: set this to the day karen-ops started backing up.
    backups_start_date: str = "2026-11-01"
    nightly_backup_cron: str = "0 2 * * *"
    weekly_maintenance_cron: str = "0 3 * * 0"
    # The configuration archive, before the 02:00 database backup.
    config_backup_cron: str = "30 1 * * *"
    # The application and log archives, for the week that ended on Sunday.
    file_archives_cron: str = "0 4 * * 1"
    # Physical base backups, before the logical one; point-in-time drills on Saturdays.
    base_backup_cron: str = "0 1 * * *"
    pitr_drill_cron: str = "0 5 * * 6"


def load_schedule_settings() -> ScheduleSettings:
    """Schedule settings from the ``schedules`` section of the ``KAREN_OPS_CONFIG`` file."""
    section = config_section("schedules", known=ScheduleSettings.__dataclass_fields__)
    schedules = ScheduleSettings(**section)
    try:
        ZoneInfo(schedules.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"unknown timezone {schedules.timezone!r} in {env(OPS_CONFIG)}; use an IANA name "
            "such as Europe/Berlin or UTC"
        ) from exc
    return schedules


@dataclass(frozen=True)
class FleetDatabase:
    """One database of a fleet: its name in karen-ops, and where its URLs come from."""

    name: str
    url_env: str
    verify_url_env: str | None = None


_DATABASE_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


def load_fleet() -> tuple[FleetDatabase, ...]:
    """The databases named in the ``databases`` section of the settings file; () when none.

    Names shape the definitions (they become a partition dimension), so they are read when the
    code location loads; URLs, which may hold passwords, stay in the environment variables the
    entries name and are read when a run starts.
    """
    section = config_section("databases")
    fleet = []
    for name, entry in section.items():
        if not _DATABASE_NAME.fullmatch(str(name)) or not isinstance(entry, dict):
            raise ConfigurationError(
                f"database {name!r} in {env(OPS_CONFIG)}: names are lowercase letters, digits "
                "and underscores, each mapping to {url_env: VARIABLE}"
            )
        if "url_env" not in entry:
            raise ConfigurationError(
                f"database {name} in {env(OPS_CONFIG)} has no url_env: name the environment "
                "variable that holds its libpq URL"
            )
        fleet.append(FleetDatabase(str(name), entry["url_env"], entry.get("verify_url_env")))
    return tuple(fleet)


def config_section(name: str, *, known: Iterable[str] | None = None) -> dict:
    """One top-level section of the ``KAREN_OPS_CONFIG`` file ({} when absent), checked to be a
    mapping whose keys are all ``known`` (when given), so a misspelt setting is an error rather
    than silently ignored."""
    section = _load_config_file().get(name) or {}
    if not isinstance(section, dict):
        raise ConfigurationError(f"the {name} section of {env(OPS_CONFIG)} must be a mapping")
    unknown = sorted(set(section) - set(known)) if known is not None else []
    if unknown:
        raise ConfigurationError(
            f"unknown {name} setting(s) {', '.join(unknown)} in {env(OPS_CONFIG)}; "
            f"known settings are {', '.join(sorted(known))}"
        )
    return section


def _load_config_file() -> dict:
    path = env(OPS_CONFIG)
    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigurationError(
            f"could not read settings file {path}: {exc.strerror}; fix or unset {OPS_CONFIG}"
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"settings file {path} is not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"settings file {path} must hold a mapping at the top level")
    return loaded
