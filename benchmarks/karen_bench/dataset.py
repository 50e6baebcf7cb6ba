"""Benchmark databases: created, filled with the synthetic AI Karen data set, dropped.

The data set is karen-ops' own synthetic AI Karen database (tenants, users, sessions,
conversations, messages, audit logs; karen_ops.demo.synthetic), scaled by its number of users.
Every database made here is named ``bench_<purpose>_<random>`` and dropped by whoever made it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from karen_ops.demo.synthetic import load_synthetic_database

# Measured with PostgreSQL 15: 20,000 users fill 307 MB, of which about 8 MB is the size of an
# empty database; the rest grows in proportion to the users.
EMPTY_DATABASE_BYTES = 8_000_000
BYTES_PER_USER = 14_970


@dataclass(frozen=True)
class Dataset:
    """A loaded benchmark database."""

    url: str
    name: str
    users: int
    rows: int
    database_bytes: int
    load_seconds: float


def users_for(target_bytes: int) -> int:
    """How many synthetic users make a database of about ``target_bytes``."""
    return max(200, round((target_bytes - EMPTY_DATABASE_BYTES) / BYTES_PER_USER))


def database_url(server_url: str, name: str) -> str:
    return make_conninfo(server_url, dbname=name)


def create_database(server_url: str, purpose: str) -> str:
    """Create an empty ``bench_<purpose>_<random>`` database; return its name."""
    name = f"bench_{purpose}_{secrets.token_hex(3)}"
    _admin(server_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(server_url: str, name: str) -> None:
    if not name.startswith("bench_"):
        raise ValueError(f"refusing to drop {name!r}: only bench_* databases are the benchmark's")
    _admin(
        server_url,
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
    )


@contextmanager
def scratch_database(server_url: str, purpose: str) -> Iterator[str]:
    """An empty benchmark database for the duration of the block; yields its URL."""
    name = create_database(server_url, purpose)
    try:
        yield database_url(server_url, name)
    finally:
        drop_database(server_url, name)


@contextmanager
def loaded_dataset(server_url: str, target_bytes: int, purpose: str) -> Iterator[Dataset]:
    """A synthetic AI Karen database of about ``target_bytes``, dropped after the block."""
    users = users_for(target_bytes)
    name = create_database(server_url, purpose)
    try:
        url = database_url(server_url, name)
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            rows = load_synthetic_database(conn, users=users)
            conn.execute("CHECKPOINT")  # so the first measured run does not pay for it
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        seconds = time.perf_counter() - started
        yield Dataset(url, name, users, sum(rows.values()), size, seconds)
    finally:
        drop_database(server_url, name)


def server_version(server_url: str) -> str:
    with psycopg.connect(server_url) as conn:
        return conn.execute("SELECT version()").fetchone()[0]


def maintenance_url(server_url: str) -> str:
    """The URL as given; checked to name a database so admin statements have somewhere to run."""
    if not conninfo_to_dict(server_url).get("dbname"):
        return make_conninfo(server_url, dbname="postgres")
    return server_url


def _admin(server_url: str, statement: sql.Composed) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(statement)
