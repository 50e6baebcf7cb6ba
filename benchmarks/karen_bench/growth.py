"""The growth backfill: one year of the growth assets as one run, against a single day.

The measurement itself belongs to ``benchmarks/growth_backfill.py``; this runs it as it is
and reads the numbers from what it prints, so both always report the same thing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "growth_backfill.py"
# "batched   single day 2026-12-03:   0.65 s   year 2025-12-04..2026-12-03:   1.75 s   ratio  2.69"
_LINE = re.compile(
    r"^(?P<name>\w+)\s+single day [\d-]+:\s+(?P<day>[\d.]+) s\s+"
    r"year [\d.-]+:\s+(?P<year>[\d.]+) s\s+ratio\s+(?P<ratio>[\d.]+)",
    re.MULTILINE,
)
TIMEOUT_SECONDS = 1800


@dataclass
class GrowthResult:
    """Median seconds per instance configuration, or why there are none."""

    configurations: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    problem: str | None = None
    output: str = ""


def run_growth_backfill(server_url: str, users: int, repeat: int) -> GrowthResult:
    if not SCRIPT.exists():
        return GrowthResult(problem=f"{SCRIPT.name} is not in benchmarks/; not measured")
    argv = [sys.executable, str(SCRIPT), f"--server={server_url}", f"--users={users}"]
    argv.append(f"--repeat={repeat}")
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        return GrowthResult(problem=f"{SCRIPT.name} did not finish in {TIMEOUT_SECONDS} s")
    result = GrowthResult(output=done.stdout)
    for match in _LINE.finditer(done.stdout):
        numbers = (float(match["day"]), float(match["year"]), float(match["ratio"]))
        result.configurations[match["name"]] = numbers
    if not result.configurations:
        tail = (done.stderr or done.stdout).strip()[-600:]
        result.problem = f"{SCRIPT.name} exited with status {done.returncode}: {tail}"
    return result
