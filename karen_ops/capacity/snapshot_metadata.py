"""How a capacity snapshot is shown on its partition: flat numbers for the UI's plots, and
a table of the largest relations."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from karen_ops.capacity.redis_usage import RedisUsage
from karen_ops.capacity.snapshot import DatabaseUsage, HostUsage, human_bytes, relations_table


def snapshot_metadata(
    observed_at: datetime, database: DatabaseUsage, host: HostUsage, cache: RedisUsage | None
) -> dict[str, object]:
    metadata: dict[str, object] = {
        "observed_at": observed_at.isoformat(timespec="seconds"),
        "database": database.database,
        "database_size_bytes": dg.MetadataValue.int(database.size_bytes),
        "database_size": human_bytes(database.size_bytes),
        "largest_relations": dg.MetadataValue.md(relations_table(database.relations)),
        "connections": dg.MetadataValue.int(database.connections),
        "max_connections": dg.MetadataValue.int(database.max_connections),
        "connections_percent": dg.MetadataValue.float(round(database.connections_percent, 2)),
        "disk_path": host.disk_path,
        "disk_total_bytes": dg.MetadataValue.int(host.disk_total_bytes),
        "disk_used_bytes": dg.MetadataValue.int(host.disk_used_bytes),
        "disk_used_percent": dg.MetadataValue.float(round(host.disk_used_percent, 2)),
        "memory_total_bytes": dg.MetadataValue.int(host.memory_total_bytes),
        "memory_used_percent": dg.MetadataValue.float(host.memory_used_percent),
        "cpu_percent": dg.MetadataValue.float(host.cpu_percent),
        "load_1m": dg.MetadataValue.float(round(host.load_1m, 2)),
        "load_15m": dg.MetadataValue.float(round(host.load_15m, 2)),
        "cpus": dg.MetadataValue.int(host.cpus),
    }
    if database.cache_hit_ratio is not None:
        metadata["cache_hit_ratio"] = dg.MetadataValue.float(round(database.cache_hit_ratio, 4))
    if cache is None:
        metadata["redis"] = "not observed: Redis could not be reached (see the run's log)"
    else:
        metadata["redis"] = cache.server
        metadata["redis_used_memory_bytes"] = dg.MetadataValue.int(cache.used_memory_bytes)
        metadata["redis_maxmemory_bytes"] = dg.MetadataValue.int(cache.maxmemory_bytes)
        metadata["redis_keys"] = dg.MetadataValue.int(cache.keys)
    return metadata
