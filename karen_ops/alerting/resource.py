"""The alerting resource: the channels, the link base for the Dagster UI, the Pushgateway."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import dagster as dg
from pydantic import Field

from karen_ops import settings
from karen_ops.alerting.channels import Channel
from karen_ops.alerting.channels.alertmanager import AlertmanagerChannel
from karen_ops.alerting.channels.smtp import EmailChannel, SmtpServer
from karen_ops.alerting.channels.webhook import SlackChannel, WebhookChannel
from karen_ops.errors import ConfigurationError

SLACK_WEBHOOK_URL = "KAREN_ALERT_SLACK_WEBHOOK_URL"
WEBHOOK_URL = "KAREN_ALERT_WEBHOOK_URL"
ALERTMANAGER_URL = "KAREN_ALERTMANAGER_URL"
SMTP_URL = "KAREN_SMTP_URL"
EMAIL_TO = "KAREN_ALERT_EMAIL_TO"
EMAIL_FROM = "KAREN_ALERT_EMAIL_FROM"
PUSHGATEWAY_URL = "KAREN_PUSHGATEWAY_URL"

DEFAULT_UI_URL = "http://127.0.0.1:3030"


class AlertingResource(dg.ConfigurableResource):
    """Where alerts go. Each field falls back to its environment variable at tick time; a
    channel with no URL is simply not used."""

    slack_webhook_url: str | None = Field(
        default=None, description=f"Slack incoming webhook URL (default: ${SLACK_WEBHOOK_URL})."
    )
    webhook_url: str | None = Field(
        default=None, description=f"URL that receives JSON notifications (default: ${WEBHOOK_URL})."
    )
    alertmanager_url: str | None = Field(
        default=None,
        description=f"Base URL of an Alertmanager, v2 API (default: ${ALERTMANAGER_URL}).",
    )
    smtp_url: str | None = Field(
        default=None,
        description=f"smtp://user:password@host:587 or smtps://host:465 (default: ${SMTP_URL}).",
    )
    email_to: str | None = Field(
        default=None, description=f"Comma-separated recipients (default: ${EMAIL_TO})."
    )
    email_from: str | None = Field(
        default=None, description=f"Sender address (default: ${EMAIL_FROM})."
    )
    dagster_ui_url: str | None = Field(
        default=None,
        description=f"Base URL of the Dagster UI for links (default: ${settings.DAGSTER_UI_URL}, "
        f"else {DEFAULT_UI_URL}).",
    )
    pushgateway_url: str | None = Field(
        default=None,
        description=f"Prometheus Pushgateway that receives run metrics (default: "
        f"${PUSHGATEWAY_URL}; none means no metrics are pushed).",
    )

    def channels(self) -> dict[str, Channel]:
        """Every configured channel; ConfigurationError names each misconfigured one."""
        found, problems = self.usable_channels()
        if problems:
            raise ConfigurationError("; ".join(problems[name] for name in sorted(problems)))
        return found

    def usable_channels(self) -> tuple[dict[str, Channel], dict[str, str]]:
        """The channels that can deliver, and why each misconfigured one cannot."""
        builders = {
            "slack": (self._get("slack_webhook_url", SLACK_WEBHOOK_URL), SlackChannel),
            "webhook": (self._get("webhook_url", WEBHOOK_URL), WebhookChannel),
            "alertmanager": (self._get("alertmanager_url", ALERTMANAGER_URL), AlertmanagerChannel),
            "email": (self._get("smtp_url", SMTP_URL), self._email),
        }
        found: dict[str, Channel] = {}
        problems: dict[str, str] = {}
        for name, (url, build) in builders.items():
            if not url:
                continue
            try:
                found[name] = build(url)
            except ConfigurationError as exc:
                problems[name] = str(exc)
        return found, problems

    def ui_url(self) -> str:
        url = self._get("dagster_ui_url", settings.DAGSTER_UI_URL) or DEFAULT_UI_URL
        return _without_credentials(url).rstrip("/")

    def run_link(self, run_id: str) -> str:
        return f"{self.ui_url()}/runs/{run_id}"

    def asset_link(self, asset: str) -> str:
        return f"{self.ui_url()}/assets/{asset}"

    def pushgateway(self) -> str | None:
        return self._get("pushgateway_url", PUSHGATEWAY_URL)

    def _email(self, url: str) -> EmailChannel:
        recipients = tuple(
            a.strip() for a in (self._get("email_to", EMAIL_TO) or "").split(",") if a.strip()
        )
        sender = self._get("email_from", EMAIL_FROM)
        if not recipients or not sender:
            raise ConfigurationError(
                f"{SMTP_URL} is set but {EMAIL_TO if not recipients else EMAIL_FROM} is not; "
                "email alerts need a sender and at least one recipient"
            )
        return EmailChannel(SmtpServer.parse(url, setting=SMTP_URL), sender, recipients)

    def _get(self, field: str, variable: str) -> str | None:
        return getattr(self, field) or settings.env(variable)


def _without_credentials(url: str) -> str:
    """The URL without user and password: links in alerts are read by people and by receivers
    that store them, and a browser asks for credentials itself where the UI needs them."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
