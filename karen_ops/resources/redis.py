"""The platform's Redis: one resource that hands out clients, for every domain that needs it.

The URL may carry a password (``redis://:secret@host:6379/0`` or ``redis://user:secret@...``)
and may ask for TLS (``rediss://``). The password reaches the client in memory only: messages,
logs and metadata name the server with :func:`describe`, which leaves it out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import dagster as dg
import redis
from pydantic import Field

from karen_ops import settings

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# Redis answers in milliseconds; a server that takes longer is unreachable for our purposes,
# and a run must not hang on it.
DEFAULT_TIMEOUT_SECONDS = 5.0


class RedisResource(dg.ConfigurableResource):
    """The Redis server of the AI Karen platform (cache, and alert state)."""

    url: str | None = Field(
        default=None,
        description=f"redis:// or rediss:// URL, password included if needed (default: "
        f"${settings.REDIS_URL}, else {DEFAULT_REDIS_URL}).",
    )
    timeout_seconds: float = Field(
        default=DEFAULT_TIMEOUT_SECONDS,
        description="Connect and socket timeout of every command.",
    )

    def resolved_url(self) -> str:
        return self.url or settings.env(settings.REDIS_URL) or DEFAULT_REDIS_URL

    def server(self) -> str:
        """Where the server is, for messages: never the password."""
        return describe(self.resolved_url())

    @contextmanager
    def client(self, timeout_seconds: float | None = None) -> Iterator[redis.Redis]:
        """A client that is closed afterwards; ``timeout_seconds`` overrides the field."""
        timeout = timeout_seconds if timeout_seconds is not None else self.timeout_seconds
        client = redis.Redis.from_url(
            self.resolved_url(),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # A failed command is reported, not retried behind the caller's back.
            retry_on_timeout=False,
        )
        try:
            yield client
        finally:
            client.close()


def describe(url: str) -> str:
    """``host:port/db`` of a Redis URL, with ``(tls)`` for rediss://, without credentials."""
    parsed = urlparse(url)
    database = parsed.path.lstrip("/") or "0"
    tls = " (tls)" if parsed.scheme == "rediss" else ""
    return f"{parsed.hostname or 'localhost'}:{parsed.port or 6379}/{database}{tls}"
