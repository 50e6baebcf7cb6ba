"""Operator commands for backups: list them, take a pinned one now, unpin, restore."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from karen_ops.archives.manifest import ArchiveKind
from karen_ops.backups.dump import BackupRequest, take_backup
from karen_ops.backups.manifest import Manifest
from karen_ops.backups.restore import restore_backup
from karen_ops.backups.verify import VerifyRequest, verify_backup
from karen_ops.errors import RestoreError, StoreError
from karen_ops.pitr.basemanifest import KIND as BASE_KIND
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.store import BackupStore, BackupStoreResource
from karen_ops.resources.store.catalog import (
    CatalogEntry,
    list_backups,
    mark_verified,
    pin,
    read_catalog,
    unpin,
)
from karen_ops.resources.store.file import FileStore

log = logging.getLogger("karen_ops")

# Every kind the store's catalog holds: database dumps, base backups and the file archives.
KINDS = ["postgres", BASE_KIND, *(kind.value for kind in ArchiveKind)]
# Longer pin labels are cut in listings, so one long label does not push the ids off screen.
LABEL_WIDTH = 24
# Without a terminal, restore progress goes one line at a time, at most this often.
PROGRESS_SECONDS = 5.0


def add_commands(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser("backups", help="list the backups in the store")
    listing.add_argument("--kind", choices=KINDS, help="only backups of this kind")
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
    store = _store()
    local = getattr(store, "inner", store)  # a folder under client-side encryption too
    if isinstance(local, FileStore) and not local.root.is_dir():
        raise StoreError(
            f"the backup store {store.url} does not exist, so it holds no backups; check "
            "KAREN_BACKUP_URL (or --home, whose backups folder is the default store)"
        )
    entries = [e for e in list_backups(store) if not args.kind or e.kind == args.kind]
    if not entries:
        kind = f"{args.kind} " if args.kind else ""
        print(f"the backup store {store.url} holds no {kind}backups")
        return 0
    header = ("kind", "name", "created (UTC)", "size", "verified", "pinned", "id")
    rows = [
        (
            e.kind,
            e.name,
            f"{e.created_at:%Y-%m-%d %H:%M}",
            f"{e.size_bytes:,}",
            "yes" if e.verified else "no",
            _shorten(e.pin_label or "", LABEL_WIDTH),
            e.backup_id,
        )
        for e in entries
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [
            cell.rjust(width) if column == 3 else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    return 0


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())  # a label is one line, whatever was typed
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


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
    if not entry.pinned:
        print(f"backup {entry.backup_id} was not pinned; nothing changed")
        return 0
    unpin(store, entry.folder)
    print(f"backup {entry.backup_id} unpinned; retention decides its fate again")
    return 0


def _restore(_home, args: argparse.Namespace) -> int:
    store, postgres = _store(), PostgresResource()
    target = ConnInfo.parse(args.target, setting="--target")
    entry = _find(store, args.backup) if args.backup else _newest_verified(store, postgres)
    manifest = Manifest.from_json(store.read_bytes(entry.manifest_key), location=entry.folder)
    print(f"restoring backup {entry.backup_id} of {entry.name} into {target.describe()}")
    progress = _Progress(sys.stdout)
    outcome = restore_backup(
        manifest,
        store,
        target,
        replace=args.replace,
        bin_dir=postgres.bin_dir(),
        progress=progress,
    )
    progress.finish()
    print(f"restored into {outcome.target}")
    print(f"row counts match the manifest: {outcome.tables} table(s), {outcome.rows:,} row(s)")
    if outcome.replaced:
        print(f"the previous database is kept as {outcome.previous_database}; drop it when done")
        print(f"safety backup (pinned): {outcome.safety_backup}")
    return 0


def _find(store: BackupStore, backup_id: str) -> CatalogEntry:
    catalog = read_catalog(store)
    for entry in catalog.entries:
        if entry.backup_id == backup_id:
            return entry
    for damaged in catalog.unreadable:
        # A backup's folder is named after its id, so a damaged one is still recognisable.
        if damaged.key.split("/")[-2] == backup_id:
            raise StoreError(f"cannot use backup {backup_id}: {damaged.describe()}")
    raise RestoreError(f"no backup with id {backup_id} in {store.url}; see karen-ops backups")


def _newest_verified(store: BackupStore, postgres: PostgresResource) -> CatalogEntry:
    name = postgres.source().dbname
    try:
        # Only this database's backups: a damaged manifest among them fails the listing, as
        # that backup might be the newest, and restoring an older one would lose its data.
        backups = list_backups(store, f"postgres/{name}/")
    except StoreError as exc:
        raise RestoreError(
            f"could not choose the newest verified backup of database {name}: {exc}; or pass "
            "--backup ID to restore a chosen backup"
        ) from exc
    verified = [e for e in backups if e.kind == "postgres" and e.name == name and e.verified]
    if not verified:
        raise RestoreError(
            f"no verified backup of database {name} in {store.url}; pass --backup ID or run "
            "nightly_backup first"
        )
    return verified[-1]


class _Progress:
    """Counts what pg_restore reports restoring: one line rewritten in place on a terminal;
    piped or logged, a line at most every few seconds, then the final count."""

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out, self.clock = out, clock
        self.terminal = out.isatty()
        self.count = self.shown = 0
        self.last = clock()

    def __call__(self, line: str) -> None:
        if "processing" not in line and "creating" not in line:
            return
        self.count += 1
        if self.terminal:
            print(f"\r  {self.count} objects restored", end="", file=self.out, flush=True)
        elif self.clock() - self.last >= PROGRESS_SECONDS:
            self._line()

    def finish(self) -> None:
        if self.terminal:
            print(file=self.out)
        elif self.count != self.shown:
            self._line()

    def _line(self) -> None:
        print(f"  {self.count} objects restored", file=self.out, flush=True)
        self.shown, self.last = self.count, self.clock()
