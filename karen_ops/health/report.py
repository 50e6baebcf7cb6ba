"""The daily health report: uptime per component and every failure, from the check history.

It reads the evaluations of every health check, whichever job ran them: the five-minute probes
and the hourly detail alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,
)

# A day of five-minute checks is 288 evaluations; pages of this size keep each query small.
_PAGE = 500

# Failures listed in the report; the count per component is always complete.
_LISTED_FAILURES = 100


@dataclass(frozen=True)
class Evaluation:
    """One finished evaluation of one health check."""

    component: str
    check: str
    run_id: str
    at: float  # seconds since the epoch
    passed: bool
    severity: str  # WARN or ERROR: how much a failure of this evaluation matters
    description: str


def load_evaluations(
    instance: dg.DagsterInstance, checks: Iterable[tuple[str, str]], since: float
) -> list[Evaluation]:
    """Every evaluation of ``checks`` recorded in the instance at or after ``since``."""
    found = []
    storage = instance.event_log_storage
    for component, check in checks:
        key = dg.AssetCheckKey(dg.AssetKey(component), check)
        cursor = None
        while True:
            records = storage.get_asset_check_execution_history(
                key,
                limit=_PAGE,
                cursor=cursor,
                status={
                    AssetCheckExecutionRecordStatus.SUCCEEDED,
                    AssetCheckExecutionRecordStatus.FAILED,
                },
            )
            for record in records:
                if record.create_timestamp < since:
                    break
                evaluation = record.event.dagster_event.event_specific_data
                found.append(
                    Evaluation(
                        component,
                        check,
                        record.run_id,
                        record.create_timestamp,
                        bool(evaluation.passed),
                        evaluation.severity.value,
                        evaluation.description or "",
                    )
                )
            else:
                if len(records) == _PAGE:
                    cursor = records[-1].id
                    continue
            break
    return found


def uptime_markdown(
    evaluations: list[Evaluation],
    components: list[str],
    since: float,
    until: float,
    timezone: str,
) -> tuple[str, dict[str, float | None]]:
    """The report, and each component's uptime (None when it was never checked).

    A component is up in a run that checked it when every one of its checks in that run
    passed; its uptime is the share of such runs. A five-minute and an hourly run are two runs
    even when they start in the same second.
    """
    zone = ZoneInfo(timezone)
    runs_by_component: dict[str, dict[str, bool]] = defaultdict(dict)
    for e in evaluations:
        runs = runs_by_component[e.component]
        runs[e.run_id] = runs.get(e.run_id, True) and e.passed

    uptime: dict[str, float | None] = {}
    lines = [
        f"## Health from {_time(since, zone)} to {_time(until, zone)} ({timezone})",
        "",
        "| component | uptime | runs that checked it | runs with a failure |",
        "|---|---:|---:|---:|",
    ]
    for component in components:
        runs = runs_by_component.get(component, {})
        up = sum(1 for ok in runs.values() if ok)
        uptime[component] = up / len(runs) if runs else None
        shown = f"{up / len(runs):.2%}" if runs else "no checks recorded"
        lines.append(f"| {component} | {shown} | {len(runs)} | {len(runs) - up} |")

    failures = sorted((e for e in evaluations if not e.passed), key=lambda e: e.at)
    lines += ["", f"### Failures ({len(failures)})", ""]
    if not failures:
        lines.append("None.")
    else:
        lines += [
            "| time | component | check | severity | what failed |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {_time(e.at, zone)} | {e.component} | {e.check} | {e.severity} "
            f"| {_cell(e.description)} |"
            for e in failures[-_LISTED_FAILURES:]
        ]
        if len(failures) > _LISTED_FAILURES:
            lines.append(f"\nOnly the last {_LISTED_FAILURES} failures are listed.")
    return "\n".join(lines), uptime


def _time(at: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, zone).strftime("%Y-%m-%d %H:%M")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]
