"""Suspicious activity of one day, aggregated per client and per kind."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from karen_ops.security.logs import AuthEvent, Request
from karen_ops.security.patterns import sql_injection_patterns

_WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_EXAMPLE_CHARS = 120


class Kind(enum.Enum):
    """What a client did that is worth an operator's look."""

    FAILED_LOGINS = "failed_logins"  # more failed logins than the limit in one sliding window
    WRITE_BURST = "write_burst"  # more POST/PUT/DELETE/PATCH requests in a day than the limit
    SQL_INJECTION = "sql_injection"  # request URIs matching SQL-injection patterns


@dataclass
class Finding:
    """One kind of activity by one client."""

    client: str
    kind: Kind
    count: int
    first: datetime
    last: datetime
    detail: str


@dataclass
class LogStats:
    """How much of one configured log, with its rotations, could be read."""

    path: str
    files: list[str] = field(default_factory=list)  # the log and the rotations read
    lines: int = 0
    unparseable: int = 0
    examples: list[str] = field(default_factory=list)

    def reject(self, line: str) -> None:
        self.unparseable += 1
        if len(self.examples) < 5:
            shown = line.rstrip("\n")[:_EXAMPLE_CHARS].encode("unicode_escape").decode("ascii")
            self.examples.append(shown)


def failed_login_bursts(
    events: Iterable[AuthEvent], limit: int, window: timedelta
) -> list[Finding]:
    """Clients with more than ``limit`` failed logins within any ``window``; count is the
    largest number seen in one window."""
    times: dict[str, list[datetime]] = defaultdict(list)
    for event in events:
        if event.failed_login:
            times[event.client].append(event.at)
    findings = []
    for client, moments in times.items():
        moments.sort()
        best, best_start, start = 0, 0, 0
        for end, moment in enumerate(moments):
            while moment - moments[start] >= window:
                start += 1
            if end - start + 1 > best:
                best, best_start = end - start + 1, start
        if best > limit:
            findings.append(
                Finding(
                    client,
                    Kind.FAILED_LOGINS,
                    best,
                    moments[best_start],
                    moments[best_start + best - 1],
                    f"{best} failed logins within {window.total_seconds() / 60:g} minutes "
                    f"({len(moments)} that day)",
                )
            )
    return findings


def request_findings(requests: Iterable[Request], write_limit: int) -> list[Finding]:
    """Clients over ``write_limit`` write requests, and every client sending SQL injection."""
    writes: dict[str, list[datetime]] = defaultdict(list)
    injections: dict[str, list[tuple[datetime, str, list[str]]]] = defaultdict(list)
    for request in requests:
        if request.method in _WRITE_METHODS:
            writes[request.client].append(request.at)
        matched = sql_injection_patterns(request.uri)
        if matched:
            injections[request.client].append((request.at, request.uri, matched))

    findings = [
        Finding(
            c,
            Kind.WRITE_BURST,
            len(t),
            min(t),
            max(t),
            f"{len(t)} write requests that day, over the limit of {write_limit}",
        )
        for c, t in writes.items()
        if len(t) > write_limit
    ]
    for client, hits in injections.items():
        patterns = sorted({name for _, _, names in hits for name in names})
        findings.append(
            Finding(
                client,
                Kind.SQL_INJECTION,
                len(hits),
                min(at for at, _, _ in hits),
                max(at for at, _, _ in hits),
                f"{len(hits)} request(s) matching SQL injection patterns {', '.join(patterns)}, "
                f"e.g. {hits[0][1][:_EXAMPLE_CHARS]}",
            )
        )
    return findings


def findings_summary(findings: list[Finding], listed: int) -> str | None:
    """The check's description: what each of the first ``listed`` clients did."""
    if not findings:
        return None
    shown = [f"{f.client}: {f.detail}" for f in findings[:listed]]
    if len(findings) > listed:
        shown.append(f"and {len(findings) - listed} more")
    return "; ".join([*shown, "the materialization's report gives each one's first and last time"])


def findings_markdown(findings: list[Finding], stats: list[LogStats]) -> str:
    lines = ["| client | kind | count | first | last | detail |", "|---|---|---:|---|---|---|"]
    for f in sorted(findings, key=lambda f: (f.kind.value, -f.count, f.client)):
        lines.append(
            f"| {_cell(f.client)} | {f.kind.value} | {f.count} | {f.first:%H:%M:%S} "
            f"| {f.last:%H:%M:%S} | {_cell(f.detail)} |"
        )
    if not findings:
        lines.append("| (none) | | | | | |")
    lines += [
        "",
        "| log | lines | unparseable | files read | examples |",
        "|---|---:|---:|---|---|",
    ]
    for s in stats:
        examples = "<br>".join(f"`{_cell(e)}`" for e in s.examples) or ""
        files = "<br>".join(_cell(f) for f in s.files)
        lines.append(f"| {s.path} | {s.lines} | {s.unparseable} | {files} | {examples} |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")
