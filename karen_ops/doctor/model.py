"""What one check found, and how it is printed."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.Enum):
    """The outcome of one check."""

    OK = "ok"  # checked and working
    WARN = "warn"  # working, or optional and not set up, but something deserves attention
    FAIL = "fail"  # required and broken or missing: karen-ops runs will fail until fixed
    SKIP = "skip"  # not configured and not required, or not checkable until another item passes

    @property
    def label(self) -> str:
        return self.value.upper()


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``item`` is what was checked, ``fix`` what to do about it."""

    item: str
    status: Status
    detail: str
    fix: str | None = None

    def line(self) -> str:
        text = f"{self.status.label:<4}  {self.item:<16}  {self.detail}"
        return f"{text}; fix: {self.fix}" if self.fix else text


# Why the checks of one settings section are skipped when the file as a whole is broken: the
# code location check fails on it already, and one cause should make one failed line.
SETTINGS_FILE_BROKEN = "the settings file does not load (see the code location line)"


def ok(item: str, detail: str) -> Finding:
    return Finding(item, Status.OK, detail)


def warn(item: str, detail: str, fix: str | None = None) -> Finding:
    return Finding(item, Status.WARN, detail, fix)


def fail(item: str, detail: str, fix: str) -> Finding:
    return Finding(item, Status.FAIL, detail, fix)


def skip(item: str, detail: str) -> Finding:
    return Finding(item, Status.SKIP, detail)


def exit_status(findings: list[Finding]) -> int:
    """1 when any required item failed, else 0: warnings do not fail the doctor."""
    return 1 if any(f.status is Status.FAIL for f in findings) else 0
