"""The Dagster instance and the code location: where runs are recorded, and what loads."""

from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import replace
from pathlib import Path

import yaml

from karen_ops import settings
from karen_ops.doctor.model import Finding, fail, ok, warn
from karen_ops.errors import KarenOpsError

DAGSTER_HOME = "DAGSTER_HOME"
INSTANCE_FILE = "dagster.yaml"
# The variable deploy/dagster.postgres.yaml reads its storage URL from.
PG_URL = "DAGSTER_PG_URL"
_COPY = "copy the repository's dagster.yaml (or deploy/dagster.postgres.yaml) into it"


def instance_checks() -> list[Finding]:
    return [check_instance(), check_code_location()]


def check_instance() -> Finding:
    home = os.environ.get(DAGSTER_HOME, "").strip()
    if home:
        return _check_instance(Path(home))
    # Without DAGSTER_HOME, the instance `karen-ops ui` and `demo` use: the karen-ops home's.
    demo = settings.ops_home() / "dagster"
    if not demo.is_dir():
        return fail(
            "dagster instance",
            f"{DAGSTER_HOME} is not set and there is no {demo}: runs would go to a throwaway "
            "instance and not show in the UI",
            f"export {DAGSTER_HOME}=/var/lib/karen-ops/dagster and {_COPY}",
        )
    finding = _check_instance(demo)
    checked = f"{DAGSTER_HOME} is not set; checked the instance `karen-ops ui` uses"
    return replace(finding, detail=f"{checked}, {finding.detail}")


def _check_instance(folder: Path) -> Finding:
    item = "dagster instance"
    copy = _COPY
    config = folder / INSTANCE_FILE
    if not folder.is_dir():
        return fail(
            item, f"{DAGSTER_HOME}={folder} does not exist", f"mkdir -p {folder} and {copy}"
        )
    if not config.is_file():
        return fail(item, f"{config} does not exist", copy)
    try:
        loaded = yaml.safe_load(config.read_text()) or {}
    except OSError as exc:
        return fail(item, f"cannot read {config}: {exc.strerror}", f"fix {config}")
    except yaml.YAMLError as exc:
        # Not PyYAML's own message: it quotes the broken line, which may hold a password.
        detail = f"{config} is not valid YAML {settings.describe_yaml_error(exc)}"
        return fail(item, detail, f"fix {config}")

    try:
        storage = _open_instance(folder)
    except Exception as exc:  # any failure to open the instance is the finding
        return fail(
            item,
            f"{config} does not open: {type(exc).__name__}: {_first_line(exc)}",
            "fix the storage settings (and their environment variables) in dagster.yaml, then "
            "run `dagster instance migrate`",
        )
    pg_url = os.environ.get(PG_URL, "")
    if pg_url.startswith(("postgresql://", "postgres://")):
        return warn(
            item,
            f"{config} ({storage}): {PG_URL} names no driver, so SQLAlchemy picks psycopg 3, "
            "with which dagster-postgres fails to record run events",
            f"start {PG_URL} with postgresql+psycopg2://",
        )
    if not _limits_databases(loaded):
        return warn(
            item,
            f"{config} ({storage}) has no run limit on the tag {settings.DATABASE_TAG}: "
            "backups and maintenance of one database may overlap",
            "copy the concurrency section of the repository's dagster.yaml",
        )
    return ok(item, f"{config} ({storage}): opened, one run per database at a time")


def check_code_location() -> Finding:
    item = "code location"
    try:
        with warnings.catch_warnings():
            # Dagster's beta and preview notices are for developers, not the doctor's report.
            warnings.simplefilter("ignore")
            module = importlib.import_module("karen_ops.definitions")
            repository = module.defs.get_repository_def()
    except KarenOpsError as exc:
        detail = f"karen_ops.definitions does not load: {exc}"
        return fail(item, detail, f"fix the file named by {settings.OPS_CONFIG}")
    except Exception as exc:  # any import failure is what the operator must see
        return fail(
            item,
            f"karen_ops.definitions does not load: {type(exc).__name__}: {_first_line(exc)}",
            "reinstall karen-ops (pip install -e .) and check the settings file",
        )
    jobs = [job.name for job in repository.get_all_jobs() if not job.name.startswith("__")]
    counts = (
        f"{len(repository.assets_defs_by_key)} assets, {len(jobs)} jobs, "
        f"{len(repository.schedule_defs)} schedules, {len(repository.sensor_defs)} sensors"
    )
    config = settings.env(settings.OPS_CONFIG)
    source = f"settings from {config}" if config else f"{settings.OPS_CONFIG} not set: defaults"
    return ok(item, f"karen_ops.definitions loads ({counts}; {source})")


def _open_instance(folder: Path) -> str:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(folder)) as instance:
        instance.get_runs_count()
        storage = type(instance.run_storage).__name__
    return "PostgreSQL storage" if "Postgres" in storage else "SQLite storage"


def _limits_databases(config: dict) -> bool:
    runs = ((config.get("concurrency") or {}).get("runs") or {}).get("tag_concurrency_limits")
    runs = runs or ((config.get("run_queue") or {}).get("tag_concurrency_limits") or [])
    return any(limit.get("key") == settings.DATABASE_TAG for limit in runs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
