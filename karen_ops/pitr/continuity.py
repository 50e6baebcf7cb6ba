"""Proving the WAL archive continuous: every segment from a base backup's start to now.

Recovery replays WAL along one path of timelines. A timeline history file (``N.history``)
lists, for timeline N, each ancestor and the WAL position where N's line branched off it.
From a base backup on timeline A at position P, recovery needs A's segments from P's segment
up to the one before the branch point, then the next timeline's from the branch point's
segment (which holds a copy of the old timeline's WAL up to the branch), and so on to the
newest segment of the current timeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from karen_ops.errors import PitrError
from karen_ops.pitr import walstore
from karen_ops.pitr.walnames import WalKind, parse_lsn, parse_wal_name, segment_name
from karen_ops.resources.store import BackupStore


@dataclass(frozen=True)
class Section:
    """The stretch of one timeline that recovery replays: segments ``first`` to ``last``."""

    timeline: int
    first: int
    last: int | None  # None: up to the newest archived segment of this timeline


@dataclass(frozen=True)
class Continuity:
    first_segment: str
    last_segment: str
    segments_checked: int
    missing: list[str]
    timelines: list[int]

    @property
    def continuous(self) -> bool:
        return not self.missing


def parse_history(text: str) -> list[tuple[int, int]]:
    """(ancestor timeline, branch point) pairs of a history file, oldest first."""
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        entries.append((int(parts[0]), parse_lsn(parts[1])))
    return entries


def recovery_path(
    start_timeline: int,
    start_lsn: int,
    target_timeline: int,
    history: list[tuple[int, int]],
    segment_bytes: int,
) -> list[Section]:
    """The sections of each timeline that replay from ``start_lsn`` to ``target_timeline``."""
    sections, begin = [], None
    for timeline, branch in [*history, (target_timeline, None)]:
        if timeline == start_timeline:
            begin = start_lsn
        if begin is None:
            continue
        if branch is not None and branch <= begin:
            raise PitrError(
                f"timeline {timeline} branched off at a position before the base backup's "
                "start; the base backup is not on the current timeline's history"
            )
        last = None if branch is None else branch // segment_bytes - 1
        sections.append(Section(timeline, begin // segment_bytes, last))
        begin = branch
    if not sections:
        raise PitrError(
            f"the base backup's timeline {start_timeline} is not an ancestor of timeline "
            f"{target_timeline}; take a new base backup on the current timeline"
        )
    return sections


def check_continuity(
    store: BackupStore,
    cluster: str,
    *,
    start_timeline: int,
    start_lsn: str,
    target_timeline: int,
    segment_bytes: int,
    through_segno: int | None = None,
) -> Continuity:
    """Which segments between the base backup's start and now are missing from the archive.

    ``through_segno`` is the last segment that must be archived (the one before the server's
    current segment); without it, the newest archived segment of the target timeline.
    """
    archived = walstore.archived_names(store, cluster)
    history: list[tuple[int, int]] = []
    if target_timeline > 1:
        name = f"{target_timeline:08X}.history"
        if name not in archived:
            raise PitrError(f"timeline history {name} is not in the WAL archive {store.url}")
        history = parse_history(walstore.read_archived(store, cluster, name).decode())
    sections = recovery_path(
        start_timeline, parse_lsn(start_lsn), target_timeline, history, segment_bytes
    )

    newest = _newest_segno(archived, target_timeline, segment_bytes)
    end = through_segno if through_segno is not None else newest
    if end is None:
        end = sections[-1].first
    missing, checked, names = [], 0, []
    for section in sections:
        last = end if section.last is None else section.last
        for segno in range(section.first, last + 1):
            name = segment_name(section.timeline, segno, segment_bytes)
            names.append(name)
            checked += 1
            if name not in archived:
                missing.append(name)
    return Continuity(
        first_segment=names[0] if names else "",
        last_segment=names[-1] if names else "",
        segments_checked=checked,
        missing=missing,
        timelines=[section.timeline for section in sections],
    )


def _newest_segno(archived: set[str], timeline: int, segment_bytes: int) -> int | None:
    segnos = []
    for name in archived:
        wal = parse_wal_name(name)
        if wal.kind is WalKind.SEGMENT and wal.timeline == timeline:
            segnos.append(wal.segno(segment_bytes))
    return max(segnos, default=None)


def describe_missing(missing: list[str], limit: int = 10) -> str:
    shown = ", ".join(missing[:limit])
    return shown + (f" and {len(missing) - limit} more" if len(missing) > limit else "")
