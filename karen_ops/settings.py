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
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from karen_ops.errors import ConfigurationError, SettingsFileError
from karen_ops.yaml_files import DuplicateKeyError, describe_yaml_error, load_unique_keys

DATABASE_URL = "KAREN_DATABASE_URL"
VERIFY_DATABASE_URL = "KAREN_VERIFY_DATABASE_URL"
BACKUP_URL = "KAREN_BACKUP_URL"
S3_ENDPOINT_URL = "KAREN_S3_ENDPOINT_URL"
PG_BIN_DIR = "KAREN_PG_BIN_DIR"
REDIS_URL = "KAREN_REDIS_URL"
REDIS_KEY_PREFIX = "KAREN_REDIS_KEY_PREFIX"
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


_CRON_SETTINGS = tuple(name for name in ScheduleSettings.__dataclass_fields__ if "_cron" in name)


def load_schedule_settings() -> ScheduleSettings:
    """Schedule settings from the ``schedules`` section of the ``KAREN_OPS_CONFIG`` file, each
    checked here so that a bad one names itself instead of failing inside Dagster."""
    section = dict(config_section("schedules", known=ScheduleSettings.__dataclass_fields__))
    if "timezone" in section:
        section["timezone"] = _timezone(section["timezone"])
    if "backups_start_date" in section:
        section["backups_start_date"] = _start_date(section["backups_start_date"])
    for name in _CRON_SETTINGS:
        if name in section:
            _check_cron(name, section[name])
    return ScheduleSettings(**section)


def setting_error(
    setting: str, problem: str, fix: str, *, source: str | None = None
) -> ConfigurationError:
    """The error for one malformed setting: the setting, its file, what is wrong, the fix."""
    return ConfigurationError(f"{setting} in {source or env(OPS_CONFIG)} {problem}; {fix}")


def _timezone(value: object) -> str:
    setting, fix = "schedules.timezone", "use an IANA name such as Europe/Berlin or UTC"
    if not isinstance(value, str):
        raise setting_error(setting, f"must be a timezone name, not {describe(value)}", fix)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise setting_error(setting, f"names an unknown timezone {quoted(value)}", fix) from exc
    return value


def _start_date(value: object) -> str:
    """The first backup day as YYYY-MM-DD, from a YAML date (``2026-11-01`` unquoted) or a
    string of that form."""
    setting = "schedules.backups_start_date"
    fix = "write the first day to back up, like backups_start_date: 2026-11-01"
    if isinstance(value, datetime):
        raise setting_error(setting, "holds a time of day as well as a date", fix)
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        raise setting_error(setting, f"must be a date, not {describe(value)}", fix)
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").date().isoformat()
    except ValueError as exc:
        raise setting_error(
            setting, f"is {quoted(value)}, not a date of the form YYYY-MM-DD", fix
        ) from exc


def _check_cron(name: str, value: object) -> None:
    # Dagster's own check, so what passes here is exactly what its schedules accept; imported
    # here because the WAL commands read settings and must start without loading Dagster.
    from dagster._utils.schedules import is_valid_cron_string

    if isinstance(value, str) and is_valid_cron_string(value):
        return
    raise setting_error(
        f"schedules.{name}",
        f"must be a cron expression of five fields, not {quoted(value)}",
        f'quote it, like {name}: "{getattr(ScheduleSettings, name)}"',
    )


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
    fleet = tuple(_fleet_database(name, entry) for name, entry in section.items())
    _refuse_shared_urls(fleet)
    return fleet


def _refuse_shared_urls(fleet: tuple[FleetDatabase, ...]) -> None:
    """Two entries reading one variable would back up the same database twice, under two names
    and on two partitions, doubling the load and the storage without any warning."""
    first_reader: dict[str, str] = {}
    for database in fleet:
        first = first_reader.setdefault(database.url_env, database.name)
        if first != database.name:
            raise ConfigurationError(
                f"databases {first} and {database.name} in {env(OPS_CONFIG)} both take their URL "
                f"from {database.url_env}, so one database would be backed up twice; give each "
                "entry the variable of its own database, or remove one of them"
            )


def _fleet_database(name: object, entry: object) -> FleetDatabase:
    where = env(OPS_CONFIG)
    if not isinstance(name, str) or not _DATABASE_NAME.fullmatch(name):
        raise ConfigurationError(
            f"database name {quoted(name)} in {where} is not allowed: names are up to 41 lowercase "
            "letters, digits and underscores, starting with a letter"
        )
    if not isinstance(entry, dict):
        raise ConfigurationError(
            f"database {name} in {where} must be a mapping {{url_env: VARIABLE}} naming the "
            "environment variable that holds its libpq URL, not "
            f"{describe(entry)}; for example {name}: {{url_env: {_example_variable(name)}}}"
        )
    unknown = [key for key in entry if key not in _ENTRY_KEYS]
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {key_list(unknown)} for database {name} in {where}; "
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
        problem = f"is {describe(value)}: it must name {variable} that holds the libpq URL"
    raise ConfigurationError(f"{key} of database {database} in {where} {problem}")


def key_list(keys: list[object]) -> str:
    """Misspelt keys by name; a key not shaped like a name (a URL written in braces, as in
    ``{postgresql://...}``, is a key) is counted but not quoted, as it may hold a password."""
    named = sorted(k for k in keys if isinstance(k, str) and _VARIABLE_NAME.fullmatch(k))
    unnamed = len(keys) - len(named)
    return ", ".join(named + ([f"{unnamed} key(s) that are not names"] if unnamed else []))


def _example_variable(database: str, key: str = "url_env") -> str:
    return f"KAREN_{database.upper()}_{'VERIFY_URL' if key == 'verify_url_env' else 'URL'}"


def quoted(value: object) -> str:
    """A short value as written, so a typo shows; a long one, or one shaped like a URL or
    credentials (pasted into the wrong setting, say), is only described."""
    if isinstance(value, str) and len(value) <= 40 and not _SECRET_SHAPED.search(value):
        return repr(value)
    return describe(value)


# A URL, credentials or an address: never quoted back, whatever setting holds them.
_SECRET_SHAPED = re.compile(r"://|@|password|secret|token", re.IGNORECASE)


def describe(value: object) -> str:
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
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, date):
        return "a date"
    return f"a {type(value).__name__}"


def application_database(fleet: tuple[FleetDatabase, ...]) -> str:
    """The DATABASE_TAG value of runs on the application's database, ``KAREN_DATABASE_URL``.

    In a fleet that is the name of the entry whose url_env is ``KAREN_DATABASE_URL``, so these
    runs queue behind that database's backups and maintenance; without such an entry (or a
    fleet), ``primary``. Only the variable's name is compared: URLs are read when runs start.
    """
    names = [database.name for database in fleet if database.url_env == DATABASE_URL]
    return names[0] if names else PRIMARY_DATABASE


# The top-level sections of the settings file, each read by its own domain. Any other name is
# most often a misspelt one (``schedule:``), whose settings would otherwise be ignored unseen.
SECTIONS = ("alerting", "archives", "databases", "health", "schedules", "security")


def config_section(name: str, *, known: Iterable[str] | None = None) -> dict:
    """One top-level section of the ``KAREN_OPS_CONFIG`` file ({} when absent), checked to be a
    mapping whose keys are all ``known`` (when given), so a misspelt setting is an error rather
    than silently ignored."""
    section = _load_config_file().get(name)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigurationError(
            f"the {name} section of {env(OPS_CONFIG)} must be a mapping of settings, not "
            f"{describe(section)}; indent its settings under {name}:, one per line"
        )
    known = None if known is None else set(known)
    unknown = [key for key in section if key not in known] if known is not None else []
    if unknown:
        raise ConfigurationError(
            f"unknown {name} setting(s) {key_list(unknown)} in {env(OPS_CONFIG)}; "
            f"known settings are {', '.join(sorted(known))}"
        )
    return section


def _load_config_file() -> dict:
    path = env(OPS_CONFIG)
    if path is None:
        return {}
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SettingsFileError(
            f"could not read settings file {path}: {exc.strerror}; fix or unset {OPS_CONFIG}"
        ) from exc
    except UnicodeDecodeError:
        raise SettingsFileError(
            f"settings file {path} is not UTF-8 text; save it as UTF-8 or unset {OPS_CONFIG}"
        ) from None
    try:
        loaded = load_unique_keys(text)
    except yaml.YAMLError as exc:
        # ``from None``: PyYAML's own message quotes the offending line, which may hold a
        # password, and Dagster shows a chained exception in the UI beside this one.
        raise SettingsFileError(_yaml_error(path, exc)) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsFileError(
            f"settings file {path} must hold a mapping of sections at the top level, not "
            f"{describe(loaded)}; known sections are {', '.join(SECTIONS)}"
        )
    unknown = [key for key in loaded if key not in SECTIONS]
    if unknown:
        raise SettingsFileError(
            f"unknown section(s) {key_list(unknown)} in settings file {path}; known sections "
            f"are {', '.join(SECTIONS)}: correct the name or remove the section"
        )
    return loaded


def _yaml_error(path: str, exc: yaml.YAMLError) -> str:
    if isinstance(exc, DuplicateKeyError):
        fix = "keep the one you mean and delete the other"
    else:
        fix = (
            "fix that line, quoting any value that holds ': ' or ' #' or starts with '*', '&', "
            "'!' or '%'"
        )
    return f"settings file {path} is not valid YAML {describe_yaml_error(exc)}; {fix}"
