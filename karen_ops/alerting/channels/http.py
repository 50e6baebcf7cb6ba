"""POSTing JSON with bounded retries: connection errors, 5xx and 429 are tried again.

A 429 answer's ``Retry-After`` (seconds or an HTTP date) is honoured up to a cap, so a rate
limit is waited out instead of hammered; other waits grow exponentially with jitter. Each
retry is logged at warning with the target's scheme and host only: webhook URLs carry their
secret in the path.

A ``deadline`` (a ``time.monotonic()`` value) bounds the whole POST: each attempt waits at
most until it, and a retry whose wait would pass it is not made, so the caller can try again
on its next tick instead of holding the sensor.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from karen_ops.errors import DeliveryError

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

# Long enough for a slow chat service, short enough that a sensor tick is not held up long.
TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a POST is tried."""

    attempts: int = 4
    backoff_seconds: float = 1.0
    max_wait_seconds: float = 30.0


def public_target(url: str) -> str:
    """scheme://host:port of a URL: enough to find the service, never its token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def post_json(
    url: str,
    payload: object,
    *,
    channel: str,
    policy: RetryPolicy | None = None,
    deadline: float | None = None,
) -> requests.Response:
    policy = policy or RetryPolicy()
    target = public_target(url)
    reason = "not tried"
    for attempt in range(1, policy.attempts + 1):
        timeout = attempt_timeout(TIMEOUT_SECONDS, deadline)
        if timeout <= 0:
            reason += "; out of time for this tick"
            break
        try:
            response = _requests().post(url, json=payload, timeout=timeout)
        except _requests().RequestException as exc:
            reason = f"{type(exc).__name__}"
            wait = _backoff(policy, attempt)
        else:
            if response.status_code < 300:
                return response
            reason = f"HTTP {response.status_code} {response.text[:200].strip()}"
            if response.status_code == 429:
                wait = _retry_after(response, policy) or _backoff(policy, attempt)
            elif response.status_code >= 500:
                wait = _backoff(policy, attempt)
            else:
                # 4xx other than 429: the request itself is wrong; retrying cannot help.
                break
        if attempt < policy.attempts:
            if deadline is not None and time.monotonic() + wait >= deadline:
                reason += f"; the next try in {wait:.1f}s would pass this tick's time budget"
                break
            log.warning(
                "channel=%s target=%s attempt=%d/%d failed: %s; retrying in %.1fs",
                channel,
                target,
                attempt,
                policy.attempts,
                reason,
                wait,
            )
            time.sleep(wait)
    raise DeliveryError(
        f"could not deliver to {channel} at {target}: {reason}; check the channel's URL "
        "setting and that the service accepts posts from this host"
    )


def attempt_timeout(limit: float, deadline: float | None) -> float:
    """Seconds one attempt may take: ``limit``, or less when the deadline comes sooner."""
    if deadline is None:
        return limit
    return min(limit, deadline - time.monotonic())


def _backoff(policy: RetryPolicy, attempt: int) -> float:
    wait = policy.backoff_seconds * 2 ** (attempt - 1)
    return min(wait * random.uniform(0.8, 1.2), policy.max_wait_seconds)  # noqa: S311


def _retry_after(response: requests.Response, policy: RetryPolicy) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), policy.max_wait_seconds)


def _requests() -> ModuleType:
    # Imported on first use: loading the code location need not pay a third of a second for it.
    import requests

    return requests
