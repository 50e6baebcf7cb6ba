"""``karen-ops demo``: the nightly backup of a synthetic AI Karen database, run through Dagster.

Everything lives under the karen-ops home (``.karen-ops`` in the current folder by default):
the embedded server's data, the backup store, and the Dagster instance that records the runs,
so the UI opened afterwards shows them. A second run reuses the server and the database.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from psycopg import sql

from karen_ops import settings
from karen_ops.demo.synthetic import load_synthetic_database
from karen_ops.partitions import last_complete_partition
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.embedded_postgres import embedded_server_url
from karen_ops.resources.postgres import DEMO_DATABASE, connect

DEFAULT_USERS = 2000
# The demo prints its own summary; Dagster's step-by-step DEBUG events stay in the instance.
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass(frozen=True)
class DemoSetup:
    home: Path
    database_url: str
    backup_url: str
    dagster_home: Path

    def environment(self) -> dict[str, str]:
        return {
            settings.OPS_HOME: str(self.home),
            settings.DATABASE_URL: self.database_url,
            settings.BACKUP_URL: self.backup_url,
            settings.REDIS_KEY_PREFIX: self.redis_key_prefix,
            "DAGSTER_HOME": str(self.dagster_home),
        }

    @property
    def redis_key_prefix(self) -> str:
        # Demos share the machine's Redis; each home keeps its own alert state in it, so one
        # demo never announces, nor waits to resolve, another's alerts.
        home_id = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:12]
        return f"karen-ops-demo-{home_id}:"


def prepare(home: Path, *, users: int, instance_template: Path | None) -> DemoSetup:
    """Start or reuse the embedded server, the synthetic database and the Dagster instance."""
    server = ConnInfo.parse(embedded_server_url(home / "pgdata"), setting="embedded server")
    database = server.with_dbname(DEMO_DATABASE)
    _ensure_database(server, database, users=users)

    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    if instance_template is not None and instance_template.is_file():
        shutil.copyfile(instance_template, dagster_home / "dagster.yaml")
    return DemoSetup(home, database.public_dsn(), (home / "backups").as_uri(), dagster_home)


def _ensure_database(server: ConnInfo, database: ConnInfo, *, users: int) -> None:
    with connect(server, setting="embedded server", autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database.dbname,)
        ).fetchone()
        if exists:
            print(f"reusing database {database.dbname} on the embedded server")
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database.dbname)))
    print(f"loading a synthetic AI Karen database ({users} users, 18 months of history) ...")
    with connect(database, setting="embedded server", autocommit=True) as conn:
        counts = load_synthetic_database(conn, users=users)
    print("  " + ", ".join(f"{table} {count:,}" for table, count in counts.items()))


def run_nightly_backup(setup: DemoSetup) -> dg.ExecuteInProcessResult:
    """Run the nightly_backup job for the last complete day, recorded in the demo instance."""
    os.environ.update(setup.environment())
    with warnings.catch_warnings():
        # The capacity assets backfill a range in one run, a BackfillPolicy that Dagster marks
        # as beta and warns about once per asset at load; the demo's reader can do nothing
        # about it, and every other warning still shows.
        warnings.filterwarnings(
            "ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning
        )
        from karen_ops.definitions import defs  # after the environment is set, as a run would be

    job = defs.resolve_job_def("nightly_backup")
    day = last_complete_partition(job.partitions_def, datetime.now(UTC))
    print(f"running nightly_backup for partition {day} ...")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, partition_key=day, raise_on_error=False, run_config=_QUIET
        )
        report(result, instance)
    return result


def report(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance) -> None:
    backup = _metadata(result, "postgres_backup")
    verification = _metadata(result, "backup_verification")
    durations = {
        stats.step_key: (stats.end_time or 0) - (stats.start_time or 0)
        for stats in instance.get_run_step_stats(result.run_id)
    }
    print()
    if backup:
        print(f"backup        {backup['location'].value}")
        print(f"size          {backup['size'].value} ({backup['size_bytes'].value:,} bytes)")
        print(f"sha256        {backup['sha256'].value}")
    if verification:
        print(
            f"verified      {verification['tables_verified'].value} tables, "
            f"{verification['rows_verified'].value:,} rows restored into "
            f"{verification['scratch_database'].value} (dropped)"
        )
    for check in result.get_asset_check_evaluations():
        print(f"check         {check.check_name}: {'passed' if check.passed else 'FAILED'}")
    for step, seconds in durations.items():
        print(f"step          {step}: {seconds:.1f} s")
    print(f"run           {'succeeded' if result.success else 'FAILED'} ({result.run_id})")


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key == dg.AssetKey(asset):
            return dict(event.materialization.metadata)
    return {}


def ui_command(setup: DemoSetup) -> str:
    executable = Path(sys.executable).parent / "karen-ops"
    return f"{executable} --home {setup.home} ui"


def main(home: Path, *, users: int) -> int:
    setup = prepare(home, users=users, instance_template=Path.cwd() / "dagster.yaml")
    result = run_nightly_backup(setup)
    print()
    print("open the Dagster UI on this setup (then browse http://127.0.0.1:3030):")
    print(f"  {ui_command(setup)}")
    return 0 if result.success else 1
