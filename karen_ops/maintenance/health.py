"""Judging table and index statistics: what needs attention now, and what can wait."""

from __future__ import annotations

from dataclasses import dataclass

from karen_ops.maintenance.settings import HealthThresholds
from karen_ops.maintenance.stats import IndexStats, TableStats


@dataclass(frozen=True)
class Finding:
    """One check's verdict with the objects that decided it."""

    check: str
    passed: bool
    severity: str  # "WARN" or "ERROR", the Dagster check severity when it fails
    offenders: list[str]
    summary: str


def judge(
    tables: list[TableStats], indexes: list[IndexStats], limits: HealthThresholds
) -> list[Finding]:
    return [
        _dead_tuples(tables, limits),
        _unused_indexes(indexes, limits),
        _xid_age(tables, limits),
        _invalid_indexes(indexes),
    ]


def _dead_tuples(tables: list[TableStats], limits: HealthThresholds) -> Finding:
    offenders = [
        f"{t.qualified_name}: {t.dead_tuples:,} dead of {t.live_tuples + t.dead_tuples:,} "
        f"({t.dead_ratio:.0%})"
        for t in tables
        if t.dead_tuples >= limits.min_dead_tuples and t.dead_ratio > limits.dead_tuple_ratio
    ]
    return Finding(
        "dead_tuples_within_threshold",
        not offenders,
        "WARN",
        offenders,
        f"{len(offenders)} table(s) over {limits.dead_tuple_ratio:.0%} dead tuples",
    )


def _unused_indexes(indexes: list[IndexStats], limits: HealthThresholds) -> Finding:
    # Unique and primary-key indexes enforce constraints even when no query reads them.
    offenders = [
        f"{i.qualified_name}: {i.index_bytes:,} bytes, never scanned"
        for i in indexes
        if i.scans == 0
        and not (i.is_unique or i.is_primary)
        and i.index_bytes >= limits.unused_index_min_bytes
    ]
    return Finding(
        "no_large_unused_indexes",
        not offenders,
        "WARN",
        offenders,
        f"{len(offenders)} index(es) of {limits.unused_index_min_bytes:,} bytes or more "
        "never scanned",
    )


def _xid_age(tables: list[TableStats], limits: HealthThresholds) -> Finding:
    offenders = [
        f"{t.qualified_name}: transaction-ID age {t.xid_age:,}"
        for t in tables
        if t.xid_age > limits.xid_age_limit
    ]
    return Finding(
        "xid_age_within_limit",
        not offenders,
        "ERROR",
        offenders,
        f"{len(offenders)} table(s) past transaction-ID age {limits.xid_age_limit:,}; "
        "run VACUUM (FREEZE) on them before wraparound forces the server read-only",
    )


def _invalid_indexes(indexes: list[IndexStats]) -> Finding:
    offenders = [f"{i.qualified_name} on {i.schema}.{i.table_name}" for i in indexes if not i.valid]
    return Finding(
        "no_invalid_indexes",
        not offenders,
        "ERROR",
        offenders,
        f"{len(offenders)} invalid index(es): they slow every write and serve no query; "
        "rebuild with REINDEX INDEX CONCURRENTLY or drop them",
    )


def tables_markdown(tables: list[TableStats], limit: int = 25) -> str:
    worst = sorted(tables, key=lambda t: -t.dead_tuples)[:limit]
    lines = [
        "| table | live | dead | dead % | est. bloat | size | indexes | last vacuum "
        "| last analyze | xid age |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for t in worst:
        vacuumed = _latest(t.last_vacuum, t.last_autovacuum)
        analyzed = _latest(t.last_analyze, t.last_autoanalyze)
        lines.append(
            f"| {t.qualified_name} | {t.live_tuples:,} | {t.dead_tuples:,} | {t.dead_ratio:.0%} "
            f"| {t.estimated_bloat_bytes:,} | {t.table_bytes:,} | {t.index_bytes:,} "
            f"| {vacuumed} | {analyzed} | {t.xid_age:,} |"
        )
    return "\n".join(lines)


def indexes_markdown(indexes: list[IndexStats], limit: int = 25) -> str:
    worst = sorted(indexes, key=lambda i: (i.valid, -i.estimated_bloat_bytes))[:limit]
    lines = [
        "| index | table | size | est. bloat | scans | valid | unique |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    lines += [
        f"| {i.qualified_name} | {i.table_name} | {i.index_bytes:,} | {i.estimated_bloat_bytes:,} "
        f"| {i.scans:,} | {'yes' if i.valid else 'NO'} | {'yes' if i.is_unique else 'no'} |"
        for i in worst
    ]
    return "\n".join(lines)


def _latest(manual: object, automatic: object) -> str:
    moments = [m for m in (manual, automatic) if m is not None]
    return f"{max(moments):%Y-%m-%d %H:%M}" if moments else "never"
