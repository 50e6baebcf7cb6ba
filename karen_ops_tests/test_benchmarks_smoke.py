"""The benchmark command runs end to end on a tiny database (a smoke test; nothing is timed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from karen_ops_tests.servers import Server

REPOSITORY = Path(__file__).resolve().parent.parent


def test_benchmark_command_writes_every_table_for_a_tiny_database(
    service_server: Server, tmp_path: Path
) -> None:
    report = tmp_path / "BENCHMARKS.md"
    work = tmp_path / "work"
    work.mkdir()
    argv = [sys.executable, str(REPOSITORY / "benchmarks" / "run.py")]
    argv += ["--server", service_server.maintenance.public_dsn(), "--size-gb", "0.01"]
    argv += ["--repeat", "1", "--definitions-runs", "1", "--skip-large", "--skip-growth"]
    argv += ["--no-experiments", "--work-dir", str(work), "--output", str(report)]
    env = {**os.environ, **service_server.maintenance.tool_environment()}

    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)

    assert done.returncode == 0, done.stderr[-3000:]
    text = report.read_text()
    for section in ["## Machine", "## Backup", "## Restore", "## Memory flatness", "## Targets"]:
        assert section in text
    for row in ["| script |", "| ceiling |", "| karen-ops |", "| raw |"]:
        assert row in text
    assert "backup >= 4x faster than pg_dump | gzip" in done.stdout
    assert list(work.iterdir()) == []
