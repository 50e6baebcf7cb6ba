"""karen-ops' own backup and verification, each run alone in a fresh process to be measured.

    python child.py backup --source URL --store DIR [--level N] [--threads N]
    python child.py verify --source URL --verify-server URL --store DIR --manifest FILE [--jobs N]

``backup`` calls karen_ops.backups.dump.take_backup into a FileStore and prints the manifest's
JSON; ``verify`` calls karen_ops.backups.verify.verify_backup on a manifest file and prints what
it found. Running them in a child process lets the benchmark measure the process tree (Python,
its zstd workers and pg_dump or pg_restore) exactly as a Dagster run worker would run them.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import zstandard

from karen_ops.backups import dump
from karen_ops.backups.dump import BackupRequest, take_backup
from karen_ops.backups.manifest import Manifest
from karen_ops.backups.verify import VerifyRequest, verify_backup
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.store.file import FileStore
from karen_ops.settings import DATABASE_URL, VERIFY_DATABASE_URL

log = logging.getLogger("karen_bench")


def main() -> int:
    args = _parser().parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.command == "backup":
        return _backup(args)
    return _verify(args)


def _backup(args: argparse.Namespace) -> int:
    if args.threads is not None:
        _force_compression_threads(args.threads)
    request = BackupRequest(
        source=ConnInfo.parse(args.source, setting=DATABASE_URL),
        store=FileStore(Path(args.store)),
        partition=f"{datetime.now(UTC):%Y-%m-%d}",
        compression_level=args.level,
    )
    started, cpu_before = time.perf_counter(), _cpu_seconds()
    manifest = take_backup(request, log)
    # The backup's own time, without this interpreter's start-up and imports (a Dagster run
    # worker has those loaded already); CPU includes pg_dump's and the zstd workers'.
    timing = {
        "wall_seconds": time.perf_counter() - started,
        "cpu_seconds": _cpu_seconds() - cpu_before,
    }
    print(json.dumps({"timing": timing, "manifest": json.loads(manifest.to_json())}))
    return 0


def _verify(args: argparse.Namespace) -> int:
    manifest_path = Path(args.manifest)
    manifest = Manifest.from_json(manifest_path.read_bytes(), location=str(manifest_path))
    request = VerifyRequest(
        manifest=manifest,
        store=FileStore(Path(args.store)),
        source=ConnInfo.parse(args.source, setting=DATABASE_URL),
        verify_server=ConnInfo.parse(args.verify_server, setting=VERIFY_DATABASE_URL),
        jobs=args.jobs,
        work_dir=Path(args.work_dir) if args.work_dir else None,
    )
    started, cpu_before = time.perf_counter(), _cpu_seconds()
    result = verify_backup(request, log)
    timing = {
        "wall_seconds": time.perf_counter() - started,
        "cpu_seconds": _cpu_seconds() - cpu_before,
    }
    counts_match = result.restored is not None and (
        result.restored.row_counts == manifest.inventory.row_counts
    )
    report = {
        "checksum_ok": result.checksum_ok,
        "restore_ok": result.restore_ok,
        "counts_match": counts_match,
        "error": result.fetch_error or result.restore_error,
        "seconds": result.seconds,
        "timing": timing,
    }
    print(json.dumps(report))
    return 0 if result.restore_ok and counts_match else 1


def _cpu_seconds() -> float:
    """User and system time of this process and of its children that have exited."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _force_compression_threads(threads: int) -> None:
    """Make the backup compress with ``threads`` workers instead of one per core.

    A measurement of the alternative, not a setting: dump.py asks zstandard for threads=-1,
    so the benchmark swaps in a compressor class that overrides it for this process only.
    """

    def compressor(*, level: int, threads: int = -1) -> zstandard.ZstdCompressor:
        return zstandard.ZstdCompressor(level=level, threads=forced)

    forced = threads

    class _Module:
        ZstdCompressor = staticmethod(compressor)

    dump.zstandard = _Module  # type: ignore[assignment]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="karen-ops backup or verification, measured")
    commands = parser.add_subparsers(dest="command", required=True)
    backup = commands.add_parser("backup")
    backup.add_argument("--source", required=True)
    backup.add_argument("--store", required=True)
    backup.add_argument("--level", type=int, default=dump.COMPRESSION_LEVEL)
    backup.add_argument("--threads", type=int, default=None, help="zstd workers (0: none)")
    verify = commands.add_parser("verify")
    verify.add_argument("--source", required=True)
    verify.add_argument("--verify-server", required=True)
    verify.add_argument("--store", required=True)
    verify.add_argument("--manifest", required=True)
    verify.add_argument("--jobs", type=int, default=2)
    verify.add_argument("--work-dir", default=None)
    return parser


if __name__ == "__main__":
    sys.exit(main())
