"""Commands PostgreSQL runs (``wal-push``, ``wal-fetch``) and ``pitr-restore``.

``archive_command = 'karen-ops wal-push %p'`` and ``restore_command = 'karen-ops wal-fetch %f
%p'``. Both settle every doubt by failing: PostgreSQL keeps a WAL file until wal-push exits 0,
and a fetch that finds damaged bytes stops the recovery instead of ending it early.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

from karen_ops import settings
from karen_ops.errors import PitrError, SegmentMissingError
from karen_ops.pitr import walstore
from karen_ops.pitr.settings import cluster_name
from karen_ops.resources.store import BackupStore, open_configured_store

# restore_command exit statuses above 125 make PostgreSQL abort the recovery; 1 means "not in
# the archive", after which recovery ends at the last WAL it has. A damaged or unreadable
# archive must not look like its end.
FETCH_NOT_FOUND = 1
FETCH_ABORT = 126


def add_commands(commands: argparse._SubParsersAction) -> None:
    push = commands.add_parser("wal-push", help="archive one WAL file (archive_command %%p)")
    push.add_argument("path", help="the file PostgreSQL asks to archive (%%p)")
    push.set_defaults(command=_wal_push)

    fetch = commands.add_parser("wal-fetch", help="restore one WAL file (restore_command %%f %%p)")
    fetch.add_argument("name", help="the WAL file name PostgreSQL wants (%%f)")
    fetch.add_argument("target", help="where PostgreSQL wants it written (%%p)")
    fetch.set_defaults(command=_wal_fetch)

    restore = commands.add_parser(
        "pitr-restore",
        help="restore the cluster to a moment (base backup plus WAL) into a new data folder",
    )
    target = restore.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-time", help="recover to this moment, e.g. 2026-12-04T10:15:00+00:00")
    target.add_argument("--to-lsn", help="recover to this WAL position, e.g. 0/3000028")
    restore.add_argument("--target-dir", required=True, help="the new data folder")
    restore.add_argument(
        "--replace", action="store_true", help="move a non-empty --target-dir aside first"
    )
    restore.add_argument(
        "--action",
        choices=["pause", "promote"],
        default="pause",
        help="at the target: pause read-only (default) or promote to a writable server",
    )
    restore.add_argument(
        "--archive",
        action="store_true",
        help="keep the backed-up archive settings, so a promoted copy archives its new timeline",
    )
    restore.add_argument("--start", action="store_true", help="start it and wait for the target")
    restore.add_argument("--port", type=int, help="port of the restored server (default: free)")
    restore.add_argument("--os-user", help="OS user that runs it when karen-ops runs as root")
    restore.add_argument("--user", default="postgres", help="role to connect as while waiting")
    restore.set_defaults(command=_pitr_restore)


def _pitr_restore(_home: Path, args: argparse.Namespace) -> int:
    # Imported here: wal-push and wal-fetch, which share this module, must start fast.
    from karen_ops.pitr.resource import PitrResource
    from karen_ops.pitr.restore import (
        RestoreRequest,
        StartRequest,
        TargetAction,
        restore,
        start_recovered,
    )

    to_time = _parse_time(args.to_time) if args.to_time else None
    pitr = PitrResource()
    port = args.port or (_free_port() if args.start else None)
    request = RestoreRequest(
        store=_open_store(),
        cluster=cluster_name(),
        target_dir=Path(args.target_dir).absolute(),
        restore_command=pitr.command(),
        to_time=to_time,
        to_lsn=args.to_lsn,
        action=TargetAction(args.action),
        replace=args.replace,
        archive=args.archive,
        port=port,
    )
    outcome = restore(request, logging.getLogger("karen_ops"))
    if outcome.moved_aside:
        print(f"the previous folder is kept as {outcome.moved_aside}")
    print(f"restored {outcome.plan.describe()}")
    print(f"into {outcome.target_dir}, recovering to {args.to_time or args.to_lsn}")
    if not args.start:
        print(f"start it with: pg_ctl -D {outcome.target_dir} start")
        return 0
    reached = start_recovered(
        StartRequest(
            target_dir=outcome.target_dir,
            server_version=outcome.plan.base.server_version,
            port=port,
            action=request.action,
            env=dict(os.environ),
            os_user=args.os_user or pitr.os_user(),
            bin_dir=settings.env(settings.PG_BIN_DIR),
            user=args.user,
        )
    )
    state = "promoted" if request.action is TargetAction.PROMOTE else "paused"
    print(f"recovered server running on port {port}, {state} at WAL position {reached}")
    return 0


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise PitrError(
            f"--to-time {text!r} is not a timestamp such as 2026-12-04T10:15:00+00:00"
        ) from exc
    if moment.tzinfo is None:
        raise PitrError(f"--to-time {text!r} has no time zone; add one, e.g. +00:00")
    return moment


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _open_store() -> BackupStore:
    return open_configured_store()


def _wal_push(_home: Path, args: argparse.Namespace) -> int:
    path = Path(args.path)
    try:
        store = _open_store()
        outcome = walstore.push(store, cluster_name(), path, datetime.now(UTC))
    except Exception as exc:  # any doubt: PostgreSQL keeps the file and retries
        print(f"karen-ops wal-push: could not archive {path.name}: {exc}", file=sys.stderr)
        return 1
    print(f"karen-ops wal-push: {path.name} {outcome.value} in {store.url}", file=sys.stderr)
    return 0


def _wal_fetch(_home: Path, args: argparse.Namespace) -> int:
    try:
        store = _open_store()
        walstore.fetch(store, cluster_name(), args.name, Path(args.target))
    except SegmentMissingError as exc:
        print(f"karen-ops wal-fetch: {exc}", file=sys.stderr)
        return FETCH_NOT_FOUND
    except Exception as exc:  # damaged or unreachable: stop recovery rather than end it here
        print(f"karen-ops wal-fetch: could not restore {args.name}: {exc}", file=sys.stderr)
        return FETCH_ABORT
    return 0
