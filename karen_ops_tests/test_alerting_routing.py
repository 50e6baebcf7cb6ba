"""Routing, grouping, repeats and resolutions, against real local receivers."""

from __future__ import annotations

import email
import json
from dataclasses import replace
from datetime import date

import pytest

from karen_ops.alerting.channels.http import RetryPolicy
from karen_ops.alerting.channels.smtp import EmailChannel, SmtpServer
from karen_ops.alerting.channels.webhook import SlackChannel, WebhookChannel
from karen_ops.alerting.notifier import Notifier
from karen_ops.alerting.routing import load_alerting_config, parse_alerting_config
from karen_ops.alerting.state import MemoryAlertStore
from karen_ops.errors import ConfigurationError
from karen_ops_tests.alerting_fixtures import Clock, make_alert

FAST = RetryPolicy(attempts=2, backoff_seconds=0.05, max_wait_seconds=1)


def _channels(slack, webhook, smtp_inbox=None):
    found = {"slack": SlackChannel(slack.url, FAST), "webhook": WebhookChannel(webhook.url, FAST)}
    if smtp_inbox is not None:
        server = SmtpServer.parse(smtp_inbox.url)
        found["email"] = EmailChannel(server, "karen-ops@example.org", ("oncall@example.org",))
    return found


def test_thirty_failing_partitions_make_one_message_per_route(receiver_factory, smtp_inbox):
    slack, webhook = receiver_factory(), receiver_factory()
    clock = Clock()
    notifier = Notifier(
        parse_alerting_config({}), _channels(slack, webhook, smtp_inbox), MemoryAlertStore(),
        clock=clock,
    )  # fmt: skip
    days = [f"2026-02-{day:02d}" for day in range(1, 29)] + ["2026-03-01", "2026-03-02"]
    notifier.observe(make_alert(job="nightly_backup", partition=day) for day in days)
    notifier.observe([make_alert("TableHealthWarning", "info", asset="table_health")])

    report = notifier.flush()

    assert sorted(channel for channel, _ in report.sent) == ["email", "slack", "webhook"]
    assert len(slack.posts) == 1
    assert (
        slack.posts[0]
        .json()["text"]
        .startswith(
            "*[FIRING:30] BackupRunFailed (critical, P1: respond within 1 hour)*\n"
            "What: 30 alerts of BackupRunFailed\n"
        )
    )
    assert len(smtp_inbox.messages) == 1
    subject = email.message_from_bytes(smtp_inbox.messages[0].content)["Subject"]
    assert subject == "[FIRING:30] BackupRunFailed (critical, P1: respond within 1 hour)"
    assert [a["labels"]["alertname"] for a in webhook.posts[0].json()["alerts"]] == [
        "TableHealthWarning"
    ]

    clock.now += 60
    assert notifier.flush().sent == []
    assert len(slack.posts) == 1


def test_firing_group_is_repeated_after_the_repeat_interval_only(receiver_factory):
    slack, webhook = receiver_factory(), receiver_factory()
    clock = Clock()
    notifier = Notifier(
        parse_alerting_config({}), _channels(slack, webhook), MemoryAlertStore(), clock=clock
    )
    notifier.observe([make_alert("BackupStale", "info")])
    notifier.flush()

    clock.now += 3599
    notifier.observe([make_alert("BackupStale", "info")])
    notifier.flush()
    assert len(webhook.posts) == 1

    clock.now += 1
    notifier.flush()
    assert len(webhook.posts) == 2
    assert webhook.posts[1].json()["status"] == "firing"


def test_resolution_is_sent_once_with_its_duration_then_forgotten(receiver_factory):
    slack, webhook = receiver_factory(), receiver_factory()
    clock = Clock()
    store = MemoryAlertStore()
    notifier = Notifier(parse_alerting_config({}), _channels(slack, webhook), store, clock=clock)
    alert = make_alert("CheckFailed", "info", check="no_invalid_indexes")
    notifier.observe([alert])
    notifier.flush()

    clock.now += 400
    notifier.observe([alert.resolved(alert.starts_at + 500, "index rebuilt")])
    notifier.flush()
    clock.now += 4000
    notifier.flush()

    assert [post.json()["status"] for post in webhook.posts] == ["firing", "resolved"]
    assert webhook.posts[1].json()["text"] == (
        "Resolved: 1 alert(s) of CheckFailed\n"
        "- CheckFailed check=no_invalid_indexes: resolved at 2027-01-15 08:08:20 UTC after "
        "8m 20s; cause: index rebuilt"
    )
    assert store.alerts() == {}


def test_one_failing_channel_does_not_stop_the_others_and_is_retried(receiver_factory):
    slack, webhook = receiver_factory(), receiver_factory()
    slack.always = 500
    clock = Clock()
    config = parse_alerting_config(
        {"routes": [{"name": "all", "channels": ["slack", "webhook"], "group_wait_seconds": 0}]}
    )
    notifier = Notifier(config, _channels(slack, webhook), MemoryAlertStore(), clock=clock)
    notifier.observe([make_alert(partition="2026-03-01")])

    report = notifier.flush()

    assert [channel for channel, _ in report.sent] == ["webhook"]
    assert [channel for channel, _ in report.failed] == ["slack"]
    assert len(webhook.posts) == 1

    slack.always = 200
    clock.now += 30
    report = notifier.flush()
    assert [channel for channel, _ in report.sent] == ["slack"]
    assert len(webhook.posts) == 1
    assert len(slack.posts) == 3  # two failed attempts, then the delivery


def test_routes_from_settings_file_replace_the_defaults(receiver_factory):
    slack, webhook = receiver_factory(), receiver_factory()
    config = parse_alerting_config(
        {
            "defaults": {"group_by": ["alertname", "partition"], "group_wait_seconds": 0},
            "routes": [
                {"name": "backups", "match": {"job": "nightly_backup"}, "channels": ["webhook"]},
                {"name": "rest", "channels": ["slack"]},
            ],
        }
    )
    notifier = Notifier(config, _channels(slack, webhook), MemoryAlertStore(), clock=Clock())
    notifier.observe(
        [make_alert(job="nightly_backup", partition=d) for d in ("2026-03-01", "2026-03-02")]
    )
    notifier.observe([make_alert(job="weekly_maintenance")])

    notifier.flush()

    assert sorted(json.loads(p.body)["groupKey"] for p in webhook.posts) == [
        "backups:{alertname=BackupRunFailed,partition=2026-03-01}",
        "backups:{alertname=BackupRunFailed,partition=2026-03-02}",
    ]
    assert len(slack.posts) == 1


def test_alert_that_recovers_before_anyone_was_told_sends_nothing(receiver_factory):
    slack, webhook = receiver_factory(), receiver_factory()
    clock = Clock()
    config = parse_alerting_config({"defaults": {"group_wait_seconds": 60}, "routes": [
        {"name": "all", "channels": ["webhook"]}]})  # fmt: skip
    notifier = Notifier(config, _channels(slack, webhook), MemoryAlertStore(), clock=clock)
    alert = make_alert()
    notifier.observe([alert])
    notifier.flush()
    notifier.observe([replace(alert.resolved(clock.now))])
    clock.now += 120

    notifier.flush()

    assert webhook.posts == []


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("critical_jobs: nightly_backup", "alerting.critical_jobs in {config} must be a list of "
         "names, not a string; write it as a list, even of one: critical_jobs: [nightly_backup]"),
        ("critical_assets: [postgres_backup, 7]", "alerting.critical_assets in {config} must "
         "hold only names, and one of its items is not a name; write it as a list, even of one: "
         "critical_assets: [postgres_backup, backup_verification]"),
        ("defaults: {group_by: job}", "alerting.defaults.group_by in {config} must be a list of "
         "names, not a string; write it as a list, even of one: group_by: [alertname]"),
        ("routes: [{name: all, channels: email}]", "alerting.routes[0].channels in {config} "
         "must be a list of names, not a string; write it as a list, even of one: "
         "channels: [email, slack]"),
        ("defaults: {group_wait_seconds: .nan}", "alerting.defaults.group_wait_seconds in "
         "{config} must be a finite number of zero or more, not .nan; write it as "
         "group_wait_seconds: 0, for example"),
        ("routes: [{name: all, channels: [email], repeat_interval_seconds: .inf}]",
         "alerting.routes[0].repeat_interval_seconds in {config} must be a finite number of "
         "zero or more, not .inf; write it as repeat_interval_seconds: 3600, for example"),
        ("stale_backup_hours: -1", "alerting.stale_backup_hours in {config} must be a finite "
         "number of zero or more, not -1; write it as stale_backup_hours: 26, for example"),
        ("routes: []", "alerting.routes in {config} is empty, so no alert would go anywhere; "
         "list at least one route, or remove routes: to use the default routes"),
        ("defaults: [1]", "alerting.defaults in {config} must be a mapping, not a list; write "
         "it as defaults: {{group_by: [alertname], group_wait_seconds: 0}}"),
        ("routes: [{name: all, channels: [email], match: [severity]}]", "alerting.routes[0]"
         ".match in {config} must be a mapping, not a list; write it as match: "
         "{{severity: critical}}"),
        ("routes: [{name: all, channels: [email], match: {severity: true}}]", "alerting."
         "routes[0].match in {config} must map each label to the one value it must have; write "
         "it as match: {{severity: critical}}, quoting values such as 'true' or '1.5'"),
        ("routes: [{name: all, channels: [email], continue: 'no'}]", "alerting.routes[0]"
         ".continue in {config} must be true or false, not a string; write true or false"),
        ("routes: [{name: a, channels: [email]}, {name: a, channels: [slack]}]", "alerting."
         "routes in {config} has more than one route named a; give every route a name of its "
         "own"),
        ("defaults: {continue: true}", "unknown setting(s) continue in alerting.defaults in "
         "{config}; known settings are group_by, group_interval_seconds, group_wait_seconds, "
         "repeat_interval_seconds"),
        # A webhook URL pasted where it does not belong is counted, never quoted.
        ("routes: [{name: all, channels: [slack], https://hooks.example/T0/B0/Secret9}]",
         "unknown setting(s) 1 key(s) that are not names in alerting.routes[0] in {config}; "
         "known settings are channels, continue, group_by, group_interval_seconds, "
         "group_wait_seconds, match, name, repeat_interval_seconds"),
        ("routes: [{name: all, channels: [emial, 'https://hooks.example/T0/B0/Secret9']}]",
         "alerting.routes[0].channels in {config} names unknown channel(s) emial, 1 that are "
         "not channel names; channels are slack, email, webhook, alertmanager"),
    ],
)  # fmt: skip
def test_malformed_alert_setting_is_refused_naming_it_the_file_and_the_fix(
    tmp_path, monkeypatch, section, expected
):
    config = tmp_path / "karen-ops.yaml"
    config.write_text(f"alerting:\n  {section}\n")
    monkeypatch.setenv("KAREN_OPS_CONFIG", str(config))

    with pytest.raises(ConfigurationError) as raised:
        load_alerting_config()

    assert str(raised.value) == expected.format(config=config)


def test_label_values_written_as_yaml_numbers_or_dates_match_their_text():
    config = parse_alerting_config(
        {
            "routes": [
                {"name": "day", "channels": ["webhook"], "match": {"partition": date(2026, 3, 1)}}
            ]
        }
    )

    assert config.routes[0].matches(make_alert(partition="2026-03-01"))
