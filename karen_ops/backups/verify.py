"""Verifying a backup: fetch, checksum, restore into a scratch database, compare exactly.

Each phase records its outcome instead of raising, so the asset can report every check (a
checksum mismatch still says that the restore was not attempted and why).
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg

from karen_ops.backups.archive import (
    FetchedArchive,
    archive_version,
    fetch_archive,
    require_readable,
)
from karen_ops.backups.inventory import take_inventory
from karen_ops.backups.manifest import Inventory, Manifest
from karen_ops.backups.scratch import scratch_database
from karen_ops.errors import KarenOpsError, PgRestoreFailed, RestoreError, StoreError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import PgTool, find_tool
from karen_ops.resources.postgres import connect, server_major
from karen_ops.resources.store import BackupStore
from karen_ops.settings import VERIFY_DATABASE_URL

STDERR_TAIL_CHARS = 4000


class Phase(enum.Enum):
    """The step a verification is in, so a failure says which step broke."""

    FETCH = "fetch"  # reading the archive from the store, hashing and decompressing it
    RESTORE = "restore"  # pg_restore into a fresh scratch database
    COMPARE = "compare"  # exact counts in the scratch database against the manifest


@dataclass(frozen=True)
class VerifyRequest:
    manifest: Manifest
    store: BackupStore
    source: ConnInfo
    verify_server: ConnInfo
    bin_dir: str | None = None
    jobs: int = 2
    work_dir: Path | None = None


@dataclass
class Verification:
    """What a verification found; each field backs one asset check."""

    manifest: Manifest
    stored_bytes: int = 0
    sha256: str = ""
    checksum_ok: bool = False
    fetch_error: str | None = None
    restore_error: str | None = None
    restored: Inventory | None = None
    pg_restore_version: str | None = None
    scratch_database: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def restore_ok(self) -> bool:
        return self.restore_error is None and self.restored is not None


def verify_backup(request: VerifyRequest, log: logging.Logger) -> Verification:
    """Run every phase that the previous ones allow; never leave a scratch database behind."""
    result = Verification(request.manifest)
    location = request.store.location(request.manifest.archive_key)
    work_dir = request.work_dir or fast_work_dir(request.manifest.dump_bytes)
    with tempfile.TemporaryDirectory(prefix="karen-verify-", dir=work_dir) as work:
        started = time.monotonic()
        try:
            fetched = fetch_archive(request.store, request.manifest, Path(work) / "archive.dump")
        except StoreError as exc:
            result.fetch_error = str(exc)
            result.restore_error = f"not attempted: {exc}"
            return result
        result.seconds[Phase.FETCH.value] = round(time.monotonic() - started, 3)
        result.stored_bytes, result.sha256 = fetched.stored_bytes, fetched.sha256
        result.checksum_ok = fetched.matches(request.manifest)
        log.info(
            "archive fetched location=%s bytes=%d checksum_ok=%s",
            location,
            fetched.stored_bytes,
            result.checksum_ok,
        )
        if not result.checksum_ok:
            result.restore_error = "not attempted: the stored bytes do not match the manifest"
            return result
        try:
            _restore_and_compare(request, fetched, result, location, log)
        except KarenOpsError as exc:
            result.restore_error = str(exc)
        except psycopg.Error as exc:
            result.restore_error = f"PostgreSQL refused a verification step: {exc}"
    return result


def fast_work_dir(archive_bytes: int) -> Path | None:
    """Shared memory for the decompressed archive when it fits with room to spare.

    Writing the archive to disk and having pg_restore read it while the kernel still flushes
    it made verification a third slower than pg_restore alone (docs/BENCHMARKS.md); from
    memory it runs at pg_restore's own pace. Otherwise the system's temporary folder.
    """
    shared = Path("/dev/shm")  # noqa: S108 (a private mkdtemp folder is made inside it)
    if not shared.is_dir() or not os.access(shared, os.W_OK):
        return None
    free = shutil.disk_usage(shared).free
    available = psutil.virtual_memory().available
    # Room for the archive twice over, so a verification never starves the host of memory.
    return shared if archive_bytes * 2 < min(free, available) else None


def _restore_and_compare(
    request: VerifyRequest,
    fetched: FetchedArchive,
    result: Verification,
    location: str,
    log: logging.Logger,
) -> None:
    if fetched.decode_error:
        raise RestoreError(f"cannot read archive {location}: {fetched.decode_error}")
    version = archive_version(fetched.path, location=location)
    tool = _choose_pg_restore(request)
    require_readable(version, tool.major, manifest=request.manifest, location=location)
    result.pg_restore_version = tool.version

    with scratch_database(
        request.verify_server, request.source, request.manifest.backup_id
    ) as target:
        result.scratch_database = target.dbname
        started = time.monotonic()
        restore_archive(tool, fetched.path, target, jobs=request.jobs)
        result.seconds[Phase.RESTORE.value] = round(time.monotonic() - started, 3)
        log.info("restored archive=%s into=%s pg_restore=%s", location, target.describe(), tool)

        started = time.monotonic()
        with connect(target, setting=VERIFY_DATABASE_URL) as conn:
            result.restored = take_inventory(conn)
        result.seconds[Phase.COMPARE.value] = round(time.monotonic() - started, 3)


def _choose_pg_restore(request: VerifyRequest) -> PgTool:
    with connect(request.verify_server, setting=VERIFY_DATABASE_URL) as conn:
        target_major = server_major(conn)
    needed = max(target_major, request.manifest.pg_dump_major)
    return find_tool("pg_restore", needed, bin_dir=request.bin_dir)


def restore_archive(
    tool: PgTool,
    archive: Path,
    target: ConnInfo,
    *,
    jobs: int,
    keep_ownership: bool = False,
    progress: Callable[[str], None] | None = None,
) -> None:
    """pg_restore ``archive`` into ``target``; any error stops it, reported in pg_restore's words.

    Scratch restores leave out owners and grants, since the scratch server need not have the
    source's roles; a restore into production keeps them (``keep_ownership``). ``progress``
    receives pg_restore's verbose lines as they come.
    """
    argv = [str(tool.path), "--exit-on-error", f"--jobs={max(1, jobs)}"]
    argv += [] if keep_ownership else ["--no-owner", "--no-privileges"]
    argv += ["--verbose"] if progress else []
    argv += [f"--dbname={target.public_dsn()}", str(archive)]
    env = {**os.environ, **target.tool_environment()}

    tail: deque[str] = deque(maxlen=40)
    with subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        for line in process.stderr:  # type: ignore[union-attr]
            tail.append(line)
            if progress:
                progress(line.rstrip())
    if process.returncode != 0:
        stderr = "".join(tail).strip()[-STDERR_TAIL_CHARS:]
        raise PgRestoreFailed(
            f"pg_restore {tool.version} could not restore into {target.describe()} "
            f"(exit status {process.returncode}): {stderr}",
            returncode=process.returncode,
            output=stderr,
        )
