"""One flush keeps to its time budget: a channel that never answers costs its share of the
budget once, the channels that answer still deliver, and nothing left undelivered is lost."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from karen_ops.alerting.channels.alertmanager import AlertmanagerChannel
from karen_ops.alerting.channels.http import RetryPolicy
from karen_ops.alerting.channels.webhook import SlackChannel, WebhookChannel
from karen_ops.alerting.messages import Notification
from karen_ops.alerting.notifier import FLUSH_BUDGET_SECONDS, Notifier
from karen_ops.alerting.routing import parse_alerting_config
from karen_ops.alerting.state import MemoryAlertStore
from karen_ops.errors import DeliveryError
from karen_ops_tests.alerting_fixtures import Clock, make_alert

# Room for thread scheduling and local HTTP round trips; the bound is on behaviour, not speed.
MARGIN_SECONDS = 3.0
NAMES = ("BackupRunFailed", "BackupStale", "CheckFailed")


@contextmanager
def hung_endpoint() -> Iterator[str]:
    """A local port that accepts connections and never answers a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook/T0KEN-secret"
    finally:
        stop.set()
        thread.join()
        listener.close()
        for connection in held:
            connection.close()


def _config(*routes: tuple[str, str]):
    # Every route takes every alert, so each alert name is one group on every route.
    return parse_alerting_config(
        {
            "routes": [
                {"name": name, "channels": [channel], "continue": True} for name, channel in routes
            ]
        }
    )


def _observe_three_groups(notifier: Notifier) -> None:
    notifier.observe([make_alert(name, partition="2026-03-01") for name in NAMES])


def _heard_by(store: MemoryAlertStore, delivery: str) -> list[str]:
    return sorted(
        record.alert.labels["alertname"]
        for record in store.alerts().values()
        if delivery in record.sent
    )


def test_hung_webhook_leaves_its_groups_pending_and_slack_still_delivers(receiver_factory):
    slack = receiver_factory()
    store, clock = MemoryAlertStore(), Clock()
    config = _config(("stuck", "webhook"), ("chat", "slack"))
    with hung_endpoint() as url:
        channels = {"webhook": WebhookChannel(url), "slack": SlackChannel(slack.url)}
        notifier = Notifier(config, channels, store, clock=clock)
        _observe_three_groups(notifier)

        started = time.monotonic()
        report = notifier.flush()
        elapsed = time.monotonic() - started

    assert elapsed < FLUSH_BUDGET_SECONDS + MARGIN_SECONDS
    assert len(slack.posts) == 3
    assert sorted(n.firing[0].labels["alertname"] for _, n in report.sent) == sorted(NAMES)
    assert [channel for channel, _ in report.failed] == ["webhook"]
    assert report.deferred == 2
    assert _heard_by(store, "stuck/webhook") == []

    webhook = receiver_factory()
    channels = {"webhook": WebhookChannel(webhook.url), "slack": SlackChannel(slack.url)}
    clock.now += 30
    report = Notifier(config, channels, store, clock=clock).flush()

    assert [channel for channel, _ in report.sent] == ["webhook"] * 3
    assert sorted(post.json()["alerts"][0]["labels"]["alertname"] for post in webhook.posts) == (
        sorted(NAMES)
    )
    assert _heard_by(store, "stuck/webhook") == sorted(NAMES)
    assert len(slack.posts) == 3


def test_spent_budget_defers_the_groups_not_started_and_logs_how_many(caplog):
    store = MemoryAlertStore()
    config = _config(("one", "webhook"), ("two", "slack"), ("three", "alertmanager"))
    with hung_endpoint() as url:
        channels = {
            "webhook": WebhookChannel(url),
            "slack": SlackChannel(url),
            "alertmanager": AlertmanagerChannel(url),
        }
        notifier = Notifier(config, channels, store, clock=Clock(), budget_seconds=3)
        _observe_three_groups(notifier)

        started = time.monotonic()
        with caplog.at_level("WARNING", logger="karen_ops.alerting.notifier"):
            report = notifier.flush()
        elapsed = time.monotonic() - started

    assert elapsed < 3 + MARGIN_SECONDS
    assert report.sent == []
    assert sorted(channel for channel, _ in report.failed) == ["alertmanager", "slack", "webhook"]
    assert report.deferred == 6
    assert [r.message for r in caplog.records if "deferred_groups" in r.message] == [
        "alert delivery out of time budget=3s deferred_groups=6 "
        "slow_channels=alertmanager,slack,webhook; they are sent next tick"
    ]
    assert all(record.sent == {} for record in store.alerts().values())


def test_retry_after_beyond_the_deadline_gives_up_at_once(receiver_factory):
    receiver = receiver_factory()
    receiver.script = [(429, {"Retry-After": "20"})]
    channel = WebhookChannel(receiver.url, RetryPolicy(max_wait_seconds=60))
    notification = Notification("one", "one:{alertname=BackupRunFailed}", (make_alert(),), ())

    started = time.monotonic()
    with pytest.raises(DeliveryError) as raised:
        channel.send(notification, deadline=time.monotonic() + 5)

    assert time.monotonic() - started < 2
    assert len(receiver.posts) == 1
    assert str(raised.value).endswith(
        "HTTP 429 ok; the next try in 20.0s would pass this tick's time budget; check the "
        "channel's URL setting and that the service accepts posts from this host"
    )
