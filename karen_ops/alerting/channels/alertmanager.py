"""Alertmanager's v2 API: alerts posted with their labels, for Alertmanager to route."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from karen_ops.alerting.channels.http import RetryPolicy, post_json, public_target
from karen_ops.alerting.channels.webhook import annotations
from karen_ops.alerting.messages import Notification, redact, rfc3339
from karen_ops.alerting.model import Alert

# Alertmanager resolves a firing alert nobody re-posts once endsAt passes; the alertmanager
# route repeats every minute, so five minutes survives a few missed sensor ticks.
FIRING_VALIDITY_SECONDS = 300


@dataclass(frozen=True)
class AlertmanagerChannel:
    """POST /api/v2/alerts on an Alertmanager (v1 is gone since Alertmanager 0.27)."""

    url: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    name: str = "alertmanager"

    def describe(self) -> str:
        return public_target(self.url)

    def send(self, notification: Notification, *, deadline: float | None = None) -> None:
        payload = [_alert(alert) for alert in notification.alerts]
        endpoint = self.url.rstrip("/") + "/api/v2/alerts"
        post_json(endpoint, payload, channel=self.name, policy=self.policy, deadline=deadline)


def _alert(alert: Alert) -> dict:
    now = datetime.now(UTC).timestamp()
    ends = alert.ends_at if alert.ends_at is not None else now + FIRING_VALIDITY_SECONDS
    body = {
        "labels": {key: redact(value) for key, value in alert.labels.items()},
        "annotations": annotations(alert),
        "startsAt": rfc3339(alert.starts_at or now),
        "endsAt": rfc3339(ends),
    }
    if alert.link:
        body["generatorURL"] = alert.link
    return body
