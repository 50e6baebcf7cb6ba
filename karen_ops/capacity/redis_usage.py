"""How much memory the platform's Redis uses and how many keys it holds, read-only."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from karen_ops import settings
from karen_ops.errors import CapacityError
from karen_ops.resources.redis import RedisResource


@dataclass(frozen=True)
class RedisUsage:
    server: str
    used_memory_bytes: int
    maxmemory_bytes: int  # 0: no limit configured
    keys: int


def observe_redis(resource: RedisResource) -> RedisUsage:
    """INFO memory and keyspace of the server, as they are now."""
    server = resource.describe()
    client = resource.client()
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
