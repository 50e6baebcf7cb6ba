"""Reading one day of a log file, line by line, counting what cannot be parsed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Protocol, TypeVar

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
    """Parsed records of ``path`` timed in [start, end); unparseable lines go to ``stats``."""
    try:
        # Hostile lines may hold any bytes: replace what is not UTF-8 rather than fail.
        with open(path, encoding="utf-8", errors="replace") as log:
            for line in log:
                if not line.strip():
                    continue
                stats.lines += 1
                record = parse(line)
                if record is None:
                    stats.reject(line)
                elif start <= record.at < end:
                    yield record
    except OSError as exc:
        raise LogReadError(
            f"could not read log {path}: {exc.strerror}; set {setting} in the security section "
            "of $KAREN_OPS_CONFIG or on the security_settings resource"
        ) from exc
