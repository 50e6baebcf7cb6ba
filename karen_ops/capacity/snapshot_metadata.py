"""How a capacity snapshot is shown on its partition: flat numbers for the UI's plots, and
tables of the largest relations and of the fleet's databases."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from karen_ops.capacity.fleet import FleetObservation
from karen_ops.capacity.redis_usage import RedisUsage
from karen_ops.capacity.snapshot import DatabaseUsage, HostUsage, human_bytes, relations_table


def snapshot_metadata(
    observed_at: datetime, database: DatabaseUsage, host: HostUsage, cache: RedisUsage | None
) -> dict[str, object]:
    metadata: dict[str, object] = {
        "observed_at": observed_at.isoformat(timespec="seconds"),
        "database": database.database,
        # The application's database, also with a fleet, and not the fleet's total: the weekly
        # report forecasts this series against database_size_limit_gib, a limit of one
        # database's volume, and fleet databases may live on other servers and disks. Its
        # history also stays comparable across the day a fleet is configured. The fleet's
        # total is recorded apart, as fleet_size_bytes.
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


def fleet_metadata(fleet: list[FleetObservation]) -> dict[str, object]:
    """Per fleet database ``fleet <name> <figure>`` keys, so the UI plots each one over the
    days; an unreachable database has no figures that day (a gap) and says why instead."""
    if not fleet:
        return {}
    unreachable = [o.name for o in fleet if not o.observed]
    metadata: dict[str, object] = {
        "fleet": dg.MetadataValue.md(fleet_table(fleet)),
        "fleet_databases": dg.MetadataValue.int(len(fleet)),
        "fleet_observed": dg.MetadataValue.int(len(fleet) - len(unreachable)),
    }
    if unreachable:
        metadata["fleet_unreachable"] = ", ".join(unreachable)
    else:
        # A total with a database missing would read as the fleet shrinking: only whole days.
        metadata["fleet_size_bytes"] = dg.MetadataValue.int(_fleet_size(fleet))
    for observation in fleet:
        metadata.update(_database_figures(observation))
    observed = {o.name: o.usage for o in fleet if o.usage is not None}
    if observed:
        metadata["fleet_largest_relations"] = dg.MetadataValue.md(_fleet_relations(observed))
    return metadata


def fleet_table(fleet: list[FleetObservation]) -> str:
    """Markdown table of the fleet: one row per database, unreachable ones included."""
    lines = [
        "| database | server | size | its connections | server connections | cache hit ratio |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for o in fleet:
        if o.usage is None:
            reason = (o.problem or "unknown").replace("|", "\\|")
            lines.append(f"| {o.name} | {o.server} | unreachable: {reason} | | | |")
            continue
        u = o.usage
        ratio = f"{u.cache_hit_ratio:.2%}" if u.cache_hit_ratio is not None else "no reads yet"
        lines.append(
            f"| {o.name} ({u.database}) | {o.server} | {human_bytes(u.size_bytes)} | "
            f"{u.database_connections} | {u.connections} of {u.max_connections} | {ratio} |"
        )
    return "\n".join(lines)


def _database_figures(observation: FleetObservation) -> dict[str, object]:
    prefix = f"fleet {observation.name}"
    usage = observation.usage
    if usage is None:
        return {f"{prefix} unreachable": observation.problem or "unknown"}
    figures: dict[str, object] = {
        f"{prefix} size_bytes": dg.MetadataValue.int(usage.size_bytes),
        f"{prefix} connections": dg.MetadataValue.int(usage.database_connections),
        f"{prefix} server_connections_percent": dg.MetadataValue.float(
            round(usage.connections_percent, 2)
        ),
    }
    if usage.cache_hit_ratio is not None:
        figures[f"{prefix} cache_hit_ratio"] = dg.MetadataValue.float(
            round(usage.cache_hit_ratio, 4)
        )
    return figures


def _fleet_size(fleet: list[FleetObservation]) -> int:
    # Two entries naming the same database on the same server count once.
    sizes = {(o.server, o.usage.database): o.usage.size_bytes for o in fleet if o.usage}
    return sum(sizes.values())


def _fleet_relations(observed: dict[str, DatabaseUsage]) -> str:
    """The largest relations of each observed database, under a heading naming it."""
    return "\n\n".join(
        f"### {name}\n\n{relations_table(usage.relations)}" for name, usage in observed.items()
    )
