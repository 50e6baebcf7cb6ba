"""``karen-ops integrity accept``: make what file_integrity last saw the new baseline."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import dagster as dg

from karen_ops.security.integrity import accept_latest


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    integrity = subparsers.add_parser("integrity", help="file-integrity baseline")
    actions = integrity.add_subparsers(required=True, metavar="ACTION")
    accept = actions.add_parser(
        "accept",
        help="accept the critical files as the newest file_integrity run saw them",
    )
    accept.add_argument("--reason", default="accepted by an operator", help="kept with it")
    accept.set_defaults(command=_accept)


def _accept(home: Path, args: argparse.Namespace) -> int:
    # The instance of the deployment ($DAGSTER_HOME), else the demo's beside the home folder.
    dagster_home = os.environ.get("DAGSTER_HOME") or str(home / "dagster")
    with dg.DagsterInstance.from_config(dagster_home) as instance:
        accepted = accept_latest(instance, args.reason)
    print(f"accepted {len(accepted)} file hash(es) as the file_integrity baseline")
    for path, digest in sorted(accepted.items()):
        print(f"  {digest[:16]}  {path}")
    return 0
