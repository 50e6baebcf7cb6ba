"""Which databases the PostgreSQL checks probe, and one verdict per check from their answers.

With a fleet in the settings file (read when the run starts) every fleet database is probed;
without one, the database at ``KAREN_DATABASE_URL``. Each database is probed in its own thread
under the checks' one deadline. Connections and long-running statements are server-wide, so
databases that share a server are counted once: their server is known by its cluster identity,
not by the host name in a URL, which two entries may spell differently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial

from karen_ops import settings
from karen_ops.health.database import DatabaseTarget, LongQuery, ServerActivity, activity_of
from karen_ops.health.probes import Probe, Verdict
from karen_ops.resources.postgres import PostgresResource

# Long-running queries listed in a failing check's description; the count is always given.
_LISTED = 10

_POOLER_HINT = "find idle sessions in pg_stat_activity or put a connection pooler in front"

# Each server that answered, once, with the names of the fleet databases seen on it.
Servers = list[tuple[ServerActivity, list[str]]]


def database_targets(
    postgres: PostgresResource, fleet: tuple[settings.FleetDatabase, ...]
) -> list[DatabaseTarget]:
    if not fleet:
        return [DatabaseTarget(settings.PRIMARY_DATABASE, settings.DATABASE_URL, postgres.source)]
    return [DatabaseTarget(d.name, d.url_env, partial(postgres.source, d)) for d in fleet]


def judge_queries(answers: Mapping[str, Probe]) -> Probe:
    """accepts_queries: every database answered; a failure names each one that did not."""
    failing = {name: probe for name, probe in answers.items() if not probe.passed}
    if len(answers) == 1:
        return next(iter(answers.values()))
    if failing:
        return Probe(
            _worst(failing.values()),
            f"{len(failing)} of {len(answers)} databases did not answer SELECT 1 "
            f"({', '.join(failing)}): " + "; ".join(p.detail for p in failing.values()),
            {
                "databases": len(answers),
                "answered": len(answers) - len(failing),
                "unreachable": ", ".join(failing),
            },
        )
    latencies = {name: probe.metadata["latency_ms"] for name, probe in answers.items()}
    slowest = max(latencies, key=lambda name: latencies[name])
    metadata: dict[str, object] = {
        "databases": len(answers),
        "answered": len(answers),
        "latency_ms": latencies[slowest],
        "slowest": slowest,
    }
    metadata.update({f"{name} latency_ms": ms for name, ms in latencies.items()})
    return Probe(
        Verdict.HEALTHY,
        f"{len(answers)} databases answered SELECT 1; slowest {slowest} in {latencies[slowest]} ms",
        metadata,
    )


def judge_connections(answers: Mapping[str, Probe], ratio: float) -> Probe:
    """connections_below_limit: on each server, client connections under ``ratio``."""
    servers, failing = _servers(answers)
    if failing and len(answers) == 1:
        return next(iter(failing.values()))
    crowded = [(a, names) for a, names in servers if a.share > ratio]
    parts = [p.detail for p in failing.values()]
    parts += [
        f"{a.connections} of max_connections {a.max_connections} in use on "
        f"{_server_label(a, names)} ({a.share:.0%}, over {ratio:.0%})"
        for a, names in crowded
    ]
    metadata = _connections_metadata(servers, len(answers))
    if failing:
        return Probe(_worst(failing.values()), "; ".join(parts), metadata)
    if crowded:
        return Probe(Verdict.WARNING, "; ".join(parts) + f"; {_POOLER_HINT}", metadata)
    fullest, names = max(servers, key=lambda server: server[0].share)
    detail = f"{fullest.connections} of {fullest.max_connections} connections in use"
    if len(servers) > 1:
        detail += f" on the fullest of {len(servers)} servers, {_server_label(fullest, names)}"
    return Probe(Verdict.HEALTHY, detail, metadata)


def judge_long_queries(answers: Mapping[str, Probe], limit_seconds: float) -> Probe:
    """no_long_running_queries: no statement on any server ran over ``limit_seconds``."""
    servers, failing = _servers(answers)
    if failing and len(answers) == 1:
        return next(iter(failing.values()))
    found = sorted(
        ((query, activity) for activity, _ in servers for query in activity.long_queries),
        key=lambda pair: pair[0].seconds,
        reverse=True,
    )
    metadata = {
        "long_running_queries": len(found),
        "threshold_seconds": limit_seconds,
        "longest_seconds": round(found[0][0].seconds, 1) if found else 0.0,
        "servers": len(servers),
    }
    parts = [p.detail for p in failing.values()]
    if found:
        where = ", ".join(dict.fromkeys(activity.server for _, activity in found))
        listed = "; ".join(
            _describe(query, activity, servers) for query, activity in found[:_LISTED]
        )
        parts.append(
            f"{len(found)} query(ies) running over {limit_seconds:g} s on {where}: {listed}; "
            "inspect with pg_stat_activity, end with pg_cancel_backend(pid)"
        )
    if failing:
        return Probe(_worst(failing.values()), "; ".join(parts), metadata)
    if found:
        return Probe(Verdict.WARNING, "; ".join(parts), metadata)
    return Probe(Verdict.HEALTHY, f"no query has run over {limit_seconds:g} s", metadata)


def _servers(answers: Mapping[str, Probe]) -> tuple[Servers, dict[str, Probe]]:
    """Each server once, with the names of its databases; and the probes that failed."""
    by_identity: dict[str, tuple[ServerActivity, list[str]]] = {}
    failing = {}
    for name, probe in answers.items():
        activity = activity_of(probe)
        if activity is None:
            failing[name] = probe
            continue
        # The first answer stands for its server; the others saw the same server-wide views.
        by_identity.setdefault(activity.identity, (activity, []))[1].append(name)
    return list(by_identity.values()), failing


def _connections_metadata(servers: Servers, databases: int) -> dict[str, object]:
    metadata: dict[str, object] = {"servers": len(servers), "databases": databases}
    if not servers:
        return metadata
    fullest = max((a for a, _ in servers), key=lambda a: a.share)
    metadata.update(
        {
            "connections": fullest.connections,
            "max_connections": fullest.max_connections,
            "superuser_reserved_connections": fullest.reserved,
            "share": round(fullest.share, 3),
        }
    )
    if len(servers) > 1:
        metadata.update({f"{a.server} connections": a.connections for a, _ in servers})
    return metadata


def _server_label(activity: ServerActivity, names: list[str]) -> str:
    if names == [settings.PRIMARY_DATABASE]:
        return activity.server
    return f"{activity.server} (databases {', '.join(names)})"


def _describe(query: LongQuery, activity: ServerActivity, servers: Servers) -> str:
    where = f" on {activity.server}" if len(servers) > 1 else ""
    return (
        f"pid {query.pid}{where} ({query.user}@{query.database}) {query.seconds:.0f} s: "
        f"{query.query}"
    )


def _worst(probes: Iterable[Probe]) -> Verdict:
    """FAILED before TIMED_OUT: an error says more than silence."""
    verdicts = {probe.verdict for probe in probes}
    return Verdict.FAILED if Verdict.FAILED in verdicts else Verdict.TIMED_OUT
