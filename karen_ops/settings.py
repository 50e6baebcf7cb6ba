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

# The run tag that serialises every run touching one database (see dagster.yaml): jobs carry
# it, their schedules' runs, launchpad runs and backfills started from a job's page too.
DATABASE_TAG = "karen-ops/database"
PRIMARY_DATABASE = "primary"
# The run tag Dagster itself puts on every run of a fleet backup partition, however it was
# started, backfills from an asset's page included; dagster.yaml limits it in the same way.
DATABASE_PARTITION_TAG = "dagster/partition/database"


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
# What a fleet entry holds: the names of environment variables, never URLs. A name that is not
# shaped like a variable is most often the URL itself, password included, pasted in its place.
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENTRY_KEYS = ("url_env", "verify_url_env")


def load_fleet() -> tuple[FleetDatabase, ...]:
    """The databases named in the ``databases`` section of the settings file; () when none.

    Names shape the definitions (they become a partition dimension), so they are read when the
    code location loads; URLs, which may hold passwords, stay in the environment variables the
    entries name and are read when a run starts. Errors never quote an entry's values, which
    may be a URL with its password.
    """
    section = config_section("databases")
    return tuple(_fleet_database(name, entry) for name, entry in section.items())


def _fleet_database(name: object, entry: object) -> FleetDatabase:
    where = env(OPS_CONFIG)
    if not isinstance(name, str) or not _DATABASE_NAME.fullmatch(name):
        raise ConfigurationError(
            f"database name {name!r} in {where} is not allowed: names are up to 41 lowercase "
            "letters, digits and underscores, starting with a letter"
        )
    if not isinstance(entry, dict):
        raise ConfigurationError(
            f"database {name} in {where} must be a mapping {{url_env: VARIABLE}} naming the "
            "environment variable that holds its libpq URL, not "
            f"{_kind(entry)}; for example {name}: {{url_env: {_example_variable(name)}}}"
        )
    unknown = [key for key in entry if key not in _ENTRY_KEYS]
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {_key_list(unknown)} for database {name} in {where}; "
            f"known settings are {', '.join(_ENTRY_KEYS)}"
        )
    if "url_env" not in entry:
        raise ConfigurationError(
            f"database {name} in {where} has no url_env: name the environment variable that "
            f"holds its libpq URL, for example {name}: {{url_env: {_example_variable(name)}}}"
        )
    url_env = _variable_name(name, "url_env", entry["url_env"], where)
    verify_url_env = None
    if "verify_url_env" in entry:
        verify_url_env = _variable_name(name, "verify_url_env", entry["verify_url_env"], where)
    return FleetDatabase(name, url_env, verify_url_env)


def _variable_name(database: str, key: str, value: object, where: str | None) -> str:
    """``value`` checked to be an environment variable's name; the error never quotes it."""
    if isinstance(value, str) and _VARIABLE_NAME.fullmatch(value):
        return value
    variable = f"an environment variable (like {_example_variable(database, key)})"
    if isinstance(value, str) and value.strip():
        problem = f"must name {variable}, not hold a URL; put the URL in that variable"
    else:
        problem = f"is {_kind(value)}: it must name {variable} that holds the libpq URL"
    raise ConfigurationError(f"{key} of database {database} in {where} {problem}")


def _key_list(keys: list[object]) -> str:
    """Misspelt keys by name; a key not shaped like a name (a URL written in braces, as in
    ``{postgresql://...}``, is a key) is counted but not quoted, as it may hold a password."""
    named = sorted(k for k in keys if isinstance(k, str) and _VARIABLE_NAME.fullmatch(k))
    unnamed = len(keys) - len(named)
    return ", ".join(named + ([f"{unnamed} key(s) that are not names"] if unnamed else []))


def _example_variable(database: str, key: str = "url_env") -> str:
    return f"KAREN_{database.upper()}_{'VERIFY_URL' if key == 'verify_url_env' else 'URL'}"


def _kind(value: object) -> str:
    """What a setting holds, described without quoting it."""
    if value is None:
        return "empty"
    if isinstance(value, str):
        return "empty" if not value.strip() else "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def application_database(fleet: tuple[FleetDatabase, ...]) -> str:
    """The DATABASE_TAG value of runs on the application's database, ``KAREN_DATABASE_URL``.

    In a fleet that is the name of the entry whose url_env is ``KAREN_DATABASE_URL``, so these
    runs queue behind that database's backups and maintenance; without such an entry (or a
    fleet), ``primary``. Only the variable's name is compared: URLs are read when runs start.
    """
    names = [database.name for database in fleet if database.url_env == DATABASE_URL]
    return names[0] if names else PRIMARY_DATABASE


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
