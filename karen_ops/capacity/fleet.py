"""Each database of the fleet observed for the capacity snapshot, every one on its own.

The fleet is the ``databases`` section of the settings file, read when the run starts. A
database that cannot be reached or read is kept as an observation with the reason and no
figures, so the snapshot records a gap for it, never a zero, and still records the others.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg

from karen_ops.capacity.snapshot import DatabaseUsage, observe_database
from karen_ops.errors import KarenOpsError
from karen_ops.resources.postgres import PostgresResource, connect
from karen_ops.settings import FleetDatabase

# Databases observed at once. Each observation waits at most the connect timeout for a host
# that does not answer, so a few side by side keep a large fleet's snapshot short without
# opening a burst of connections against one server.
PARALLEL_OBSERVATIONS = 4


@dataclass(frozen=True)
class FleetObservation:
    """One fleet database as the snapshot saw it: its figures, or why there are none."""

    name: str  # the database's name in the settings file
    server: str  # host:port; never the URL, which may hold a password
    usage: DatabaseUsage | None
    problem: str | None = None

    @property
    def observed(self) -> bool:
        return self.usage is not None


@dataclass(frozen=True)
class RelationQuery:
    """What to list of each database's relations (the capacity resource's settings)."""

    schema: str
    always: list[str]
    limit: int


def observe_fleet(
    postgres: PostgresResource, fleet: tuple[FleetDatabase, ...], relations: RelationQuery
) -> list[FleetObservation]:
    """Every database of ``fleet``, in the order the settings file names them."""
    if not fleet:
        return []
    workers = min(PARALLEL_OBSERVATIONS, len(fleet))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="capacity") as pool:
        return list(pool.map(lambda database: _observe(postgres, database, relations), fleet))


def _observe(
    postgres: PostgresResource, database: FleetDatabase, relations: RelationQuery
) -> FleetObservation:
    try:
        conninfo = postgres.source(database)
    except KarenOpsError as exc:
        return FleetObservation(database.name, "unknown", None, _one_line(exc))
    try:
        with connect(conninfo, setting=database.url_env) as conn:
            conn.read_only = True
            usage = observe_database(
                conn, schema=relations.schema, always=relations.always, limit=relations.limit
            )
    except (KarenOpsError, psycopg.Error) as exc:
        return FleetObservation(database.name, conninfo.server(), None, _one_line(exc))
    return FleetObservation(database.name, conninfo.server(), usage)


def _one_line(exc: BaseException) -> str:
    # libpq's messages span lines; a table cell and a log line need one.
    return " ".join(str(exc).split()) or type(exc).__name__
