"""Where notifications go: Slack, email, a JSON webhook, Alertmanager's v2 API."""

from karen_ops.alerting.channels.base import Channel

__all__ = ["Channel"]
