"""The benchmark's results as a printed table and as docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from karen_bench.dataset import Dataset
from karen_bench.growth import GrowthResult
from karen_bench.measure import MIB, Series

FINDINGS = Path(__file__).with_name("FINDINGS.md")


@dataclass
class Results:
    """Everything one run of the benchmark measured."""

    machine: dict[str, str]
    command: str
    dataset: Dataset
    repeat: int
    backup: dict[str, Series] = field(default_factory=dict)
    restore: dict[str, Series] = field(default_factory=dict)
    large: tuple[Dataset, Series] | None = None
    growth: GrowthResult | None = None
    definitions: Series | None = None
    load_average: list[str] = field(default_factory=list)


def machine_details(work: Path, server_version: str, pg_dump: str) -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    usage = shutil.disk_usage(work)
    return {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "disk": f"{_disk_of(work)}, {usage.total / 1024**3:.0f} GiB, "
        f"{usage.free / 1024**3:.0f} GiB free",
        "operating system": f"{platform.system()} {platform.release()}",
        "PostgreSQL server": server_version.split(" on ")[0],
        "client tools": pg_dump,
        "Python": platform.python_version(),
    }


def _disk_of(path: Path) -> str:
    found = subprocess.run(
        ["df", "--output=source,fstype", str(path)], capture_output=True, text=True, check=False
    )
    lines = found.stdout.split()
    if len(lines) < 4:
        return "unknown"
    device, fstype = lines[2], lines[3]
    block = Path("/sys/block") / Path(device).name / "queue" / "rotational"
    kind = ""
    if block.exists():
        kind = ", rotational" if block.read_text().strip() == "1" else ", non-rotational"
    return f"{device} ({fstype}{kind})"


def seconds_text(series: Series) -> str:
    low, high = min(series.walls), max(series.walls)
    return f"{series.wall:.2f} ({low:.2f}-{high:.2f})"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def backup_rows(results: Results) -> list[list[str]]:
    script, ceiling = results.backup["script"].wall, results.backup["ceiling"].wall
    rows = []
    for name, series in results.backup.items():
        rows.append(
            [
                name,
                seconds_text(series),
                f"{series.cpu:.2f}",
                _mib(series.peak_rss),
                _mib(series.stored_bytes),
                _ratio(script, series.wall),
                _ratio(series.wall, ceiling),
            ]
        )
    return rows


def restore_rows(results: Results) -> list[list[str]]:
    script, raw = results.restore["script"].wall, results.restore["raw"].wall
    rows = []
    for name, series in results.restore.items():
        rows.append(
            [
                name,
                seconds_text(series),
                f"{series.cpu:.2f}",
                _mib(series.peak_rss),
                _ratio(script, series.wall),
                _ratio(series.wall, raw),
            ]
        )
    return rows


def targets(results: Results) -> list[list[str]]:
    """Each target with its measured value, whether it is met, and by how much it is missed."""
    backup, restore = results.backup, results.restore
    karen = backup["karen-ops"]
    rows = [
        _target(
            "backup >= 4x faster than pg_dump | gzip",
            backup["script"].wall / karen.wall,
            4,
            True,
            "x",
        ),
        _target(
            "backup <= 1.3x the uncompressed ceiling",
            karen.wall / backup["ceiling"].wall,
            1.3,
            False,
            "x",
        ),
        _target(
            "stored bytes <= the script's",
            karen.stored_bytes / backup["script"].stored_bytes,  # type: ignore[operator]
            1.0,
            False,
            "x",
        ),
        _target("backup peak memory < 150 MiB", karen.peak_rss / MIB, 150, False, " MiB"),
    ]
    if results.large is not None:
        change = abs(results.large[1].peak_rss / karen.peak_rss - 1) * 100
        rows.append(_target("peak memory at 4x size within 10%", change, 10, False, "%"))
    rows.append(
        _target(
            "verification <= 1.25x raw pg_restore -j 2",
            restore["karen-ops"].wall / restore["raw"].wall,
            1.25,
            False,
            "x",
        )
    )
    growth = results.growth
    if growth is not None and "batched" in growth.configurations:
        rows.append(
            _target(
                "one-year backfill <= 3x one day (batched events)",
                growth.configurations["batched"][2],
                3,
                False,
                "x",
            )
        )
    if growth is not None and "defaults" in growth.configurations:
        rows.append(
            _target(
                "one-year backfill <= 3x one day (Dagster defaults)",
                growth.configurations["defaults"][2],
                3,
                False,
                "x",
            )
        )
    if results.definitions is not None:
        rows.append(_target("definitions load < 1.5 s", results.definitions.wall, 1.5, False, " s"))
    return rows


def _target(name: str, value: float, limit: float, at_least: bool, unit: str) -> list[str]:
    met = value >= limit if at_least else value <= limit
    miss = (
        ""
        if met
        else f"missed by {abs(value - limit):.2f}{unit} ({abs(value / limit - 1) * 100:.0f}%)"
    )
    return [name, f"{value:.2f}{unit}", "met" if met else "MISSED", miss]
