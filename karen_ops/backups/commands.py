"""Operator commands for backups: list them, take a pinned one now, unpin, restore."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from karen_ops.backups.dump import BackupRequest, take_backup
from karen_ops.backups.manifest import Manifest
from karen_ops.backups.restore import restore_backup
from karen_ops.backups.verify import VerifyRequest, verify_backup
from karen_ops.errors import RestoreError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.store import BackupStore, BackupStoreResource
from karen_ops.resources.store.catalog import (
    CatalogEntry,
    list_backups,
    mark_verified,
    pin,
    unpin,
)

log = logging.getLogger("karen_ops")


def add_commands(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser("backups", help="list the backups in the store")
    listing.add_argument("--kind", help="only this kind (postgres, config, application, logs)")
    listing.set_defaults(command=_list)

    backup = commands.add_parser("backup", help="back up and verify now, and pin the result")
    backup.add_argument("--label", required=True, help="why it is kept, e.g. pre-deploy")
    backup.set_defaults(command=_backup)

    unpinning = commands.add_parser("unpin", help="let retention handle a pinned backup again")
    unpinning.add_argument("backup_id")
    unpinning.set_defaults(command=_unpin)

    restore = commands.add_parser("restore", help="restore a backup into a database")
    restore.add_argument("--backup", help="backup id (default: the newest verified backup)")
    restore.add_argument("--target", required=True, help="libpq URL of the database to fill")
    restore.add_argument(
        "--replace",
        action="store_true",
        help="replace a database that holds tables: safety backup, restore beside it, swap",
    )
    restore.set_defaults(command=_restore)


def _store() -> BackupStore:
    return BackupStoreResource().open()


def _list(_home, args: argparse.Namespace) -> int:
    entries = [e for e in list_backups(_store()) if not args.kind or e.kind == args.kind]
    print(f"{'kind':<12} {'name':<20} {'created (UTC)':<17} {'size':>12}  verified  pinned  id")
    for e in entries:
        print(
            f"{e.kind:<12} {e.name:<20} {e.created_at:%Y-%m-%d %H:%M} {e.size_bytes:>12,}  "
            f"{'yes' if e.verified else 'no':<8}  {e.pin_label or '':<6}  {e.backup_id}"
        )
    return 0


def _backup(_home, args: argparse.Namespace) -> int:
    postgres, store = PostgresResource(), _store()
    now = datetime.now(UTC)
    source = postgres.source()
    manifest = take_backup(
        BackupRequest(source, store, partition=f"{now:%Y-%m-%d}", bin_dir=postgres.bin_dir()), log
    )
    request = VerifyRequest(manifest, store, source, postgres.verify_server(), postgres.bin_dir())
    result = verify_backup(request, log)
    if not (result.checksum_ok and result.restore_ok):
        print(
            f"backup {manifest.backup_id} did not verify: {result.restore_error}", file=sys.stderr
        )
        return 1
    mark_verified(store, manifest.folder, {"verified_at": datetime.now(UTC).isoformat()})
    pin(store, manifest.folder, args.label, now)
    print(f"backup {manifest.backup_id} verified and pinned as '{args.label}'")
    print(f"  {store.location(manifest.archive_key)}")
    return 0


def _unpin(_home, args: argparse.Namespace) -> int:
    store = _store()
    entry = _find(store, args.backup_id)
    unpin(store, entry.folder)
    print(f"backup {entry.backup_id} unpinned; retention decides its fate again")
    return 0


def _restore(_home, args: argparse.Namespace) -> int:
    store, postgres = _store(), PostgresResource()
    target = ConnInfo.parse(args.target, setting="--target")
    entry = _find(store, args.backup) if args.backup else _newest_verified(store, postgres)
    manifest = Manifest.from_json(store.read_bytes(entry.manifest_key), location=entry.folder)
    print(f"restoring backup {entry.backup_id} of {entry.name} into {target.describe()}")
    outcome = restore_backup(
        manifest,
        store,
        target,
        replace=args.replace,
        bin_dir=postgres.bin_dir(),
        progress=_progress_printer(),
    )
    print()
    print(f"restored into {outcome.target}")
    if outcome.replaced:
        print(f"the previous database is kept as {outcome.previous_database}; drop it when done")
        print(f"safety backup (pinned): {outcome.safety_backup}")
    return 0


def _find(store: BackupStore, backup_id: str) -> CatalogEntry:
    for entry in list_backups(store):
        if entry.backup_id == backup_id:
            return entry
    raise RestoreError(f"no backup with id {backup_id} in {store.url}; see karen-ops backups")


def _newest_verified(store: BackupStore, postgres: PostgresResource) -> CatalogEntry:
    name = postgres.source().dbname
    verified = [
        e for e in list_backups(store) if e.kind == "postgres" and e.name == name and e.verified
    ]
    if not verified:
        raise RestoreError(
            f"no verified backup of database {name} in {store.url}; pass --backup ID or run "
            "nightly_backup first"
        )
    return verified[-1]


def _progress_printer() -> Callable[[str], None]:
    count = 0

    def show(line: str) -> None:
        nonlocal count
        if "processing" in line or "creating" in line:
            count += 1
            print(f"\r  {count} objects restored", end="", flush=True)

    return show
