"""Parsers of the platform's logs. None of them raises on any input: a line that cannot be
read returns None and is counted by the caller."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

_NGINX = re.compile(
    r'^(?P<client>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) '
)
_FAILED_LOGIN_EVENTS = frozenset(
    {"login_failed", "failed_login", "auth_failed", "authentication_failed", "login_failure"}
)
_FAILED_LOGIN_TEXT = re.compile(
    r"^(?P<time>\S+)\s.*?(?:failed login|login failed|authentication failed)"
    r".*?\b(?:from|ip[=:])\s*(?P<client>[0-9A-Fa-f:.]+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Request:
    client: str
    at: datetime
    method: str
    uri: str
    status: int


@dataclass(frozen=True)
class AuthEvent:
    client: str
    at: datetime
    failed_login: bool


@dataclass(frozen=True)
class ErrorRecord:
    at: datetime
    error_type: str
    endpoint: str


def parse_access_line(line: str) -> Request | None:
    """One line of nginx's combined log format; None when it is not one."""
    match = _NGINX.match(line)
    if match is None:
        return None
    try:
        at = datetime.strptime(match["time"], "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC)
    except ValueError:
        return None
    parts = match["request"].split(" ")
    if len(parts) != 3 or not parts[0].isalpha():
        return None
    return Request(match["client"], at, parts[0].upper(), parts[1], int(match["status"]))


def parse_security_line(line: str) -> AuthEvent | None:
    """A JSON object with a time, an event and a client address, or a text line saying
    ``<ISO time> ... failed login ... from <address>``; None otherwise."""
    stripped = line.strip()
    if stripped.startswith("{"):
        record = _json_object(stripped)
        if record is None:
            return None
        at = parse_time(_first(record, "timestamp", "time", "ts", "@timestamp"))
        client = _first(record, "ip", "client_ip", "remote_addr", "client")
        event = _first(record, "event", "type", "action")
        if at is None or not isinstance(client, str) or not isinstance(event, str):
            return None
        failed = event.lower() in _FAILED_LOGIN_EVENTS or (
            event.lower() == "login" and record.get("success") is False
        )
        return AuthEvent(client, at, failed)
    match = _FAILED_LOGIN_TEXT.match(stripped)
    if match is None:
        return None
    at = parse_time(match["time"])
    return AuthEvent(match["client"], at, True) if at is not None else None


def parse_error_line(line: str) -> ErrorRecord | None:
    """One JSON object of the error log; None when the line is not one or has no time."""
    record = _json_object(line.strip())
    if record is None:
        return None
    at = parse_time(_first(record, "timestamp", "time", "ts", "@timestamp"))
    if at is None:
        return None
    error_type = _first(record, "error_type", "exception", "type", "error", "level")
    endpoint = _first(record, "endpoint", "path", "route", "url")
    return ErrorRecord(
        at,
        error_type if isinstance(error_type, str) and error_type else "(unknown)",
        endpoint if isinstance(endpoint, str) and endpoint else "(none)",
    )


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time (naive times are UTC) or seconds since the epoch, in UTC."""
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _json_object(text: str) -> dict | None:
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def _first(record: dict, *names: str) -> object:
    for name in names:
        if record.get(name) is not None:
            return record[name]
    return None
