"""Commands PostgreSQL runs (``wal-push``, ``wal-fetch``) and the point-in-time restore.

``archive_command = 'karen-ops wal-push %p'`` and ``restore_command = 'karen-ops wal-fetch %f
%p'``. Both settle every doubt by failing: PostgreSQL keeps a WAL file until wal-push exits 0,
and a fetch that finds damaged bytes stops the recovery instead of ending it early.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from karen_ops.pitr import walstore
from karen_ops.pitr.errors import SegmentMissingError
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
