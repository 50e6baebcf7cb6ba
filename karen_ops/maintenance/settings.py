"""The knobs of a maintenance run, settable per run from the Dagster launchpad."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class MaintenanceConfig(dg.Config):
    """Limits that keep maintenance inside its window and out of the application's way."""

    lock_timeout_seconds: float = Field(
        default=5.0,
        description="How long a statement waits for a table lock before the table is skipped.",
    )
    statement_timeout_seconds: float = Field(
        default=3600.0, description="Longest any single VACUUM or REINDEX may run."
    )
    time_budget_seconds: float = Field(
        default=3 * 3600.0,
        description="The maintenance window: no new table or index starts once it is spent.",
    )
    min_dead_tuples: int = Field(
        default=1000, description="Tables with fewer dead tuples are not worth a VACUUM."
    )
    vacuum_full_tables: list[str] = Field(
        default_factory=list,
        description="schema.table names that get VACUUM FULL (an exclusive lock that blocks "
        "the application for the whole rewrite); no table gets it unless listed here.",
    )
    reindex_min_bytes: int = Field(
        default=8 * 1024 * 1024, description="Indexes smaller than this are never rebuilt."
    )
    reindex_bloat_ratio: float = Field(
        default=0.5,
        description="Rebuild a B-tree when its estimated bloat is at least this share of it.",
    )
    drop_leftover_invalid_indexes: bool = Field(
        default=False,
        description="Drop invalid indexes left by an interrupted REINDEX CONCURRENTLY "
        "(named *_ccnew or *_ccold) instead of only reporting them.",
    )
    old_transaction_seconds: float = Field(
        default=3600.0,
        description="Transactions open longer than this are named as holding back cleanup.",
    )


class HealthThresholds(dg.Config):
    """When table_health's checks warn or fail."""

    dead_tuple_ratio: float = Field(
        default=0.2, description="WARN for tables whose dead tuples exceed this share."
    )
    min_dead_tuples: int = Field(
        default=1000, description="Tables with fewer dead tuples never warn, whatever the share."
    )
    unused_index_min_bytes: int = Field(
        default=16 * 1024 * 1024,
        description="WARN for never-scanned indexes at least this large (not unique or primary).",
    )
    xid_age_limit: int = Field(
        default=1_000_000_000,
        description="ERROR when a table's transaction-ID age passes this; wraparound stops "
        "writes near 2.1 billion.",
    )
