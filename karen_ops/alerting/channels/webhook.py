"""Slack incoming webhooks and a generic JSON webhook."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from karen_ops.alerting.channels.http import RetryPolicy, post_json, public_target
from karen_ops.alerting.messages import NOT_ENDED, Notification, redact, rfc3339


@dataclass(frozen=True)
class SlackChannel:
    """A Slack incoming webhook: one message per notification, title in bold."""

    url: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    name: str = "slack"

    def describe(self) -> str:
        return public_target(self.url)

    def send(self, notification: Notification, *, deadline: float | None = None) -> None:
        text = f"*{notification.title()}*\n{notification.body()}"
        post_json(
            self.url, {"text": text}, channel=self.name, policy=self.policy, deadline=deadline
        )


@dataclass(frozen=True)
class WebhookChannel:
    """A generic JSON webhook, shaped like Alertmanager's webhook payload (version 4)."""

    url: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    name: str = "webhook"

    def describe(self) -> str:
        return public_target(self.url)

    def send(self, notification: Notification, *, deadline: float | None = None) -> None:
        post_json(
            self.url,
            webhook_payload(notification),
            channel=self.name,
            policy=self.policy,
            deadline=deadline,
        )


def webhook_payload(notification: Notification) -> dict:
    return {
        "version": "4",
        "receiver": notification.route,
        "groupKey": notification.group_key,
        "status": notification.status.value,
        "title": notification.title(),
        "text": notification.body(),
        "alerts": [
            {
                "status": alert.status.value,
                "fingerprint": alert.fingerprint,
                "labels": {k: redact(v) for k, v in alert.labels.items()},
                "annotations": annotations(alert),
                # Times as Alertmanager's webhooks give them, so receivers built for those
                # read these too.
                "startsAt": rfc3339(alert.starts_at or time.time()),
                "endsAt": rfc3339(alert.ends_at) if alert.ends_at else NOT_ENDED,
                "generatorURL": alert.link,
            }
            for alert in notification.alerts
        ],
    }


def annotations(alert) -> dict[str, str]:
    """The alert's text as Alertmanager annotations, secrets removed."""
    values = {
        "summary": alert.summary,
        "impact": alert.impact,
        "description": alert.details,
        "incident_level": alert.incident_level.value,
        "response_time": alert.incident_level.response_time,
        "cause": alert.cause or "",
        **alert.extra,
    }
    return {key: redact(value) for key, value in values.items() if value}
