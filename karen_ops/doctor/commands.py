"""The ``karen-ops doctor`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from karen_ops.doctor.model import Status, exit_status
from karen_ops.doctor.run import run_checks


def add_commands(commands: argparse._SubParsersAction) -> None:
    doctor = commands.add_parser(
        "doctor", help="check every connection and tool karen-ops needs, one line each"
    )
    doctor.set_defaults(command=doctor_command)


def doctor_command(_home: Path | None, _args: argparse.Namespace | None = None) -> int:
    findings = []
    for finding in run_checks():
        print(finding.line(), flush=True)
        findings.append(finding)
    failed = [f.item for f in findings if f.status is Status.FAIL]
    if failed:
        print(f"\n{len(failed)} required item(s) failed: {', '.join(failed)}", file=sys.stderr)
    return exit_status(findings)
