"""The day's errors from the JSON-lines error log: top types, errors by hour, endpoints."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import tzinfo

from karen_ops.security.logs import ErrorRecord

_TOP = 10


def error_summary(records: Iterable[ErrorRecord], zone: tzinfo) -> dict[str, object]:
    types: Counter[str] = Counter()
    endpoints: Counter[str] = Counter()
    hours: Counter[int] = Counter()
    for record in records:
        types[record.error_type] += 1
        endpoints[record.endpoint] += 1
        hours[record.at.astimezone(zone).hour] += 1
    return {"types": types, "endpoints": endpoints, "hours": hours}


def error_markdown(summary: dict[str, object]) -> str:
    types: Counter[str] = summary["types"]  # type: ignore[assignment]
    endpoints: Counter[str] = summary["endpoints"]  # type: ignore[assignment]
    hours: Counter[int] = summary["hours"]  # type: ignore[assignment]
    lines = ["### Top error types", "", "| error type | count |", "|---|---:|"]
    lines += [f"| {_cell(name)} | {count} |" for name, count in types.most_common(_TOP)]
    lines += ["", "### Most affected endpoints", "", "| endpoint | errors |", "|---|---:|"]
    lines += [f"| {_cell(name)} | {count} |" for name, count in endpoints.most_common(_TOP)]
    lines += ["", "### Errors by hour", "", "| hour | errors |", "|---|---:|"]
    lines += [f"| {hour:02d}:00 | {hours.get(hour, 0)} |" for hour in range(24)]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:120]
