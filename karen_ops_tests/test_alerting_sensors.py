"""The alerting sensors against a real Dagster instance, a private Redis and local receivers,
one test per cursor scenario."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import requests
import yaml

from karen_ops.alerting.definitions import build_definitions
from karen_ops.alerting.resource import AlertingResource
from karen_ops.alerting.sensors import (
    asset_check_alerts,
    run_failure_alerts,
    stale_backup_alert_sensor,
)
from karen_ops.alerting.ticks import TickCursor
from karen_ops.errors import ConfigurationError
from karen_ops.resources.redis import RedisResource
from karen_ops.settings import ScheduleSettings

DB_URL = "postgresql://karen:db-Secret-9@db.internal:5432/karen"


@pytest.fixture
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Writes the alerting section of a KAREN_OPS_CONFIG file: everything to the webhook."""

    def write(**alerting) -> None:
        # No group interval: a change to a group goes out on the very next tick.
        route = {"name": "all", "channels": ["webhook"], "group_interval_seconds": 0}
        section = {"routes": [route], **alerting}
        path = tmp_path / "karen-ops.yaml"
        path.write_text(yaml.safe_dump({"alerting": section}))
        monkeypatch.setenv("KAREN_OPS_CONFIG", str(path))

    write()
    return write


def _health_defs(outcome: dict[str, bool]) -> dg.Definitions:
    @dg.asset(
        name="table_health",
        check_specs=[dg.AssetCheckSpec("no_invalid_indexes", asset="table_health")],
    )
    def table_health():
        passed = outcome["passed"]
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(
                    check_name="no_invalid_indexes",
                    passed=passed,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=None if passed else f"1 invalid index(es) on {DB_URL}",
                )
            ]
        )

    return dg.Definitions(assets=[table_health])


def _resources(receiver, redis_url: str, pushgateway: str | None = None) -> dict[str, object]:
    alerting = AlertingResource(
        webhook_url=receiver.url,
        # Credentials in the UI's URL stay out of every link an alert carries.
        dagster_ui_url="http://admin:ui-Secret-7@ui:3000/",
        pushgateway_url=pushgateway,
    )
    return {
        "alerting": alerting,
        "redis": RedisResource(url=redis_url, key_prefix="karen-ops-test:"),
    }


def _tick(sensor, instance, defs, resources, cursor):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        repository_def=defs.get_repository_def(),
        resources=resources,
    )
    result = sensor(context)
    return result.cursor


def test_non_blocking_error_check_alerts_once_then_resolves_once(
    receiver_factory, private_redis, settings_file
):
    webhook = receiver_factory()
    outcome = {"passed": False}
    defs = _health_defs(outcome)
    resources = _resources(webhook, private_redis.url)
    with dg.DagsterInstance.ephemeral() as instance:
        run = dg.materialize(defs.assets, instance=instance)
        assert run.success  # a failed non-blocking check does not fail its run

        cursor = _tick(asset_check_alerts, instance, defs, resources, None)
        cursor = _tick(asset_check_alerts, instance, defs, resources, cursor)
        assert len(webhook.posts) == 1
        firing = webhook.posts[0].json()
        assert firing["status"] == "firing"
        assert firing["alerts"][0]["labels"] == {
            "alertname": "AssetCheckFailed",
            "severity": "critical",
            "asset": "table_health",
            "check": "no_invalid_indexes",
        }
        assert firing["alerts"][0]["annotations"]["description"] == (
            "1 invalid index(es) on postgresql://karen:***@db.internal:5432/karen"
        )
        assert firing["alerts"][0]["generatorURL"] == "http://ui:3000/assets/table_health"

        outcome["passed"] = True
        dg.materialize(defs.assets, instance=instance)
        cursor = _tick(asset_check_alerts, instance, defs, resources, cursor)
        _tick(asset_check_alerts, instance, defs, resources, cursor)

    assert [p.json()["status"] for p in webhook.posts] == ["firing", "resolved"]
    assert all(b"db-Secret-9" not in p.body for p in webhook.posts)
    assert all(b"ui-Secret-7" not in p.body for p in webhook.posts)


def test_first_tick_without_cursor_reads_existing_evaluations_once(
    receiver_factory, private_redis, settings_file
):
    webhook = receiver_factory()
    defs = _health_defs({"passed": False})
    resources = _resources(webhook, private_redis.url)
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize(defs.assets, instance=instance)
        dg.materialize(defs.assets, instance=instance)

        cursor = _tick(asset_check_alerts, instance, defs, resources, None)

        assert TickCursor.parse(cursor).after_id is not None
        assert TickCursor.parse(cursor).fallback is None
    assert len(webhook.posts) == 1
    assert len(webhook.posts[0].json()["alerts"]) == 1


def _failed_backup_run(instance: dg.DagsterInstance, day: str) -> tuple[dg.DagsterRun, object]:
    run = instance.add_run(
        dg.DagsterRun(
            job_name="nightly_backup",
            run_id=f"run-{day}",
            tags={"dagster/partition": day},
            status=dg.DagsterRunStatus.FAILURE,
        )
    )
    return run, instance.report_run_failed(run, message=f"could not reach {DB_URL}")


def test_thirty_failed_backfill_runs_become_one_message_per_route(
    receiver_factory, private_redis, settings_file, smtp_inbox
):
    slack, webhook = receiver_factory(), receiver_factory()
    settings_file(routes=[
        {"name": "critical", "match": {"severity": "critical"}, "channels": ["email", "slack"]},
        {"name": "default", "channels": ["webhook"]},
    ])  # fmt: skip
    resources = {
        "alerting": AlertingResource(
            slack_webhook_url=slack.url,
            webhook_url=webhook.url,
            smtp_url=smtp_inbox.url,
            email_to="oncall@example.org",
            email_from="karen-ops@example.org",
        ),
        "redis": RedisResource(url=private_redis.url),
    }
    defs = dg.Definitions(sensors=[run_failure_alerts])
    days = [f"2026-01-{day:02d}" for day in range(1, 31)]
    with dg.DagsterInstance.ephemeral() as instance:
        for day in days:
            _failed_backup_run(instance, day)
        _tick(run_failure_alerts, instance, defs, resources, None)

    assert len(slack.posts) == 1
    assert len(smtp_inbox.messages) == 1
    assert webhook.posts == []
    text = slack.posts[0].json()["text"]
    assert text.startswith("*[FIRING:30] DagsterRunFailed (critical, P1: respond within 1 hour)*")
    assert "- job nightly_backup failed for partition 2026-01-01" in text
    assert "- and 20 more" in text
    assert "db-Secret-9" not in text


def test_redis_stopped_midway_alerts_still_go_out_and_outage_is_reported(
    receiver_factory, private_redis, settings_file
):
    webhook = receiver_factory()
    outcome = {"passed": False}
    defs = _health_defs(outcome)
    resources = _resources(webhook, private_redis.url)
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize(defs.assets, instance=instance)
        cursor = _tick(asset_check_alerts, instance, defs, resources, None)
        assert len(webhook.posts) == 1

        private_redis.stop()
        outcome["passed"] = True
        dg.materialize(defs.assets, instance=instance)
        cursor = _tick(asset_check_alerts, instance, defs, resources, cursor)
        cursor = _tick(asset_check_alerts, instance, defs, resources, cursor)
        _tick(run_failure_alerts, instance, defs, resources, None)

    assert len(webhook.posts) == 2
    outage = webhook.posts[1].json()
    assert [a["labels"]["alertname"] for a in outage["alerts"]] == ["AlertStateUnavailable"]
    assert outage["alerts"][0]["annotations"]["summary"].startswith(
        "alert state in redis://127.0.0.1:"
    )
    assert TickCursor.parse(cursor).fallback is not None


def _succeeded_backup_run(instance: dg.DagsterInstance, day: str) -> dg.DagsterRun:
    run = instance.add_run(
        dg.DagsterRun(
            job_name="nightly_backup",
            tags={"dagster/partition": day},
            status=dg.DagsterRunStatus.STARTED,
        )
    )
    success = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name="nightly_backup"
    )
    instance.report_dagster_event(success, run_id=run.run_id)
    return run


def _delivery_failures(gateway: str) -> dict[str, float]:
    counts = {}
    for line in requests.get(f"{gateway}/metrics", timeout=5).text.splitlines():
        if line.startswith("karen_ops_alert_delivery_failures_total{"):
            assert 'dagster_sensor="run_failure_alerts"' in line
            channel = line.split('channel="', 1)[1].split('"', 1)[0]
            counts[channel] = float(line.rsplit(" ", 1)[1])
    return counts


def _alert_names(posts) -> list[str]:
    return sorted(a["labels"]["alertname"] for p in posts for a in p.json()["alerts"])


def test_failed_run_without_redis_or_channels_is_kept_until_a_channel_takes_it(
    receiver_factory, settings_file, pushgateway
):
    webhook = receiver_factory()
    webhook.always = 503  # the only channel refuses, and Redis is not there either
    resources = _resources(webhook, "redis://127.0.0.1:1/0", pushgateway)
    defs = dg.Definitions(sensors=[run_failure_alerts])
    with dg.DagsterInstance.ephemeral() as instance:
        _failed_backup_run(instance, "2026-01-01")
        cursor = _tick(run_failure_alerts, instance, defs, resources, None)  # no raise
        refused = len(webhook.posts)
        assert refused >= 1

        webhook.always = 200
        cursor = _tick(run_failure_alerts, instance, defs, resources, cursor)
        delivered = webhook.posts[refused:]
        _tick(run_failure_alerts, instance, defs, resources, cursor)

    assert _alert_names(delivered) == ["AlertStateUnavailable", "DagsterRunFailed"]
    assert len(webhook.posts) == refused + len(delivered)  # the third tick sent nothing again
    # Both groups (the run and the outage) were refused once, and that is counted.
    assert _delivery_failures(pushgateway) == {"webhook": 2.0}
    failed = next(a for p in delivered for a in p.json()["alerts"] if "job" in a["labels"])
    assert failed["labels"]["partition"] == "2026-01-01"
    assert "could not reach postgresql://karen:***@db.internal" in str(failed["annotations"])
    assert all(b"db-Secret-9" not in p.body for p in webhook.posts)


def test_failed_run_recovering_while_redis_is_away_fires_then_resolves_once(
    receiver_factory, settings_file
):
    webhook = receiver_factory()
    resources = _resources(webhook, "redis://127.0.0.1:1/0")
    defs = dg.Definitions(sensors=[run_failure_alerts])
    with dg.DagsterInstance.ephemeral() as instance:
        _failed_backup_run(instance, "2026-01-01")
        cursor = _tick(run_failure_alerts, instance, defs, resources, None)
        _succeeded_backup_run(instance, "2026-01-01")
        _tick(run_failure_alerts, instance, defs, resources, cursor)

    statuses = [
        (a["labels"]["alertname"], a["status"]) for p in webhook.posts for a in p.json()["alerts"]
    ]
    assert statuses.count(("DagsterRunFailed", "firing")) == 1
    assert statuses.count(("DagsterRunFailed", "resolved")) == 1


def test_runs_are_read_in_order_so_a_failure_and_its_retry_between_ticks_stay_quiet(
    receiver_factory, private_redis, settings_file
):
    webhook = receiver_factory()
    resources = _resources(webhook, private_redis.url)
    defs = dg.Definitions(sensors=[run_failure_alerts])
    with dg.DagsterInstance.ephemeral() as instance:
        cursor = _tick(run_failure_alerts, instance, defs, resources, None)
        _failed_backup_run(instance, "2026-01-01")
        _succeeded_backup_run(instance, "2026-01-01")  # the retry succeeded before the tick
        _failed_backup_run(instance, "2026-01-02")
        cursor = _tick(run_failure_alerts, instance, defs, resources, cursor)
        _tick(run_failure_alerts, instance, defs, resources, cursor)

    alerts = [a for p in webhook.posts for a in p.json()["alerts"]]
    assert [(a["labels"]["partition"], a["status"]) for a in alerts] == [("2026-01-02", "firing")]


def test_a_misconfigured_channel_leaves_the_others_delivering(
    receiver_factory, private_redis, settings_file, monkeypatch, capsys
):
    monkeypatch.setenv("KAREN_SMTP_URL", "smtp://127.0.0.1:2525")  # and no recipients
    webhook = receiver_factory()
    settings_file(routes=[{"name": "all", "channels": ["email", "webhook"]}])
    resources = _resources(webhook, private_redis.url)
    defs = dg.Definitions(sensors=[run_failure_alerts])
    with dg.DagsterInstance.ephemeral() as instance:
        _failed_backup_run(instance, "2026-01-01")
        _tick(run_failure_alerts, instance, defs, resources, None)

    assert _alert_names(webhook.posts) == ["DagsterRunFailed"]
    assert "alert channel email left out: KAREN_SMTP_URL is set but KAREN_ALERT_EMAIL_TO" in (
        capsys.readouterr().err
    )


def test_only_the_run_sensor_reports_an_outage_of_the_alert_state(receiver_factory, settings_file):
    webhook = receiver_factory()
    resources = _resources(webhook, "redis://127.0.0.1:1/0")
    defs = _health_defs({"passed": False})
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize(defs.assets, instance=instance)
        _tick(asset_check_alerts, instance, defs, resources, None)
        _tick(run_failure_alerts, instance, defs, resources, None)

    assert _alert_names(webhook.posts) == ["AlertStateUnavailable", "AssetCheckFailed"]


def test_alert_held_in_redis_resolves_after_redis_comes_back(
    receiver_factory, private_redis, settings_file
):
    webhook = receiver_factory()
    outcome = {"passed": False}
    defs = _health_defs(outcome)
    resources = _resources(webhook, private_redis.url)
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize(defs.assets, instance=instance)
        cursor = _tick(asset_check_alerts, instance, defs, resources, None)

        private_redis.stop(keep_data=True)  # the firing alert stays in Redis's data
        outcome["passed"] = True
        dg.materialize(defs.assets, instance=instance)
        cursor = _tick(asset_check_alerts, instance, defs, resources, cursor)
        while_away = len(webhook.posts)

        private_redis.start()
        cursor = _tick(asset_check_alerts, instance, defs, resources, cursor)
        _tick(asset_check_alerts, instance, defs, resources, cursor)

    def check_statuses(posts):
        return [
            a["status"]
            for p in posts
            for a in p.json()["alerts"]
            if a["labels"]["alertname"] == "AssetCheckFailed"
        ]

    assert check_statuses(webhook.posts[:while_away]) == ["firing"]
    assert check_statuses(webhook.posts[while_away:]) == ["resolved"]
    assert TickCursor.parse(cursor).fallback is None


def test_stale_verified_backup_is_critical_p0_and_resolves_when_fresh(
    receiver_factory, private_redis, settings_file
):
    webhook = receiver_factory()
    resources = _resources(webhook, private_redis.url)
    defs = dg.Definitions(sensors=[stale_backup_alert_sensor])
    with dg.DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization("backup_verification", metadata={"verified": True})
        )
        settings_file(stale_backup_hours=0)
        cursor = _tick(stale_backup_alert_sensor, instance, defs, resources, None)
        settings_file(stale_backup_hours=26)
        _tick(stale_backup_alert_sensor, instance, defs, resources, cursor)

    firing, resolved = (p.json() for p in webhook.posts)
    alert = firing["alerts"][0]
    assert alert["labels"] == {
        "alertname": "VerifiedBackupStale",
        "severity": "critical",
        "asset": "backup_verification",
    }
    assert alert["annotations"]["incident_level"] == "P0"
    assert alert["annotations"]["response_time"] == "15 minutes"
    assert resolved["status"] == "resolved"


def test_alerting_definitions_hold_the_sensors_and_resources():
    defs = build_definitions(ScheduleSettings())

    assert sorted(s.name for s in defs.sensors) == [
        "asset_check_alerts",
        "run_failure_alerts",
        "stale_backup_alert",
    ]
    assert sorted(defs.resources) == ["alerting"]  # redis is shared, from the root


def _asset_run(instance, assets: list[str], day: str, *, failed: bool) -> dg.DagsterRun:
    """A run of hand-picked assets, filed by Dagster under its hidden asset job."""
    run = instance.add_run(
        dg.DagsterRun(
            job_name="__ASSET_JOB",
            tags={"dagster/partition": day},
            asset_selection=frozenset(dg.AssetKey(asset) for asset in assets),
            status=dg.DagsterRunStatus.STARTED,
        )
    )
    if failed:
        instance.report_run_failed(run, message="could not finish")
    else:
        outcome = dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name="__ASSET_JOB"
        )
        instance.report_dagster_event(outcome, run_id=run.run_id)
    return run


def test_runs_of_hand_picked_assets_alert_and_resolve_each_on_its_own(
    receiver_factory, private_redis, settings_file
):
    webhook = receiver_factory()
    resources = _resources(webhook, private_redis.url)
    defs = dg.Definitions(sensors=[run_failure_alerts])
    day = "2026-12-03"
    with dg.DagsterInstance.ephemeral() as instance:
        _asset_run(instance, ["backup_verification", "postgres_backup"], day, failed=True)
        cursor = _tick(run_failure_alerts, instance, defs, resources, None)
        _asset_run(instance, ["config_backup"], day, failed=True)
        cursor = _tick(run_failure_alerts, instance, defs, resources, cursor)
        _asset_run(instance, ["user_growth"], day, failed=False)  # unrelated: resolves nothing
        cursor = _tick(run_failure_alerts, instance, defs, resources, cursor)
        _asset_run(instance, ["config_backup"], day, failed=False)
        _tick(run_failure_alerts, instance, defs, resources, cursor)

    # A notification carries its whole group: every alert of the group, firing or resolved.
    alerts = [a for p in webhook.posts for a in p.json()["alerts"]]
    backup = [a for a in alerts if a["labels"]["assets"] == "backup_verification,postgres_backup"]
    config = [a for a in alerts if a["labels"]["assets"] == "config_backup"]
    assert {a["status"] for a in backup} == {"firing"}  # no other run resolved it
    assert {a["labels"]["severity"] for a in backup} == {"critical"}
    statuses = [a["status"] for a in config]
    assert (statuses[0], statuses[-1]) == ("firing", "resolved")
    assert "user_growth" not in str(alerts)
    assert backup[0]["annotations"]["summary"] == (
        f"materialization of backup_verification, postgres_backup failed for partition {day}"
    )
    assert backup[0]["annotations"]["impact"].startswith("last night's backup")


def test_two_deployments_on_one_redis_keep_their_alerts_apart(
    receiver_factory, private_redis, settings_file, monkeypatch
):
    webhook = receiver_factory()
    defs = _health_defs({"passed": False})
    # Deployment A has no channel yet: its failed check is stored, waiting for one.
    silent = {"alerting": AlertingResource(), "redis": RedisResource(url=private_redis.url)}
    # Deployment B, on the same Redis, has a webhook and nothing failing of its own.
    heard = {
        "alerting": AlertingResource(webhook_url=webhook.url),
        "redis": RedisResource(url=private_redis.url),
    }
    with dg.DagsterInstance.ephemeral() as a, dg.DagsterInstance.ephemeral() as b:
        dg.materialize(defs.assets, instance=a)
        monkeypatch.setenv("KAREN_REDIS_KEY_PREFIX", "karen-ops-a:")
        cursor = _tick(asset_check_alerts, a, defs, silent, None)
        _tick(asset_check_alerts, a, defs, silent, cursor)

        monkeypatch.setenv("KAREN_REDIS_KEY_PREFIX", "karen-ops-b:")
        cursor = _tick(asset_check_alerts, b, defs, heard, None)
        _tick(asset_check_alerts, b, defs, heard, cursor)

    assert webhook.posts == []
    stored = RedisResource(url=private_redis.url).client().keys("*")
    assert stored and all(key.startswith(b"karen-ops-a:alerts:") for key in stored)


@pytest.mark.parametrize("prefix", ["karen[prod]:", "karen-*:", "karen ops:"])
def test_a_key_prefix_that_would_be_a_scan_pattern_is_refused(prefix):
    with pytest.raises(ConfigurationError) as raised:
        RedisResource(key_prefix=prefix).prefix()

    assert str(raised.value) == (
        "KAREN_REDIS_KEY_PREFIX may hold only letters, digits and _ . : -, such as "
        "karen-ops-staging:; change it"
    )
