"""Email over SMTP: STARTTLS, authentication, a sender and a list of recipients.

``KAREN_SMTP_URL`` looks like ``smtp://user:password@mail.example.org:587``. ``smtp://``
upgrades with STARTTLS (required unless ``?starttls=optional`` or ``?starttls=off``);
``smtps://`` speaks TLS from the start. ``?cafile=/path/ca.pem`` trusts a private CA. The
password is only ever handed to the SMTP server, never logged.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from karen_ops.alerting.channels.http import attempt_timeout
from karen_ops.alerting.messages import Notification
from karen_ops.errors import ConfigurationError, DeliveryError

TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    implicit_tls: bool
    starttls: str  # "required", "optional" or "off"
    username: str | None
    password: str | None
    cafile: str | None

    @classmethod
    def parse(cls, url: str, *, setting: str = "KAREN_SMTP_URL") -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigurationError(
                f"{setting} must look like smtp://user:password@host:587 or smtps://host:465"
            )
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        starttls = query.get("starttls", "required")
        if starttls not in ("required", "optional", "off"):
            raise ConfigurationError(f"{setting}: starttls must be required, optional or off")
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 587),
            implicit_tls=implicit,
            starttls="off" if implicit else starttls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            cafile=query.get("cafile"),
        )

    def describe(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class EmailChannel:
    server: SmtpServer
    sender: str
    recipients: tuple[str, ...]
    name: str = "email"

    def describe(self) -> str:
        return f"{self.server.describe()} to {', '.join(self.recipients)}"

    def send(self, notification: Notification, *, deadline: float | None = None) -> None:
        # The timeout bounds each exchange with the server, not the whole conversation, so a
        # server that answers every step slowly can still overrun the deadline a little.
        timeout = attempt_timeout(TIMEOUT_SECONDS, deadline)
        if timeout <= 0:
            raise DeliveryError(
                f"could not deliver email through {self.server.describe()}: out of time for "
                "this tick; it is tried again on the next one"
            )
        message = EmailMessage()
        message["Subject"] = notification.title()
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(notification.body())
        try:
            with self._connect(timeout) as client:
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"could not deliver email through {self.server.describe()}: "
                f"{type(exc).__name__}: {_reason(exc)}; check KAREN_SMTP_URL"
            ) from exc

    def _connect(self, timeout: float = TIMEOUT_SECONDS) -> smtplib.SMTP:
        server = self.server
        context = ssl.create_default_context(cafile=server.cafile)
        if server.implicit_tls:
            client = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=timeout)
        try:
            client.ehlo()
            if server.starttls != "off" and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            elif server.starttls == "required":
                raise DeliveryError(
                    f"{server.describe()} does not offer STARTTLS; use smtps:// or add "
                    "?starttls=optional to KAREN_SMTP_URL if the network is trusted"
                )
            if server.username:
                client.login(server.username, server.password or "")
        except BaseException:
            client.close()
            raise
        return client


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace')}"
    return str(exc) or type(exc).__name__
