"""Which base backups and WAL files to keep.

Base backups follow a count and age policy: the newest ``keep_count`` are kept, and every one
younger than ``max_age_days``; pinned ones and the newest verified one are always kept. WAL is
then cut at the oldest kept base backup: recovery from a base backup replays WAL forward from
the segment its start position lies in, on whatever timelines lead to the target, and never
reads an earlier position. So every segment (and ``.partial`` or ``.backup`` file) numbered
below the oldest kept backup's start segment goes, on every timeline; timeline history files
are a few bytes each and always stay, since recovery follows them to find its way across
timelines. With no base backup in the store, no WAL is deleted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dagster as dg
from pydantic import Field

from karen_ops.errors import PitrError
from karen_ops.pitr.basemanifest import BaseManifest
from karen_ops.pitr.walnames import (
    DATA_SUFFIX,
    SIDECAR_SUFFIX,
    WalKind,
    parse_lsn,
    parse_wal_name,
)
from karen_ops.resources.store.catalog import CatalogEntry


class Action(enum.Enum):
    """What retention does with one base backup."""

    KEEP = "keep"  # at least one rule keeps it
    DELETE = "delete"  # no rule keeps it


class WalRetentionConfig(dg.Config):
    """The base backup policy, settable per run from the launchpad."""

    keep_count: int = Field(default=7, ge=1, description="Keep the newest N base backups.")
    max_age_days: float = Field(
        default=30, ge=0, description="Keep every base backup younger than this many days."
    )
    dry_run: bool = Field(default=False, description="Plan and report only; delete nothing.")


@dataclass(frozen=True)
class BaseBackup:
    """One base backup as retention sees it: its catalog marks and its WAL start."""

    entry: CatalogEntry
    manifest: BaseManifest

    @property
    def start_segno(self) -> int:
        return parse_lsn(self.manifest.start_lsn) // self.manifest.wal_segment_bytes


@dataclass
class Decision:
    backup: BaseBackup
    reasons: list[str] = field(default_factory=list)

    @property
    def action(self) -> Action:
        return Action.KEEP if self.reasons else Action.DELETE


@dataclass(frozen=True)
class WalPlan:
    """Base backup decisions and the WAL files that go with the cut."""

    decisions: list[Decision]
    cutoff_segment: str | None  # the oldest kept backup's start segment; None: keep all WAL
    wal_deleted: list[str]  # archived WAL file names below the cut, oldest first
    wal_kept: int

    @property
    def deleting(self) -> list[Decision]:
        return [d for d in self.decisions if d.action is Action.DELETE]


def decide_base_backups(
    backups: list[BaseBackup], config: WalRetentionConfig, now: datetime
) -> list[Decision]:
    """A decision per base backup, newest first."""
    newest_first = sorted(backups, key=lambda b: b.entry.created_at, reverse=True)
    decisions = [Decision(backup) for backup in newest_first]
    for rank, decision in enumerate(decisions, start=1):
        entry = decision.backup.entry
        if rank <= config.keep_count:
            decision.reasons.append(f"newest {config.keep_count}")
        if now - entry.created_at < timedelta(days=config.max_age_days):
            decision.reasons.append(f"younger than {config.max_age_days:g} days")
        if entry.pinned:
            decision.reasons.append(f"pinned: {entry.pin_label}")
    newest_verified = next((d for d in decisions if d.backup.entry.verified), None)
    if newest_verified is not None:
        newest_verified.reasons.append("newest verified base backup")
    return decisions


def plan_wal_retention(
    backups: list[BaseBackup], wal_names: set[str], config: WalRetentionConfig, now: datetime
) -> WalPlan:
    """Base backup decisions, and every archived WAL file older than the oldest kept backup."""
    decisions = decide_base_backups(backups, config, now)
    kept = [d.backup for d in decisions if d.action is Action.KEEP]
    if not kept:
        return WalPlan(decisions, None, [], len(wal_names))

    oldest = min(kept, key=lambda b: b.start_segno)
    segment_bytes = oldest.manifest.wal_segment_bytes
    cutoff = oldest.start_segno
    below = []
    for name in wal_names:
        try:
            wal = parse_wal_name(name)
        except PitrError:  # not PostgreSQL's: not retention's to delete
            continue
        if wal.kind is not WalKind.HISTORY and wal.segno(segment_bytes) < cutoff:
            below.append((wal.segno(segment_bytes), wal.timeline, name))
    deleted = [name for _, _, name in sorted(below)]
    return WalPlan(
        decisions, oldest.manifest.start_wal_file, deleted, len(wal_names) - len(deleted)
    )


def wal_names_in(keys: list[str]) -> dict[str, list[str]]:
    """Archived WAL file name -> its store keys (data and sidecar, either may be alone)."""
    found: dict[str, list[str]] = {}
    for key in keys:
        base = key.rsplit("/", 1)[-1]
        for suffix in (SIDECAR_SUFFIX, DATA_SUFFIX):
            if base.endswith(suffix):
                found.setdefault(base[: -len(suffix)], []).append(key)
    return found


def plan_markdown(plan: WalPlan) -> str:
    lines = [
        "| base backup | created | start WAL | size | verified | action | why |",
        "|---|---|---|---:|---|---|---|",
    ]
    for d in sorted(plan.decisions, key=lambda d: d.backup.entry.created_at):
        e, m = d.backup.entry, d.backup.manifest
        lines.append(
            f"| {e.backup_id} | {e.created_at:%Y-%m-%d %H:%M} | {m.start_wal_file} "
            f"| {e.size_bytes:,} | {'yes' if e.verified else 'no'} | {d.action.value} "
            f"| {'; '.join(d.reasons) or 'no rule keeps it'} |"
        )
    wal = plan.wal_deleted
    if plan.cutoff_segment is None:
        lines += ["", "WAL: no base backup is kept, so no WAL file is deleted."]
    elif wal:
        lines += [
            "",
            f"WAL: {len(wal)} file(s) before {plan.cutoff_segment} deleted, "
            f"{wal[0]} to {wal[-1]}; {plan.wal_kept} kept.",
        ]
    else:
        lines += ["", f"WAL: nothing before {plan.cutoff_segment}; {plan.wal_kept} kept."]
    return "\n".join(lines)
