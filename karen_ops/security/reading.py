"""Reading one day of a log and its rotations, line by line, counting what cannot be parsed.

logrotate renames the log to ``<log>.1`` and compresses older copies to ``<log>.2.gz`` (or
``<log>-20261120.gz`` with ``dateext``), so one day's lines may sit in any of them. A rotation
last written before the day began cannot hold any of its lines and is not opened.
"""

from __future__ import annotations

import glob
import gzip
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO, Protocol, TypeVar

from karen_ops.errors import KarenOpsError
from karen_ops.security.events import LogStats


class LogReadError(KarenOpsError):
    """A log file the security domain reads could not be opened or read."""


class _Timed(Protocol):
    at: datetime


T = TypeVar("T", bound=_Timed)


def read_day(
    path: str,
    parse: Callable[[str], T | None],
    start: datetime,
    end: datetime,
    stats: LogStats,
    setting: str,
) -> Iterator[T]:
    """Parsed records of ``path`` and its rotations timed in [start, end); unparseable lines
    of every file read go to ``stats``."""
    for name in [*rotations(path, start), path]:
        stats.files.append(name)
        try:
            with _open(name) as log:
                for line in log:
                    if not line.strip():
                        continue
                    stats.lines += 1
                    record = parse(line)
                    if record is None:
                        stats.reject(line)
                    elif start <= record.at < end:
                        yield record
        except (OSError, EOFError) as exc:
            # EOFError: a compressed rotation cut short, as while logrotate still writes it.
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise LogReadError(
                f"could not read log {name}: {reason}; set {setting} in the security section "
                "of $KAREN_OPS_CONFIG or on the security_settings resource"
            ) from exc


def rotations(path: str, since: datetime) -> list[str]:
    """``<path>.1`` and ``<path>*.gz`` last written at or after ``since``, oldest first."""
    pattern = glob.escape(path)
    candidates = set(glob.glob(f"{pattern}.1")) | set(glob.glob(f"{pattern}*.gz"))
    written = {}
    for name in candidates:
        try:
            written[name] = os.stat(name).st_mtime
        except OSError:
            continue  # rotated away between listing and reading
    recent = [name for name, mtime in written.items() if mtime >= since.timestamp()]
    return sorted(recent, key=lambda name: (written[name], name))


def _open(name: str) -> IO[str]:
    # Hostile lines may hold any bytes: replace what is not UTF-8 rather than fail.
    if name.endswith(".gz"):
        return gzip.open(name, "rt", encoding="utf-8", errors="replace")
    return open(name, encoding="utf-8", errors="replace")
