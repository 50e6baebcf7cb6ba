"""The weekly capacity report: trailing-90-day history, charts, forecasts and triggers.

The report is markdown. In the Dagster UI its charts are inlined as data URIs; in the store
the markdown sits beside its PNG files under ``reports/capacity/<week>/``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date

import dagster as dg

from karen_ops.capacity.charts import Chart, line_chart
from karen_ops.capacity.forecast import Forecast, linear_forecast
from karen_ops.capacity.history import Series, recorded_series
from karen_ops.capacity.partitions import days_before
from karen_ops.capacity.snapshot import human_bytes
from karen_ops.capacity.triggers import Trigger, evaluate_triggers
from karen_ops.resources.store import BackupStore

TRAILING_DAYS = 90
WEEK_DAYS = 7
GIB = 1024**3

# What the report reads back from each daily asset's partitions.
SNAPSHOT_FIELDS = [
    "database_size_bytes",
    "disk_used_percent",
    "memory_used_percent",
    "cpu_percent",
    "connections_percent",
]
RECORDED = {
    "capacity_snapshot": SNAPSHOT_FIELDS,
    "user_growth": ["new_users", "cumulative_users"],
    "daily_active_users": ["active_users"],
    "chat_activity": ["messages", "conversations"],
}


@dataclass(frozen=True)
class CapacityReport:
    week: str
    as_of: date  # the week's last day
    history: dict[str, Series]
    forecasts: list[Forecast]
    triggers: list[Trigger]
    charts: list[Chart]

    def folder(self) -> str:
        return f"reports/capacity/{self.week}"


def load_history(instance: dg.DagsterInstance, week_end: date) -> dict[str, Series]:
    """Every recorded daily value of the 90 days that end with the week."""
    days = days_before(week_end, TRAILING_DAYS)
    history: dict[str, Series] = {}
    for asset, fields in RECORDED.items():
        history.update(recorded_series(instance, asset, days, fields))
    return history


def build_report(
    week: str,
    history: dict[str, Series],
    *,
    disk_threshold_percent: float,
    database_size_limit_bytes: float,
) -> CapacityReport:
    as_of = history["database_size_bytes"].days[-1]
    forecasts = [
        linear_forecast(history["database_size_bytes"], database_size_limit_bytes, as_of),
        linear_forecast(history["disk_used_percent"], disk_threshold_percent, as_of),
    ]
    last_week = {name: _tail(series, WEEK_DAYS) for name, series in history.items()}
    charts = [
        line_chart(
            "database_size",
            "Database size",
            history["database_size_bytes"],
            unit="GiB",
            scale=GIB,
            forecast=forecasts[0],
        ),
        line_chart(
            "disk_use", "Disk use", history["disk_used_percent"], unit="%", forecast=forecasts[1]
        ),
        line_chart("cumulative_users", "Users", history["cumulative_users"], unit="users"),
        line_chart("new_users", "New users per day", history["new_users"], unit="users"),
        line_chart(
            "daily_active_users", "Daily active users", history["active_users"], unit="users"
        ),
        line_chart("messages", "Messages per day", history["messages"], unit="messages"),
    ]
    return CapacityReport(
        week=week,
        as_of=as_of,
        history=history,
        forecasts=forecasts,
        triggers=evaluate_triggers(last_week, disk_threshold_percent),
        charts=charts,
    )


def render_markdown(report: CapacityReport, *, inline_charts: bool) -> str:
    size, disk = report.forecasts
    lines = [
        f"# Capacity report, week of {report.week}",
        "",
        f"From the {TRAILING_DAYS} days up to {report.as_of}. Gaps are days without an "
        "observation; they are never counted as zero.",
        "",
        "## Forecasts (linear trend)",
        "",
        "| | threshold | trend per day | crosses | in 3 months | in 6 months | in 12 months |",
        "|---|---:|---:|---|---:|---:|---:|",
        _forecast_row("database size", size, report.as_of, human_bytes, human_bytes),
        _forecast_row("disk use", disk, report.as_of, _percent, lambda v: f"{v:+.2f} points"),
        "",
        "## Scaling triggers",
        "",
        "| scaling | trigger | state | evidence |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {t.scaling} | {t.rule} | **{t.state.value}** | {t.evidence} |" for t in report.triggers
    ]
    lines += ["", "## Charts", ""]
    for chart in report.charts:
        if inline_charts:
            encoded = base64.b64encode(chart.png).decode("ascii")
            lines.append(f"![{chart.title}](data:image/png;base64,{encoded})")
        else:
            lines.append(f"![{chart.title}]({chart.name}.png)")
        lines.append("")
    return "\n".join(lines)


def write_report(report: CapacityReport, store: BackupStore) -> str:
    """Charts first, the markdown last: a report file in the store always has its charts."""
    for chart in report.charts:
        store.put_bytes(f"{report.folder()}/{chart.name}.png", chart.png)
    key = f"{report.folder()}/capacity_report.md"
    store.put_bytes(key, render_markdown(report, inline_charts=False).encode())
    return key


def _forecast_row(label: str, forecast: Forecast, as_of: date, show, show_slope) -> str:
    if forecast.slope_per_day is None:
        cells = ["n/a"] * 5
        cells[1] = forecast.crossing_text(as_of)
    else:
        cells = [
            show_slope(forecast.slope_per_day),
            forecast.crossing_text(as_of),
            *(show(forecast.projections[m]) for m in (3, 6, 12)),
        ]
    return f"| {label} | {show(forecast.threshold)} | " + " | ".join(cells) + " |"


def _percent(value: float) -> str:
    # A straight line does not stop at a full disk; say so rather than print 117%.
    return f"{value:.1f}%" if value <= 100 else f"full (trend {value:.0f}%)"


def _tail(series: Series, days: int) -> Series:
    return Series(series.name, series.days[-days:], series.values[-days:])
