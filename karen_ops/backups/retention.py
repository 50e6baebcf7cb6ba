"""Which backups to keep: grandfather-father-son restore points, age rules, pins, and never the
newest verified backup of anything.

A backup is kept when any rule keeps it and deleted only when none does; every decision
carries its reasons so the plan can be read before anything is deleted. Backups are ordered
by the creation time in their manifests, never by object names.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import Field

from karen_ops.resources.store.catalog import CatalogEntry


class Action(enum.Enum):
    """What retention does with one backup."""

    KEEP = "keep"  # at least one rule keeps it
    DELETE = "delete"  # no rule keeps it


class RetentionConfig(dg.Config):
    """The policy, settable per run from the launchpad."""

    daily: int = Field(default=7, description="Newest backup of each of the last N days.")
    weekly: int = Field(default=4, description="Newest backup of each of the last N weeks.")
    monthly: int = Field(default=12, description="Newest backup of each of the last N months.")
    max_age_days: dict[str, int] = Field(
        default_factory=lambda: {
            "postgres": 30,
            "application": 7,
            "config": 30,
            "logs": 30,
            "security_logs": 365,
        },
        description="Per kind, keep every backup younger than this many days.",
    )
    min_verified_restore_points: int = Field(
        default=3,
        description="Refuse a plan that leaves a database fewer verified backups than this "
        "(or than it has now, if fewer).",
    )
    incomplete_after_hours: float = Field(
        default=24, description="Unfinished uploads older than this are removed."
    )
    timezone: str = Field(default="UTC", description="Days, weeks and months are cut here.")
    dry_run: bool = Field(default=False, description="Plan and report only; delete nothing.")


@dataclass
class Decision:
    entry: CatalogEntry
    reasons: list[str] = field(default_factory=list)

    @property
    def action(self) -> Action:
        return Action.KEEP if self.reasons else Action.DELETE


def plan_retention(
    entries: Iterable[CatalogEntry], config: RetentionConfig, now: datetime
) -> list[Decision]:
    """A decision for every backup, grouped by kind and name, each group newest first."""
    groups: dict[tuple[str, str], list[CatalogEntry]] = defaultdict(list)
    for entry in entries:
        groups[(entry.kind, entry.name)].append(entry)

    decisions = []
    for members in groups.values():
        decisions += _decide_group(
            sorted(members, key=lambda e: e.created_at, reverse=True), config, now
        )
    return decisions


def _decide_group(
    newest_first: list[CatalogEntry], config: RetentionConfig, now: datetime
) -> list[Decision]:
    zone = ZoneInfo(config.timezone)
    decisions = [Decision(entry) for entry in newest_first]

    cycles = (("daily", config.daily, _day), ("weekly", config.weekly, _week))
    for label, count, bucket in (*cycles, ("monthly", config.monthly, _month)):
        _keep_newest_per_bucket(decisions, label, count, bucket, zone)

    for decision in decisions:
        entry = decision.entry
        max_age = config.max_age_days.get(entry.kind)
        if max_age is not None and now - entry.created_at < timedelta(days=max_age):
            decision.reasons.append(f"younger than {max_age} days")
        if entry.pinned:
            decision.reasons.append(f"pinned: {entry.pin_label}")

    newest_verified = next((d for d in decisions if d.entry.verified), None)
    if newest_verified is not None:
        newest_verified.reasons.append("newest verified backup")
    return decisions


def _keep_newest_per_bucket(
    decisions: list[Decision],
    label: str,
    count: int,
    bucket: Callable[[datetime], str],
    zone: ZoneInfo,
) -> None:
    seen: list[str] = []
    for decision in decisions:  # newest first, so the first of each bucket is its newest
        key = bucket(decision.entry.created_at.astimezone(zone))
        if key in seen:
            continue
        if len(seen) == count:
            return
        seen.append(key)
        decision.reasons.append(f"{label} {key}")


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def _month(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


@dataclass(frozen=True)
class RestorePoints:
    """Verified backups of one database before and after a plan."""

    name: str
    before: int
    after: int

    def enough(self, minimum: int) -> bool:
        return self.after >= min(minimum, self.before)


def verified_restore_points(decisions: list[Decision]) -> list[RestorePoints]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for decision in decisions:
        if decision.entry.kind == "postgres" and decision.entry.verified:
            counts[decision.entry.name][0] += 1
            counts[decision.entry.name][1] += decision.action is Action.KEEP
    return [RestorePoints(name, before, after) for name, (before, after) in sorted(counts.items())]


def plan_markdown(decisions: list[Decision]) -> str:
    lines = [
        "| backup | kind | created | size | verified | action | why |",
        "|---|---|---|---:|---|---|---|",
    ]
    for d in sorted(decisions, key=lambda d: (d.entry.kind, d.entry.name, d.entry.created_at)):
        e = d.entry
        why = "; ".join(d.reasons) or "no rule keeps it"
        lines.append(
            f"| {e.folder} | {e.kind} | {e.created_at:%Y-%m-%d %H:%M} | {e.size_bytes:,} "
            f"| {'yes' if e.verified else 'no'} | {d.action.value} | {why} |"
        )
    return "\n".join(lines)
