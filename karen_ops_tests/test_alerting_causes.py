"""What run and check alerts say about why: the root cause of a failed step, a refused request
told once as a warning, and a failed check that carries no description. Real failing runs on
an ephemeral instance, a private Redis, and local receivers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import redis
import yaml

from karen_ops.alerting.resource import AlertingResource
from karen_ops.alerting.sensors import asset_check_alerts, run_failure_alerts
from karen_ops.backups.assets import build_backup_assets
from karen_ops.backups.partitions import daily_partitions
from karen_ops.errors import BackupRefused, DatabaseError, RestoreError
from karen_ops.failures import expected_failures
from karen_ops.partitions import last_complete_partition
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.redis import RedisResource
from karen_ops.resources.store import BackupStoreResource
from karen_ops.security.assets import build_security_assets
from karen_ops.security.settings import SecuritySettingsResource
from karen_ops_tests.servers import Server

PREFIX = "karen-ops-causes:"
DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01", timezone="UTC")


@pytest.fixture
def routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Critical alerts to Slack, everything else to the webhook; no timers, so a held alert
    would go out again on every tick."""
    timers = {"group_interval_seconds": 0, "repeat_interval_seconds": 0}
    section = {
        "routes": [
            {"name": "page", "match": {"severity": "critical"}, "channels": ["slack"], **timers},
            {"name": "tell", "channels": ["webhook"], **timers},
        ]
    }
    path = tmp_path / "karen-ops.yaml"
    path.write_text(yaml.safe_dump({"alerting": section}))
    monkeypatch.setenv("KAREN_OPS_CONFIG", str(path))


@pytest.fixture
def channels(receiver_factory, private_redis):
    slack, webhook = receiver_factory(), receiver_factory()
    resources = {
        "alerting": AlertingResource(
            slack_webhook_url=slack.url, webhook_url=webhook.url, dagster_ui_url="http://ui:3000"
        ),
        "redis": RedisResource(url=private_redis.url, key_prefix=PREFIX),
    }
    return slack, webhook, resources


def _materialize(defs: dg.Definitions, instance, asset: str, partition: str | None = None):
    """A run of one hand-picked asset, as ``dagster asset materialize --select`` launches it."""
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance,
        partition_key=partition,
        asset_selection=[dg.AssetKey(asset)],
        raise_on_error=False,
    )
    assert not result.success
    return result.run_id


def _ticks(sensor, instance, resources, count: int = 1, repository=None) -> None:
    cursor = None
    for _ in range(count):
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources=resources, repository_def=repository
        )
        cursor = sensor(context).cursor


def _alerts(receiver) -> list[dict]:
    return [alert for post in receiver.posts for alert in post.json()["alerts"]]


def test_failed_log_analysis_alert_names_the_unreadable_log_not_the_op(
    channels, routes, tmp_path: Path
):
    _, webhook, resources = channels
    missing = tmp_path / "ai-karen" / "error.log"
    defs = dg.Definitions(
        assets=build_security_assets("UTC"),
        resources={"security_settings": SecuritySettingsResource(error_log=str(missing))},
    )
    with dg.DagsterInstance.ephemeral() as instance:
        run_id = _materialize(defs, instance, "error_analysis", "2026-11-20")
        _ticks(run_failure_alerts, instance, resources)

    [alert] = _alerts(webhook)
    assert alert["annotations"]["summary"] == (
        "materialization of error_analysis failed for partition 2026-11-20 at step error_analysis"
    )
    assert alert["annotations"]["description"] == (
        f"run {run_id}\n"
        f"step error_analysis failed: could not read log {missing}: No such file or directory; "
        "set error_log in the security section of $KAREN_OPS_CONFIG or on the "
        "security_settings resource"
    )
    assert "DagsterExecutionStepExecutionError" not in webhook.posts[0].body.decode()


@dg.asset
def dump_chats() -> None:
    url = "postgresql://karen:db-Secret-9@db.internal:5432/karen"
    # Long enough that the alert cuts it short near the URL that holds the password.
    detail = "pg_dump said: " + "server closed the connection unexpectedly " * 13
    with expected_failures():
        raise DatabaseError(f"could not back up database karen: {detail}at {url}; retry later")


@dg.asset
def count_chats() -> None:
    try:
        {}["chat_id"]
    except KeyError:
        raise RuntimeError("no chat_id column in the export") from None


def test_long_cause_is_cut_short_without_its_password_and_a_plain_error_keeps_its_class(
    channels, routes
):
    _, webhook, resources = channels
    defs = dg.Definitions(assets=[dump_chats, count_chats])
    with dg.DagsterInstance.ephemeral() as instance:
        _materialize(defs, instance, "dump_chats")
        _materialize(defs, instance, "count_chats")
        _ticks(run_failure_alerts, instance, resources)

    descriptions = {
        a["labels"]["assets"]: a["annotations"]["description"] for a in _alerts(webhook)
    }
    dumped = descriptions["dump_chats"].split("\n")[1]
    assert dumped.startswith("step dump_chats failed: could not back up database karen: pg_dump")
    assert dumped.endswith("unexpectedly at [cut short; the link below has all of it]")
    assert len(dumped) < 700
    assert descriptions["count_chats"].endswith(
        "step count_chats failed: RuntimeError: no chat_id column in the export"
    )
    assert all(b"db-Secret" not in post.body for post in webhook.posts)


@dg.asset(name="postgres_backup", partitions_def=DAYS)
def refused_backup(context) -> None:  # no annotation: Dagster reads it before it resolves
    with expected_failures():
        raise BackupRefused(
            f"cannot back up partition {context.partition_key}: a backup records the database "
            "as it is now; materialize a recent partition"
        )


def test_refused_partition_is_one_warning_to_whoever_asked_and_is_then_forgotten(
    channels, routes, private_redis
):
    slack, webhook, resources = channels
    defs = dg.Definitions(assets=[refused_backup])
    with dg.DagsterInstance.ephemeral() as instance:
        run_id = _materialize(defs, instance, "postgres_backup", "2026-11-20")
        _ticks(run_failure_alerts, instance, resources, count=3)

    assert slack.posts == []  # postgres_backup is a critical asset, but nothing was lost
    assert len(webhook.posts) == 1  # sent once, though the route repeats on every tick
    post = webhook.posts[0].json()
    assert (
        post["title"] == "[NOTICE:1] DagsterRunRefused (warning, P3: respond within 1 business day)"
    )
    [alert] = post["alerts"]
    assert alert["labels"] == {
        "alertname": "DagsterRunRefused",
        "severity": "warning",
        "job": "__ASSET_JOB",
        "assets": "postgres_backup",
        "partition": "2026-11-20",
        "launched_by": "hand",
    }
    assert alert["annotations"]["summary"] == (
        "materialization of postgres_backup was refused for partition 2026-11-20"
    )
    assert alert["annotations"]["impact"] == (
        "the request was refused before any work began: nothing was changed and nothing was "
        "lost; launch it again as the reason below says"
    )
    assert alert["annotations"]["description"] == (
        f"run {run_id}, launched by hand (command line, UI or API)\n"
        "step postgres_backup refused: cannot back up partition 2026-11-20: a backup records "
        "the database as it is now; materialize a recent partition"
    )
    assert "Status: a notice of" in post["text"]
    assert "sent once; nothing will resolve it" in post["text"]
    held = redis.Redis.from_url(private_redis.url).keys(f"{PREFIX}alerts:alert:*")
    assert held == []  # nothing waits for a resolution that cannot come


def test_real_failure_of_last_nights_backup_still_pages_critical(channels, routes, tmp_path: Path):
    slack, webhook, resources = channels
    partitions = daily_partitions("UTC")
    yesterday = last_complete_partition(partitions, datetime.now(UTC))
    unreachable = "postgresql://karen:db-Secret-9@127.0.0.1:1/karen"
    defs = dg.Definitions(
        assets=build_backup_assets(partitions),
        resources={
            "postgres": PostgresResource(database_url=unreachable),
            "backup_store": BackupStoreResource(url=(tmp_path / "backups").as_uri()),
        },
    )
    with dg.DagsterInstance.ephemeral() as instance:
        _materialize(defs, instance, "postgres_backup", yesterday)
        _ticks(run_failure_alerts, instance, resources)

    assert webhook.posts == []
    [post] = slack.posts
    text = post.json()["text"]
    assert text.startswith("*[FIRING:1] DagsterRunFailed (critical, P1: respond within 1 hour)*")
    assert "Impact: last night's backup or its verification is missing" in text
    assert (
        "step postgres_backup failed: could not back up database karen on 127.0.0.1:1 during "
        "connect: could not connect to database karen on 127.0.0.1:1"
    ) in text
    assert "db-Secret-9" not in text


def test_backup_failing_in_the_store_alerts_with_its_database_and_phase(
    channels, routes, service_server: Server, tmp_path: Path
):
    slack, _, resources = channels
    yesterday = last_complete_partition(daily_partitions("UTC"), datetime.now(UTC))
    # A file where the store's folder should be: the first upload cannot create its folder.
    blocked = tmp_path / "backups"
    blocked.write_text("not a folder")
    with service_server.database() as source:
        defs = dg.Definitions(
            assets=build_backup_assets(daily_partitions("UTC")),
            resources={
                "postgres": PostgresResource(database_url=service_server.url(source.dbname)),
                "backup_store": BackupStoreResource(url=blocked.as_uri()),
            },
        )
        with dg.DagsterInstance.ephemeral() as instance:
            _materialize(defs, instance, "postgres_backup", yesterday)
            _ticks(run_failure_alerts, instance, resources)

    [post] = slack.posts
    assert (
        f"step postgres_backup failed: could not back up database {source.describe()} during "
        f"dump: could not write to backup store {blocked.as_uri()}: Not a directory; check "
        "that KAREN_BACKUP_URL names a writable folder\n"
    ) in post.json()["text"]


@dg.asset
def restore_chats() -> None:
    with expected_failures():
        try:
            raise RestoreError("pg_restore: error: CREATE USER MAPPING ... password 'db-Secret-9'")
        except RestoreError as exc:
            raise RestoreError("could not restore backup b1 into karen: permission denied") from exc


def test_outer_error_is_quoted_not_the_unfiltered_one_it_was_raised_from(channels, routes):
    _, webhook, resources = channels
    defs = dg.Definitions(assets=[restore_chats])
    with dg.DagsterInstance.ephemeral() as instance:
        _materialize(defs, instance, "restore_chats")
        _ticks(run_failure_alerts, instance, resources)

    [alert] = _alerts(webhook)
    assert alert["annotations"]["description"].endswith(
        "step restore_chats failed: could not restore backup b1 into karen: permission denied"
    )
    assert all(b"db-Secret" not in post.body for post in webhook.posts)


@dg.asset(check_specs=[dg.AssetCheckSpec("no_invalid_indexes", asset="table_health")])
def table_health() -> dg.MaterializeResult:
    check = dg.AssetCheckResult(
        check_name="no_invalid_indexes", passed=False, severity=dg.AssetCheckSeverity.WARN
    )
    return dg.MaterializeResult(check_results=[check])


def test_failed_check_without_description_says_so_and_where_to_look(channels, routes):
    _, webhook, resources = channels
    defs = dg.Definitions(assets=[table_health])
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize([table_health], instance=instance)
        _ticks(asset_check_alerts, instance, resources, repository=defs.get_repository_def())

    [alert] = _alerts(webhook)
    assert alert["annotations"]["description"] == (
        "check no_invalid_indexes on table_health failed; its result carries no description, "
        "see http://ui:3000/assets/table_health"
    )
