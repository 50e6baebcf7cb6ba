"""karen-ops doctor: against real local servers, against broken settings, on a fresh machine."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from karen_ops.doctor.commands import doctor_command
from karen_ops.doctor.model import Finding, Status
from karen_ops.doctor.run import run_checks
from karen_ops.resources.conninfo import ConnInfo
from karen_ops_tests.alerting_fixtures import free_port
from karen_ops_tests.doctor_fixtures import AuthRedis, auth_redis_server, clean_environment
from karen_ops_tests.servers import Server

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture
def auth_redis(tmp_path: Path) -> Iterator[AuthRedis]:
    with auth_redis_server(tmp_path) as server:
        yield server


def _findings() -> dict[str, Finding]:
    return {finding.item: finding for finding in run_checks()}


def _instance(tmp_path: Path) -> Path:
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPOSITORY / "dagster.yaml", home / "dagster.yaml")
    return home


def _server_version(conninfo: ConnInfo) -> str:
    with psycopg.connect(**conninfo.psycopg_kwargs()) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def test_doctor_passes_with_every_item_configured_and_sends_no_alert(
    tmp_path, monkeypatch, service_server: Server, auth_redis, alertmanager, pushgateway,
    smtp_inbox, receiver_factory, capsys,
):  # fmt: skip
    slack, webhook = receiver_factory(), receiver_factory()
    with service_server.database("karen_doctor") as source:
        clean_environment(
            monkeypatch,
            tmp_path / "home",
            DAGSTER_HOME=str(_instance(tmp_path)),
            KAREN_DATABASE_URL=source.public_dsn(),
            KAREN_BACKUP_URL=(tmp_path / "store").as_uri(),
            KAREN_BACKUP_ENCRYPTION_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
            KAREN_REDIS_URL=auth_redis.url,
            KAREN_ALERT_SLACK_WEBHOOK_URL=slack.url,
            KAREN_ALERT_WEBHOOK_URL=webhook.url,
            KAREN_ALERTMANAGER_URL=alertmanager,
            KAREN_SMTP_URL=smtp_inbox.url,
            KAREN_ALERT_EMAIL_TO="oncall@example.org",
            KAREN_ALERT_EMAIL_FROM="karen-ops@example.org",
            KAREN_PUSHGATEWAY_URL=pushgateway,
        )
        status = doctor_command(None)
        lines = capsys.readouterr().out.splitlines()
        findings = _findings()
        version = _server_version(source)

    assert status == 0
    assert {item: f.status for item, f in findings.items()} == {
        "dagster instance": Status.OK,
        "code location": Status.OK,
        "postgresql": Status.OK,
        "pg_dump": Status.OK,
        "pg_restore": Status.OK,
        "verify server": Status.OK,
        "encryption key": Status.OK,
        "backup store": Status.OK,
        "redis": Status.OK,
        "alert slack": Status.OK,
        "alert webhook": Status.OK,
        "alert alertmanager": Status.OK,
        "alert email": Status.OK,
        "pushgateway": Status.OK,
        # This machine's server is not set up for archiving: optional, so warned about.
        "wal wal_level": Status.OK,
        "wal archive_mode": Status.WARN,
        "wal archive_command": Status.WARN,
        "wal max_wal_senders": Status.OK,
        "wal replication rights": Status.OK,
    }
    assert len(lines) == len(findings)
    major = version.split(".")[0]
    assert findings["postgresql"].detail == (
        f"{source.describe()} (PostgreSQL {version}, user postgres): connected, "
        "every table readable"
    )
    assert findings["pg_dump"].detail.endswith(f", can dump PostgreSQL {major}")
    assert findings["pg_restore"].detail.endswith(f", can read archives of pg_dump {major}")
    assert findings["verify server"].detail == (
        f"{source.server()} (PostgreSQL {major}, user postgres): connected, may create scratch "
        "databases"
    )
    assert findings["redis"].detail.startswith(
        f"redis://127.0.0.1:{auth_redis.port}/0: PING answered, authenticated (Redis 7."
    )
    smtp_port = urlsplit(smtp_inbox.url).port
    assert findings["alert email"].detail == (
        f"smtp://127.0.0.1:{smtp_port} to oncall@example.org: connected and logged in; "
        "no alert sent"
    )
    assert findings["alert alertmanager"].detail.startswith(f"{alertmanager}: Alertmanager 0.")
    assert findings["backup store"].detail == (
        f"{(tmp_path / 'store').as_uri()}: wrote, read back and deleted a probe object, "
        "encrypted client-side"
    )
    # A dry run: nothing reached a chat, an inbox or Alertmanager, and no probe was left.
    assert slack.posts == [] and webhook.posts == []
    assert smtp_inbox.messages == []
    assert list((tmp_path / "store").rglob("*.bin")) == []
    assert not any(secret in "\n".join(lines) for secret in ("redis-Secret-9", "smtp-Secret-42"))


def test_doctor_names_each_broken_item_and_its_fix(
    tmp_path, monkeypatch, service_server: Server, auth_redis, capsys
):
    role = f"karen_doctor_{secrets.token_hex(3)}"
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("a file where the store's folder should be")
    dead_port = free_port()
    with service_server.database("karen_doctor") as source, _role(service_server, role, source):
        limited = ConnInfo({**source.params, "user": role})
        clean_environment(
            monkeypatch,
            tmp_path / "home",
            DAGSTER_HOME=str(tmp_path / "missing-instance"),
            KAREN_DATABASE_URL=limited.public_dsn(),
            KAREN_BACKUP_URL=(not_a_folder / "backups").as_uri(),
            KAREN_REDIS_URL=f"redis://127.0.0.1:{auth_redis.port}/0",
            KAREN_ALERTMANAGER_URL=f"http://127.0.0.1:{dead_port}",
            KAREN_PUSHGATEWAY_URL=f"http://127.0.0.1:{dead_port}",
            KAREN_PG_BIN_DIR=str(tmp_path),
        )
        status = doctor_command(None)
        findings = _findings()
    err = capsys.readouterr().err

    assert status == 1
    assert {item: f.status for item, f in findings.items() if f.status is not Status.OK} == {
        "dagster instance": Status.FAIL,
        "postgresql": Status.FAIL,
        "pg_dump": Status.FAIL,
        "pg_restore": Status.SKIP,
        "verify server": Status.FAIL,
        "encryption key": Status.SKIP,
        "backup store": Status.FAIL,
        "wal archive_mode": Status.WARN,
        "wal archive_command": Status.WARN,
        "wal replication rights": Status.WARN,
        "redis": Status.FAIL,
        "alert alertmanager": Status.FAIL,
        "pushgateway": Status.FAIL,
    }
    assert findings["dagster instance"].line() == (
        f"FAIL  dagster instance  DAGSTER_HOME={tmp_path / 'missing-instance'} does not exist; "
        f"fix: mkdir -p {tmp_path / 'missing-instance'} and copy the repository's dagster.yaml "
        "(or deploy/dagster.postgres.yaml) into it"
    )
    assert findings["postgresql"].detail.endswith(
        "the user cannot read 1 table(s) or sequence(s): public.messages; pg_dump would fail"
    )
    assert findings["postgresql"].fix == (
        "grant the backup user the pg_read_all_data role (GRANT pg_read_all_data TO USER)"
    )
    assert findings["pg_dump"].line() == (
        f"FAIL  pg_dump           KAREN_PG_BIN_DIR={tmp_path} holds no pg_dump; fix: point "
        f"KAREN_PG_BIN_DIR at a PostgreSQL {service_server.major} bin folder, or unset it"
    )
    assert findings["verify server"].detail == (
        f"{source.server()} (PostgreSQL {service_server.major}, user {role}): user {role} cannot "
        "create databases, so scratch restores cannot run"
    )
    assert findings["verify server"].fix.startswith(f"ALTER ROLE {role} CREATEDB")
    assert findings["backup store"].detail.startswith(
        f"could not write a probe object in {(not_a_folder / 'backups').as_uri()}: "
    )
    assert findings["redis"].detail.startswith(
        f"redis://127.0.0.1:{auth_redis.port}/0: authentication failed"
    )
    assert findings["redis"].fix == (
        "put the password in KAREN_REDIS_URL: redis://:PASSWORD@HOST:6379/0"
    )
    assert findings["alert alertmanager"].detail.startswith(
        f"http://127.0.0.1:{dead_port}: ConnectionError"
    )
    assert findings["pushgateway"].line() == (
        f"FAIL  pushgateway       http://127.0.0.1:{dead_port}: cannot connect: ConnectionError; "
        "fix: start the Pushgateway there, or correct or unset KAREN_PUSHGATEWAY_URL"
    )
    assert err.strip() == (
        "8 required item(s) failed: dagster instance, postgresql, pg_dump, verify server, "
        "backup store, redis, alert alertmanager, pushgateway"
    )


def test_doctor_rejects_a_short_encryption_key_before_probing_the_store(tmp_path, monkeypatch):
    clean_environment(
        monkeypatch,
        tmp_path / "home",
        KAREN_BACKUP_URL=(tmp_path / "store").as_uri(),
        KAREN_BACKUP_ENCRYPTION_KEY=base64.b64encode(b"short").decode(),
    )
    from karen_ops.doctor.store import store_checks
    from karen_ops.resources.store import BackupStoreResource

    findings = store_checks(BackupStoreResource())

    assert [f.line() for f in findings] == [
        "FAIL  encryption key    KAREN_BACKUP_ENCRYPTION_KEY decodes to 5 bytes, AES-256 needs "
        "32; fix: make one with: openssl rand -base64 32",
        "SKIP  backup store      not probed until KAREN_BACKUP_ENCRYPTION_KEY is valid",
    ]
    assert not (tmp_path / "store").exists()


def test_doctor_refuses_email_alerts_without_recipients(tmp_path, monkeypatch, smtp_inbox):
    clean_environment(monkeypatch, tmp_path / "home", KAREN_SMTP_URL=smtp_inbox.url)
    from karen_ops.alerting.resource import AlertingResource
    from karen_ops.doctor.services import alerting_checks

    findings = alerting_checks(AlertingResource())

    assert [f.line() for f in findings] == [
        "FAIL  alert email       KAREN_SMTP_URL is set but KAREN_ALERT_EMAIL_TO is not; email "
        "alerts need a sender and at least one recipient; fix: complete or unset its settings",
        "SKIP  pushgateway       KAREN_PUSHGATEWAY_URL is not set: run metrics are not pushed",
    ]


def test_doctor_on_a_fresh_machine_says_exactly_what_is_missing(tmp_path):
    home = tmp_path / "home"
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "KAREN_OPS_HOME": str(home),
        # Nothing else: no karen-ops setting, no DAGSTER_HOME, and no Redis to fall back to.
        "KAREN_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    completed = subprocess.run(
        [sys.executable, "-m", "karen_ops.doctor"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = {line.split()[1]: line for line in completed.stdout.splitlines()}

    assert completed.returncode == 1, completed.stderr
    assert lines["dagster"] == (
        f"FAIL  dagster instance  DAGSTER_HOME is not set and there is no {home / 'dagster'}: "
        "runs would go to a throwaway instance and not show in the UI; fix: export "
        "DAGSTER_HOME=/var/lib/karen-ops/dagster and copy the repository's dagster.yaml (or "
        "deploy/dagster.postgres.yaml) into it"
    )
    assert lines["postgresql"] == (
        "FAIL  postgresql        KAREN_DATABASE_URL is not set and no embedded demo server runs "
        f"under {home / 'pgdata'}; fix: export "
        "KAREN_DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DATABASE (or run `karen-ops "
        "demo` to try karen-ops on an embedded server)"
    )
    assert lines["pg_dump"].startswith("SKIP  pg_dump           needs the server's version first")
    assert lines["verify"] == (
        "SKIP  verify server     follows KAREN_DATABASE_URL, which is not usable yet"
    )
    assert lines["encryption"] == (
        "SKIP  encryption key    KAREN_BACKUP_ENCRYPTION_KEY is not set: backups are not "
        "encrypted by karen-ops"
    )
    assert lines["backup"] == (
        "FAIL  backup store      KAREN_BACKUP_URL is not set and the demo's backup folder "
        f"{home / 'backups'} does not exist; fix: export "
        "KAREN_BACKUP_URL=file:///var/backups/karen (or s3://BUCKET/PREFIX)"
    )
    assert lines["redis"].startswith("FAIL  redis             redis://127.0.0.1:")
    assert lines["redis"].endswith(
        "fix: start Redis there, or set KAREN_REDIS_URL to the platform's Redis"
    )
    assert lines["alert"] == (
        "WARN  alert channels    no alert channel is configured: failed runs and checks alert "
        "nobody; fix: set KAREN_ALERT_SLACK_WEBHOOK_URL, KAREN_ALERT_WEBHOOK_URL, "
        "KAREN_ALERTMANAGER_URL, or KAREN_SMTP_URL with KAREN_ALERT_EMAIL_TO and "
        "KAREN_ALERT_EMAIL_FROM"
    )
    assert lines["pushgateway"] == (
        "SKIP  pushgateway       KAREN_PUSHGATEWAY_URL is not set: run metrics are not pushed"
    )
    assert completed.stderr.strip() == (
        "4 required item(s) failed: dagster instance, postgresql, backup store, redis"
    )
    # The doctor created nothing: no embedded server, no backup folder.
    assert not home.exists()


def test_doctor_without_dagster_home_checks_the_instance_the_ui_uses(tmp_path, monkeypatch):
    # What `karen-ops demo` leaves: the instance in the karen-ops home's dagster folder.
    home = tmp_path / "home"
    home.mkdir()
    clean_environment(monkeypatch, home)
    instance = _instance(home)
    from karen_ops.doctor.instance import check_instance

    finding = check_instance()

    assert finding.line() == (
        "OK    dagster instance  DAGSTER_HOME is not set; checked the instance `karen-ops ui` "
        f"uses, {instance / 'dagster.yaml'} (SQLite storage): opened, one run per database at a "
        "time"
    )


class _role:
    """A login role without CREATEDB that may read every table of ``source`` but one."""

    def __init__(self, server: Server, name: str, source: ConnInfo) -> None:
        self.server, self.name, self.source = server, name, source

    def __enter__(self) -> None:
        with psycopg.connect(**self.source.psycopg_kwargs(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(self.name)))
            conn.execute("CREATE TABLE users (id int PRIMARY KEY)")
            conn.execute("CREATE TABLE messages (id int PRIMARY KEY)")
            conn.execute(sql.SQL("GRANT SELECT ON users TO {}").format(sql.Identifier(self.name)))

    def __exit__(self, *exc_info) -> None:
        with psycopg.connect(**self.source.psycopg_kwargs(), autocommit=True) as conn:
            conn.execute("DROP TABLE users, messages")
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(self.name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(self.name)))


def test_doctor_checks_each_database_of_the_fleet(tmp_path, monkeypatch, service_server):
    config = tmp_path / "karen-ops.yaml"
    config.write_text(
        "databases:\n"
        "  production: {url_env: KAREN_TEST_DOCTOR_PRODUCTION_URL}\n"
        "  staging: {url_env: KAREN_TEST_DOCTOR_STAGING_URL}\n"
    )
    clean_environment(monkeypatch, tmp_path / "home", KAREN_OPS_CONFIG=str(config))
    monkeypatch.setenv("KAREN_TEST_DOCTOR_PRODUCTION_URL", service_server.url("postgres"))
    from karen_ops.doctor.database import fleet_checks
    from karen_ops.resources.postgres import PostgresResource
    from karen_ops.settings import load_fleet

    findings = {f.item: f for f in fleet_checks(PostgresResource(), load_fleet())}

    assert findings["postgresql production"].status is Status.OK
    staging = findings["postgresql staging"]
    assert staging.status is Status.FAIL
    assert "KAREN_TEST_DOCTOR_STAGING_URL is not set" in staging.line()
