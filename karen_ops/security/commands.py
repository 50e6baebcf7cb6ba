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
    accept.add_argument(
        "--allow-missing",
        action="store_true",
        help="accept the files that exist even though others are missing; the missing ones "
        "stay flagged until restored or removed from security.critical_files",
    )
    accept.set_defaults(command=_accept)


def _accept(home: Path, args: argparse.Namespace) -> int:
    # The instance of the deployment ($DAGSTER_HOME), else the demo's beside the home folder.
    dagster_home = os.environ.get("DAGSTER_HOME") or str(home / "dagster")
    with dg.DagsterInstance.from_config(dagster_home) as instance:
        accepted = accept_latest(instance, args.reason, allow_missing=args.allow_missing)
    print(f"accepted {len(accepted.baseline)} file hash(es) as the file_integrity baseline")
    for path, digest in sorted(accepted.baseline.items()):
        print(f"  {digest[:16]}  {path}")
    for kind, paths in (("missing", accepted.missing), ("unreadable", accepted.unreadable)):
        if paths:
            print(f"still {kind}, flagged until fixed or removed from security.critical_files:")
            for path in paths:
                print(f"  {path}")
    return 0
