"""Names of the files PostgreSQL archives, and where each one lives in the backup store.

A WAL segment is named ``TTTTTTTTXXXXXXXXYYYYYYYY``: its timeline and its segment number, the
number split in two at 4 GiB of WAL. Beside segments, PostgreSQL archives timeline history
files (``00000002.history``), backup history files (``<segment>.<offset>.backup``) and, on
promotion, the unfinished last segment of the old timeline (``<segment>.partial``).

In the store every file sits under its cluster and timeline, segments grouped by the first
half of their number so that no folder holds more than a few hundred::

    wal/<cluster>/<timeline>/<XXXXXXXX>/<segment>.zst     the compressed file
    wal/<cluster>/<timeline>/<XXXXXXXX>/<segment>.json    its sidecar, written last
    wal/<cluster>/history/<TTTTTTTT>.history.zst          timeline history files
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from karen_ops.errors import PitrError

DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024
WAL_ROOT = "wal"
DATA_SUFFIX = ".zst"
SIDECAR_SUFFIX = ".json"

_SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
_HISTORY = re.compile(r"^([0-9A-F]{8})\.history$")
_BACKUP = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})\.[0-9A-F]{8}\.backup$")
_PARTIAL = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})\.partial$")


class WalKind(enum.Enum):
    SEGMENT = "segment"  # a whole 16 MiB (by default) piece of the write-ahead log
    HISTORY = "history"  # where a timeline branched off its parent
    BACKUP = "backup"  # the start and end of one base backup, written by pg_backup_stop
    PARTIAL = "partial"  # the unfinished last segment of a timeline left by a promotion


@dataclass(frozen=True)
class WalFile:
    """One archivable file, by name."""

    name: str
    kind: WalKind
    timeline: int
    log: int = 0  # the high half of the segment number (segments and their relatives only)
    seg: int = 0  # the low half

    def segno(self, segment_bytes: int) -> int:
        return self.log * segments_per_log(segment_bytes) + self.seg


def parse_wal_name(name: str) -> WalFile:
    """What ``name`` is, or a PitrError for anything PostgreSQL would not archive."""
    for kind, pattern in (
        (WalKind.SEGMENT, _SEGMENT),
        (WalKind.BACKUP, _BACKUP),
        (WalKind.PARTIAL, _PARTIAL),
    ):
        match = pattern.match(name)
        if match:
            tli, log, seg = (int(part, 16) for part in match.groups())
            return WalFile(name, kind, tli, log, seg)
    match = _HISTORY.match(name)
    if match:
        return WalFile(name, WalKind.HISTORY, int(match.group(1), 16))
    raise PitrError(
        f"{name!r} is not the name of a WAL segment, history, backup or partial file; "
        "archive_command must pass %p and restore_command %f %p"
    )


def segments_per_log(segment_bytes: int) -> int:
    return 0x100000000 // segment_bytes


def segment_name(timeline: int, segno: int, segment_bytes: int) -> str:
    per_log = segments_per_log(segment_bytes)
    return f"{timeline:08X}{segno // per_log:08X}{segno % per_log:08X}"


def parse_lsn(text: str) -> int:
    """``'0/3000028'`` as a number."""
    high, _, low = text.partition("/")
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError as exc:
        raise PitrError(f"{text!r} is not a WAL position such as 0/3000028") from exc


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def lsn_segno(lsn: int, segment_bytes: int) -> int:
    return lsn // segment_bytes


def cluster_prefix(cluster: str) -> str:
    return f"{WAL_ROOT}/{cluster}/"


def folder_for(cluster: str, wal: WalFile) -> str:
    """The store folder that holds ``wal`` and its sidecar."""
    if wal.kind is WalKind.HISTORY:
        return f"{cluster_prefix(cluster)}history/"
    return f"{cluster_prefix(cluster)}{wal.timeline:08X}/{wal.log:08X}/"


def data_key(cluster: str, wal: WalFile) -> str:
    return folder_for(cluster, wal) + wal.name + DATA_SUFFIX


def sidecar_key(cluster: str, wal: WalFile) -> str:
    return folder_for(cluster, wal) + wal.name + SIDECAR_SUFFIX
