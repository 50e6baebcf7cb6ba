"""The text people read: an initial notice (what, impact, status) and a resolution notice
(what, cause if known, duration), for a group of alerts that go out together.

Every piece of text passes through :func:`redact` first, so a database URL quoted in an error
never carries its password into a chat room, a mailbox or a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from karen_ops.alerting.model import Alert, Status

# scheme://user:secret@host -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]+(?=@)")
# password=secret or PGPASSWORD=secret in libpq keyword strings and environment dumps
_KEYWORD_PASSWORD = re.compile(r"(?i)(?P<head>\b\w*password\s*[=:]\s*)(?:'[^']*'|\"[^\"]*\"|\S+)")

_LISTED = 10
# An error quoted in an alert: enough to act on from a chat message or a mail; the page the
# alert links to has the rest.
SHORT_LINES = 5
SHORT_CHARS = 600
_CUT = " [cut short; the link below has all of it]"


def rfc3339(timestamp: float) -> str:
    """A time as Alertmanager writes it in its API and webhooks: ``2026-12-04T02:00:03.120Z``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# What Alertmanager's webhooks give as the end of an alert still firing: no end yet.
NOT_ENDED = "0001-01-01T00:00:00Z"


def redact(text: str) -> str:
    """The text with passwords in URLs and ``password=`` pairs replaced by ``***``."""
    text = _URL_PASSWORD.sub(r"\g<head>***", text)
    return _KEYWORD_PASSWORD.sub(r"\g<head>***", text)


def shorten(text: str, *, lines: int = SHORT_LINES, chars: int = SHORT_CHARS) -> str:
    """The first non-empty lines of ``text``, at most ``chars`` long and cut at a space, with
    a note where something was left out. Redacted before it is cut: a cut through a URL would
    leave a password that the patterns no longer recognise."""
    kept = [line.rstrip() for line in redact(text).splitlines() if line.strip()]
    short = "\n".join(kept[:lines])
    if len(short) <= chars:
        return short + (_CUT if len(kept) > lines else "")
    head = short[:chars].rpartition(" ")[0]
    return (head or short[:chars]) + _CUT


@dataclass(frozen=True)
class Notification:
    """Alerts of one group on one route, sent to one channel in one message."""

    route: str
    group_key: str
    firing: tuple[Alert, ...]
    resolved: tuple[Alert, ...]

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return self.firing + self.resolved

    @property
    def status(self) -> Status:
        return Status.FIRING if self.firing else Status.RESOLVED

    @property
    def name(self) -> str:
        return self.alerts[0].name

    def title(self) -> str:
        if not self.firing:
            return redact(f"[RESOLVED:{len(self.resolved)}] {self.name}")
        # The most urgent alert of the group sets the level the title announces.
        urgent = min(self.firing, key=lambda a: a.incident_level.value)
        level = urgent.incident_level
        resolved = f", {len(self.resolved)} resolved" if self.resolved else ""
        state = "NOTICE" if _one_off(self.firing) else "FIRING"
        return redact(
            f"[{state}:{len(self.firing)}] {self.name} ({urgent.severity.value}, {level.value}: "
            f"respond within {level.response_time}){resolved}"
        )

    def body(self) -> str:
        sections = []
        if self.firing:
            sections.append(_initial(self.firing))
        if self.resolved:
            sections.append(_resolution(self.resolved))
        return redact("\n\n".join(sections))


def _initial(alerts: tuple[Alert, ...]) -> str:
    first = alerts[0]
    lines = [
        f"What: {first.summary}"
        if len(alerts) == 1
        else f"What: {len(alerts)} alerts of {first.name}",
        f"Impact: {first.impact}",
        f"Status: {_state(alerts)}; incident level {first.incident_level.value}, respond "
        f"within {first.incident_level.response_time}",
    ]
    for alert in alerts[:_LISTED]:
        lines.append(f"- {alert.summary}")
        if alert.details:
            lines.extend(f"    {line}" for line in alert.details.splitlines())
        if alert.link:
            lines.append(f"    {alert.link}")
    if len(alerts) > _LISTED:
        lines.append(f"- and {len(alerts) - _LISTED} more")
    return "\n".join(lines)


def _one_off(alerts: tuple[Alert, ...]) -> bool:
    return all(alert.one_off for alert in alerts)


def _state(alerts: tuple[Alert, ...]) -> str:
    since = _when(min(a.starts_at for a in alerts))
    if _one_off(alerts):
        return f"a notice of {since}, sent once; nothing will resolve it"
    return f"firing since {since}"


def _resolution(alerts: tuple[Alert, ...]) -> str:
    lines = [f"Resolved: {len(alerts)} alert(s) of {alerts[0].name}"]
    for alert in alerts[:_LISTED]:
        ended = alert.ends_at or alert.starts_at
        lines.append(
            f"- {alert.summary}: resolved at {_when(ended)} after "
            f"{_duration(ended - alert.starts_at)}; cause: {alert.cause or 'not known'}"
        )
    if len(alerts) > _LISTED:
        lines.append(f"- and {len(alerts) - _LISTED} more")
    return "\n".join(lines)


def _when(timestamp: float) -> str:
    return f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M:%S} UTC"


def _duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"
