"""Each channel against a real local receiver: Slack and webhooks over HTTP, email over SMTP
with STARTTLS and authentication, Alertmanager's v2 API."""

from __future__ import annotations

import email
import time
from dataclasses import replace

import pytest
import requests

from karen_ops.alerting.channels.alertmanager import AlertmanagerChannel
from karen_ops.alerting.channels.http import RetryPolicy
from karen_ops.alerting.channels.smtp import EmailChannel, SmtpServer
from karen_ops.alerting.channels.webhook import SlackChannel, WebhookChannel
from karen_ops.alerting.messages import Notification, redact
from karen_ops.errors import DeliveryError
from karen_ops_tests.alerting_fixtures import SMTP_PASSWORD, make_alert

# The receivers, SMTP server and Prometheus components these tests talk to.

FAST = RetryPolicy(attempts=3, backoff_seconds=0.05, max_wait_seconds=5)


def _notification(*alerts) -> Notification:
    return Notification("critical", "critical:{alertname=BackupRunFailed}", tuple(alerts), ())


def test_webhook_answering_429_is_retried_after_its_retry_after(receiver_factory):
    receiver = receiver_factory()
    receiver.script = [(429, {"Retry-After": "1"})]

    WebhookChannel(receiver.url, FAST).send(_notification(make_alert(partition="2026-03-01")))

    assert len(receiver.posts) == 2
    assert receiver.posts[1].at - receiver.posts[0].at >= 1.0
    delivered = receiver.posts[1].json()
    assert delivered["status"] == "firing"
    assert delivered["alerts"][0]["labels"] == {
        "alertname": "BackupRunFailed",
        "severity": "critical",
        "partition": "2026-03-01",
    }


def test_webhook_gives_times_as_alertmanager_does(receiver_factory):
    receiver = receiver_factory()
    started = replace(make_alert(), starts_at=1796349603.12)
    ended = replace(make_alert(partition="2026-03-01"), starts_at=1796349603.0)

    notification = Notification("default", "default:{}", (started,), (ended.resolved(1796353203),))
    WebhookChannel(receiver.url, FAST).send(notification)

    [firing, resolved] = receiver.posts[0].json()["alerts"]
    assert (firing["startsAt"], firing["endsAt"]) == (
        "2026-12-04T02:00:03.120Z",
        "0001-01-01T00:00:00Z",
    )
    assert resolved["endsAt"] == "2026-12-04T03:00:03.000Z"


def test_webhook_that_keeps_failing_raises_after_bounded_retries_without_its_token(
    receiver_factory,
):
    receiver = receiver_factory()
    receiver.always = 503

    with pytest.raises(DeliveryError) as raised:
        WebhookChannel(receiver.url, FAST).send(_notification(make_alert()))

    assert len(receiver.posts) == 3
    port = receiver.url.split(":")[2].split("/")[0]
    assert str(raised.value).startswith(
        f"could not deliver to webhook at http://127.0.0.1:{port}: HTTP 503 ok;"
    )
    assert "T0KEN" not in str(raised.value)


def test_slack_message_has_title_and_body_without_password(receiver_factory):
    receiver = receiver_factory()

    SlackChannel(receiver.url, FAST).send(_notification(make_alert(partition="2026-03-01")))

    text = receiver.posts[0].json()["text"]
    assert text.startswith(
        "*[FIRING:1] BackupRunFailed (critical, P1: respond within 1 hour)*\n"
        "What: BackupRunFailed partition=2026-03-01\n"
        "Impact: last night's backup is missing\n"
    )
    assert "postgresql://backup:***@db:5432/karen" in text
    assert "pg-Secret-7" not in receiver.posts[0].body.decode()


def test_alertmanager_v2_api_receives_labels_and_annotations(alertmanager):
    # Alertmanager refuses alerts that start in the future.
    alert = replace(make_alert(job="nightly_backup", partition="2026-03-01"), starts_at=time.time())

    AlertmanagerChannel(alertmanager, FAST).send(_notification(alert))

    stored = requests.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
    assert len(stored) == 1
    assert stored[0]["labels"] == {
        "alertname": "BackupRunFailed",
        "severity": "critical",
        "job": "nightly_backup",
        "partition": "2026-03-01",
    }
    assert stored[0]["annotations"]["summary"] == (
        "BackupRunFailed job=nightly_backup partition=2026-03-01"
    )
    assert stored[0]["annotations"]["incident_level"] == "P1"
    assert stored[0]["annotations"]["description"] == (
        "could not connect to database postgresql://backup:***@db:5432/karen"
    )
    assert stored[0]["generatorURL"] == "http://dagster.example/runs/abc"
    assert stored[0]["status"]["state"] == "active"


def test_email_goes_through_starttls_with_authentication_to_every_recipient(smtp_inbox):
    channel = EmailChannel(
        SmtpServer.parse(smtp_inbox.url), "karen-ops@example.org", ("a@example.org", "b@x.org")
    )

    channel.send(_notification(make_alert(partition="2026-03-01")))

    assert len(smtp_inbox.messages) == 1
    envelope = smtp_inbox.messages[0]
    assert envelope.rcpt_tos == ["a@example.org", "b@x.org"]
    message = email.message_from_bytes(envelope.content)
    assert message["Subject"] == "[FIRING:1] BackupRunFailed (critical, P1: respond within 1 hour)"
    assert message["From"] == "karen-ops@example.org"
    assert SMTP_PASSWORD.encode() not in envelope.content
    assert b"pg-Secret-7" not in envelope.content


def test_redact_removes_passwords_from_urls_and_keyword_strings():
    text = (
        "postgresql://u:p%40ss@h/db redis://:r3d1s@cache:6379/0 "
        "host=db password=s3cret user=x PGPASSWORD='q w'"
    )

    assert redact(text) == (
        "postgresql://u:***@h/db redis://:***@cache:6379/0 "
        "host=db password=*** user=x PGPASSWORD=***"
    )
