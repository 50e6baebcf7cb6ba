"""The platform's Redis, read-only: how much memory it uses and how many keys it holds.

TODO: move RedisResource to karen_ops/resources/ once another domain (alert state) needs Redis
too, so both share one resource key and one setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

import dagster as dg
import redis
from pydantic import Field

from karen_ops import settings
from karen_ops.capacity.errors import CapacityError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# A snapshot must not hang on an unreachable cache; Redis answers INFO in milliseconds.
TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class RedisUsage:
    server: str
    used_memory_bytes: int
    maxmemory_bytes: int  # 0: no limit configured
    keys: int


class RedisResource(dg.ConfigurableResource):
    """The Redis server of the AI Karen platform."""

    url: str | None = Field(
        default=None,
        description=f"redis:// URL (default: ${settings.REDIS_URL}, else {DEFAULT_REDIS_URL}).",
    )

    def resolved_url(self) -> str:
        return self.url or settings.env(settings.REDIS_URL) or DEFAULT_REDIS_URL

    def usage(self) -> RedisUsage:
        url = self.resolved_url()
        server = describe(url)
        client = redis.Redis.from_url(
            url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
        )
        try:
            memory = client.info("memory")
            keyspace = client.info("keyspace")
        except redis.RedisError as exc:
            raise CapacityError(
                f"could not read memory use and keys of Redis at {server}: {exc}; "
                f"check {settings.REDIS_URL}"
            ) from exc
        finally:
            client.close()
        keys = sum(int(db.get("keys", 0)) for db in keyspace.values() if isinstance(db, dict))
        return RedisUsage(
            server=server,
            used_memory_bytes=int(memory["used_memory"]),
            maxmemory_bytes=int(memory.get("maxmemory", 0)),
            keys=keys,
        )


def describe(url: str) -> str:
    """host:port/db of a Redis URL, without its password."""
    parsed = urlparse(url)
    database = parsed.path.lstrip("/") or "0"
    return f"{parsed.hostname or 'localhost'}:{parsed.port or 6379}/{database}"
