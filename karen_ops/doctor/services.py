"""Redis, the alert channels and the Pushgateway: reached, authenticated, nothing delivered."""

from __future__ import annotations

import smtplib
import socket
import ssl
from urllib.parse import urlsplit

import redis
import requests

from karen_ops import settings
from karen_ops.alerting.channels import Channel
from karen_ops.alerting.resource import (
    ALERTMANAGER_URL,
    EMAIL_FROM,
    EMAIL_TO,
    PUSHGATEWAY_URL,
    SLACK_WEBHOOK_URL,
    SMTP_URL,
    WEBHOOK_URL,
    AlertingResource,
)
from karen_ops.alerting.routing import AlertingConfig, load_alerting_config
from karen_ops.doctor.model import SETTINGS_FILE_BROKEN, Finding, fail, ok, skip, warn
from karen_ops.errors import ConfigurationError, KarenOpsError, SettingsFileError
from karen_ops.resources.redis import RedisResource

# Each probe answers in well under this on a working network; a dead host fails in seconds.
TIMEOUT_SECONDS = 5

_CHANNEL_SETTINGS = {
    "slack": SLACK_WEBHOOK_URL,
    "webhook": WEBHOOK_URL,
    "alertmanager": ALERTMANAGER_URL,
    "email": SMTP_URL,
}
# What a route's channel needs, as a route warning's fix says it.
_ROUTE_HINTS = {**_CHANNEL_SETTINGS, "email": f"{SMTP_URL} with {EMAIL_TO} and {EMAIL_FROM}"}


def check_redis(resource: RedisResource) -> Finding:
    item = "redis"
    configured = resource.url or settings.env(settings.REDIS_URL)
    where = resource.describe()
    if configured is None:
        where += f" ({settings.REDIS_URL} is not set: the default)"
    fix_url = f"put the password in {settings.REDIS_URL}: redis://:PASSWORD@HOST:6379/0"
    client = resource.client()
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
    except redis.AuthenticationError as exc:
        return fail(item, f"{where}: authentication failed: {exc}", fix_url)
    except redis.ResponseError as exc:
        if "NOAUTH" in str(exc):
            return fail(item, f"{where}: the server requires a password", fix_url)
        return fail(item, f"{where}: {exc}", f"check {settings.REDIS_URL}")
    except redis.RedisError as exc:
        return fail(
            item,
            f"{where}: cannot connect: {exc}",
            f"start Redis there, or set {settings.REDIS_URL} to the platform's Redis",
        )
    finally:
        client.close()
    password = client.connection_pool.connection_kwargs.get("password")
    auth = ", authenticated" if password else ""
    return ok(item, f"{where}: PING answered{auth} (Redis {version})")


def alerting_checks(resource: AlertingResource) -> list[Finding]:
    """One line per configured channel, a warning when there is none, then the Pushgateway."""
    findings: list[Finding] = []
    try:
        config = load_alerting_config()
    except SettingsFileError:
        findings.append(skip("alert settings", f"not read: {SETTINGS_FILE_BROKEN}"))
        config = None
    except ConfigurationError as exc:
        # Every alert sensor tick fails on the same error until the file is fixed.
        findings.append(fail("alert settings", str(exc), "correct the alerting section"))
        config = None
    channels, problems = resource.usable_channels()
    for name, problem in sorted(problems.items()):
        # The sensors leave this channel out and deliver on the others.
        findings.append(fail(f"alert {name}", problem, "complete or unset its settings"))
    if not channels and not problems:
        findings.append(
            warn(
                "alert channels",
                "no alert channel is configured: failed runs and checks alert nobody",
                f"set {SLACK_WEBHOOK_URL}, {WEBHOOK_URL}, {ALERTMANAGER_URL}, or {SMTP_URL} "
                f"with {EMAIL_TO} and {EMAIL_FROM}",
            )
        )
    elif channels and config is not None:
        findings += route_checks(config, set(channels))
    for name, channel in channels.items():
        findings.append(check_channel(name, channel))
    findings.append(check_pushgateway(resource.pushgateway()))
    return findings


def route_checks(config: AlertingConfig, usable: set[str]) -> list[Finding]:
    """A warning for each route none of whose channels can deliver: its alerts reach nobody.

    A route that lets matching go on (as the Alertmanager one does) is not where alerts end;
    when it takes every alert and can deliver, no alert goes unheard."""
    passing = [route for route in config.routes if route.continue_matching]
    if any(not route.match and usable.intersection(route.channels) for route in passing):
        return []
    findings = []
    for route in config.routes:
        if route.continue_matching or usable.intersection(route.channels):
            continue
        if not route.channels:
            findings.append(
                warn(
                    f"alert route {route.name}",
                    "has no channels: it mutes the alerts it takes",
                    "list channels for it if they should reach someone",
                )
            )
            continue
        findings.append(
            warn(
                f"alert route {route.name}",
                f"none of its channels ({', '.join(route.channels)}) is configured: the alerts "
                "it takes reach nobody",
                f"set {' or '.join(_ROUTE_HINTS.get(c, c) for c in route.channels)}, or "
                "change the route's channels in the alerting section of KAREN_OPS_CONFIG",
            )
        )
    return findings


def check_channel(name: str, channel: Channel) -> Finding:
    """A dry run: everything a delivery does short of handing over a message."""
    item = f"alert {name}"
    setting = _CHANNEL_SETTINGS.get(name, name)
    try:
        if name == "alertmanager":
            detail = _alertmanager_status(channel.url)  # type: ignore[attr-defined]
        elif name == "email":
            detail = _smtp_session(channel)
        else:
            detail = _reach(channel.url)  # type: ignore[attr-defined]
    except (OSError, ValueError, requests.RequestException, smtplib.SMTPException) as exc:
        return fail(
            item,
            f"{channel.describe()}: {type(exc).__name__}: {exc}",
            f"check {setting} and that this host may reach the service",
        )
    except KarenOpsError as exc:
        return fail(item, f"{channel.describe()}: {exc}", f"check {setting}")
    return ok(item, f"{channel.describe()}: {detail}; no alert sent")


def check_pushgateway(url: str | None) -> Finding:
    item = "pushgateway"
    if url is None:
        return skip(item, f"{PUSHGATEWAY_URL} is not set: run metrics are not pushed")
    target = _public(url)
    try:
        response = requests.get(url.rstrip("/") + "/-/ready", timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        return fail(
            item,
            f"{target}: cannot connect: {type(exc).__name__}",
            f"start the Pushgateway there, or correct or unset {PUSHGATEWAY_URL}",
        )
    if response.status_code != 200:
        return fail(
            item,
            f"{target}/-/ready answered HTTP {response.status_code}",
            f"check that {PUSHGATEWAY_URL} names a Prometheus Pushgateway",
        )
    return ok(item, f"{target}: ready")


def _alertmanager_status(url: str) -> str:
    # The status endpoint only reads; posting to /api/v2/alerts would raise a real alert.
    response = requests.get(url.rstrip("/") + "/api/v2/status", timeout=TIMEOUT_SECONDS)
    if response.status_code != 200:
        raise ValueError(f"/api/v2/status answered HTTP {response.status_code}")
    status = response.json()
    version = status.get("versionInfo", {}).get("version", "?")
    cluster = status.get("cluster", {}).get("status", "?")
    return f"Alertmanager {version} answered its v2 API (cluster {cluster})"


def _smtp_session(channel: Channel) -> str:
    # The channel's own connection: the same TLS and login a delivery uses, then QUIT.
    client = channel._connect()  # type: ignore[attr-defined]
    try:
        client.noop()
    finally:
        client.quit()
    login = " and logged in" if channel.server.username else ""  # type: ignore[attr-defined]
    return f"connected{login}"


def _reach(url: str) -> str:
    """Resolve the host and open a connection (TLS verified for https); send no request."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the URL must start with https:// (or http://) and name a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname, port), timeout=TIMEOUT_SECONDS) as sock:
        if parts.scheme == "https":
            context = ssl.create_default_context()
            with context.wrap_socket(sock, server_hostname=parts.hostname):
                return "resolved, connected, TLS certificate verified"
    return "resolved and connected (plain http)"


def _public(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
