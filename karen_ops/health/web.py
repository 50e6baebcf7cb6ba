"""HTTP probes of the backend API and the web frontend.

Only a 2xx answer is healthy. A redirect fails: a health endpoint that answers 302 to a login
page is a proxy or an authentication layer speaking, not a healthy API.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit, urlunsplit

from karen_ops.health.probes import Probe, Verdict, elapsed_ms

# Enough of a body to read a health document; a page larger than this is not read whole.
_MAX_BODY_BYTES = 64 * 1024

# Values of a health document's "status" field that mean the backend reports itself unwell.
_UNHEALTHY_STATUSES = frozenset({"unhealthy", "error", "fail", "failed", "down", "degraded"})


def probe_http(url: str, timeout_seconds: float, *, setting: str) -> Probe:
    """GET ``url`` without following redirects; ``setting`` names where the URL is set."""
    import requests  # on use: loading the code location need not pay for it

    shown = public_url(url)
    started = time.monotonic()
    try:
        with requests.get(
            url, timeout=(timeout_seconds, timeout_seconds), allow_redirects=False, stream=True
        ) as response:
            body = response.raw.read(_MAX_BODY_BYTES, decode_content=True)
            status = response.status_code
            location = response.headers.get("Location")
    except requests.Timeout:
        return Probe(
            Verdict.TIMED_OUT,
            f"{shown} gave no answer within {timeout_seconds:g} seconds",
            {"url": shown, "timeout_seconds": timeout_seconds},
        )
    except requests.RequestException as exc:
        return Probe(
            Verdict.FAILED,
            f"could not reach {shown}: {type(exc).__name__}; check {setting}",
            {"url": shown, "latency_ms": elapsed_ms(started)},
        )

    metadata: dict[str, object] = {
        "url": shown,
        "status_code": status,
        "latency_ms": elapsed_ms(started),
    }
    if 300 <= status < 400:
        metadata["location"] = public_url(location or "")
        return Probe(
            Verdict.FAILED,
            f"{shown} answered {status}, a redirect to {public_url(location or '(none)')}; "
            f"a redirect is not a healthy answer (point {setting} at the final URL)",
            metadata,
        )
    if not 200 <= status < 300:
        return Probe(Verdict.FAILED, f"{shown} answered HTTP {status}", metadata)

    reported = _reported_status(body)
    if reported is not None:
        metadata["reported_status"] = reported
        if reported.lower() in _UNHEALTHY_STATUSES:
            return Probe(
                Verdict.FAILED, f"{shown} answered {status} but reports '{reported}'", metadata
            )
    return Probe(Verdict.HEALTHY, f"{shown} answered {status}", metadata)


def public_url(url: str) -> str:
    """The URL without user name, password or query string, fit for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _reported_status(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    status = document.get("status") if isinstance(document, dict) else None
    return status if isinstance(status, str) else None
