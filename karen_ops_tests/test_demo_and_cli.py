"""The commands an operator types: the demo, and one asset for one day from Dagster's CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from karen_ops.demo.run import DemoSetup
from karen_ops_tests.servers import exact_row_counts

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def _clean_environment(**extra: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("KAREN_", "DAGSTER_"))}
    return {**kept, **extra}


def _materialize_day(
    database_url: str, store: Path, tmp_path: Path, day: str
) -> subprocess.CompletedProcess:
    """The documented command, configured only by the two variables and an instance folder."""
    (tmp_path / "dagster").mkdir()
    env = _clean_environment(
        KAREN_DATABASE_URL=database_url,
        KAREN_BACKUP_URL=store.as_uri(),
        DAGSTER_HOME=str(tmp_path / "dagster"),
    )
    select = "postgres_backup,backup_verification"
    argv = [str(BIN / "dagster"), "asset", "materialize", "-m", "karen_ops.definitions"]
    return _run([*argv, "--select", select, "--partition", day], env)


def test_dagster_cli_backs_up_and_verifies_chinook(chinook, tmp_path, yesterday, server):
    store = tmp_path / "store"

    completed = _materialize_day(chinook.public_dsn(), store, tmp_path, yesterday)

    assert completed.returncode == 0, completed.stderr[-3000:]
    manifests = list(store.rglob("manifest.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    archive = store / manifest["archive_key"]
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == manifest["sha256"]
    assert manifest["inventory"]["row_counts"] == exact_row_counts(chinook)
    assert not [db for db in server.databases() if db.startswith("karen_verify_" + chinook.dbname)]


def test_dagster_cli_against_a_missing_database_names_it_and_stores_nothing(
    service_server, tmp_path, yesterday
):
    store = tmp_path / "store"

    completed = _materialize_day(service_server.url("karen_missing_db"), store, tmp_path, yesterday)

    assert completed.returncode != 0
    assert "could not back up database karen_missing_db" in completed.stdout + completed.stderr
    assert not store.exists() or not any(store.rglob("*"))


def test_demo_backs_up_verifies_and_reuses_its_setup(tmp_path):
    home = tmp_path / "home"
    env = _clean_environment()
    demo = [str(BIN / "karen-ops"), "--home", str(home), "demo", "--users", "200"]
    # As in a checkout: the demo copies the folder's dagster.yaml into its instance.
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")

    first = _run(demo, env, cwd=tmp_path)
    second = _run(demo, env, cwd=tmp_path)

    assert first.returncode == 0, first.stderr[-3000:]
    assert "loading a synthetic AI Karen database" in first.stdout
    for line in ("backup        file://", "sha256        ", "verified      6 tables"):
        assert line in first.stdout
    assert "check         row_counts_match: passed" in first.stdout
    assert f"karen-ops --home {home} ui" in first.stdout
    assert second.returncode == 0, second.stderr[-3000:]
    assert "reusing database karen on the embedded server" in second.stdout
    assert len(list((home / "backups").rglob("manifest.json"))) == 2
    # --home reaches every command, here run from a folder with no .karen-ops of its own.
    backups = _run([str(BIN / "karen-ops"), "--home", str(home), "backups"], env, cwd=tmp_path)
    assert backups.returncode == 0, backups.stderr
    assert [line.split()[:2] for line in backups.stdout.splitlines()[1:]] == [
        ["postgres", "karen"]
    ] * 2
    doctor = _run([str(BIN / "karen-ops"), "--home", str(home), "doctor"], env, cwd=tmp_path)
    [instance] = [line for line in doctor.stdout.splitlines() if "dagster instance" in line]
    assert instance.startswith(
        "OK    dagster instance  DAGSTER_HOME is not set; checked the instance `karen-ops ui` "
        f"uses, {home / 'dagster' / 'dagster.yaml'} (SQLite storage): opened"
    ), doctor.stdout
    assert "OK    postgresql" in doctor.stdout
    stop = _run([str(BIN / "karen-ops"), "--home", str(home), "stop"], env, cwd=tmp_path)
    assert stop.stdout.strip() == "embedded PostgreSQL stopped"
    assert not (home / "pgdata" / "postmaster.pid").exists()


def test_each_demo_home_keeps_its_alert_state_under_its_own_redis_prefix(tmp_path):
    def setup(home: Path) -> DemoSetup:
        return DemoSetup(home, "postgresql:///karen", home.as_uri(), home / "dagster")

    first, second = setup(tmp_path / "one"), setup(tmp_path / "two")

    assert first.environment()["KAREN_REDIS_KEY_PREFIX"].startswith("karen-ops-demo-")
    assert first.redis_key_prefix != second.redis_key_prefix
    assert first.redis_key_prefix == setup(tmp_path / "one").redis_key_prefix
