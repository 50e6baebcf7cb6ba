"""log_archive: rotated logs shipped to the store, local copies removed only once verified."""

from __future__ import annotations

import errno
import io
import logging
import os
from pathlib import Path

from karen_ops.archives.logs import remove_archived_logs
from karen_ops.archives.readback import ReadBack
from karen_ops.archives.tarstream import ArchivedFile
from karen_ops.resources.store import BackupStore, BackupStoreResource, Upload
from karen_ops.resources.store.catalog import list_backups
from karen_ops.resources.store.file import FileStore
from karen_ops_tests.archives_fixtures import (
    extract,
    failure_message,
    host_fixture,  # noqa: F401 - a fixture, used by name
    materialization_metadata,
    materialize,
    only_manifest,
    stored_keys,
    week_fixture,  # noqa: F401 - a fixture, used by name
)

ROTATED = {
    "error.log.1": b'{"level": "error", "msg": "db timeout"}\n' * 200,
    "error.log.2.gz": os.urandom(3000),
    "security.log-20261201.gz": os.urandom(2000),
    "workers/worker.log.1": b"worker started\n" * 50,
}
CURRENT = {
    "error.log": b'{"level": "error", "msg": "still writing"}\n',
    "security.log": b"login ok user=1\n",
    "README.txt": b"logs of ai-karen\n",
}


def _logs(host) -> Path:
    for relative, data in {**ROTATED, **CURRENT}.items():
        host.write(f"var/log/ai-karen/{relative}", data)
    folder = host.root / "var/log/ai-karen"
    host.configure(log_paths=[str(folder)])
    return folder


def _local(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_rotated_logs_are_archived_then_removed_and_current_logs_stay(host, store, week):
    folder = _logs(host)

    result = materialize("log_archive", store, week)

    assert result.success
    prefix = str(folder).lstrip("/")
    security = {k: v for k, v in ROTATED.items() if k.startswith("security")}
    others = {k: v for k, v in ROTATED.items() if k not in security}
    # Security logs are kept a year by retention, so they travel in an archive of their own.
    assert extract(store, only_manifest(store, "logs")) == {
        f"{prefix}/{name}": data for name, data in others.items()
    }
    assert extract(store, only_manifest(store, "security_logs")) == {
        f"{prefix}/{name}": data for name, data in security.items()
    }
    assert _local(folder) == CURRENT
    metadata = materialization_metadata(result, "log_archive")
    assert metadata["local_files_removed"] == len(others)
    assert metadata["local_bytes_removed"] == sum(len(data) for data in others.values())
    assert metadata["security_logs_local_files_removed"] == len(security)
    assert metadata["local_files_kept"] == 0
    entries = sorted((e.kind, e.name, e.verified) for e in list_backups(store))
    assert entries == [("logs", "web-1", True), ("security_logs", "web-1", True)]


def test_logs_are_kept_when_the_store_cannot_be_written(host, tmp_path, week):
    folder = _logs(host)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be\n")
    store = FileStore(blocker / "backups")

    result = materialize("log_archive", store, week)

    assert not result.success
    message = failure_message(result)
    assert message.startswith("could not take the logs archive of web-1 during archive: ")
    assert "could not write to backup store" in message
    assert _local(folder) == {**ROTATED, **CURRENT}


class _FullDiskStore(FileStore):
    """A folder store that runs out of space after the first 2 KiB of an upload."""

    def upload(self, key: str) -> Upload:
        upload = super().upload(key)
        written = 0
        real_write = upload.write

        def write(data: bytes) -> int:
            nonlocal written
            written += len(data)
            if written > 2048:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(data)

        upload.write = write
        return upload


class _FullDiskResource(BackupStoreResource):
    def open(self) -> BackupStore:
        return _FullDiskStore(Path(self.url.removeprefix("file://")))


def test_logs_are_kept_and_nothing_stored_when_the_upload_fails_midway(host, store, week):
    folder = _logs(host)

    result = materialize("log_archive", store, week, _FullDiskResource(url=store.url))

    assert not result.success
    message = failure_message(result)
    assert "could not write file://" in message
    assert "No space left on device" in message
    assert stored_keys(store) == [], "the aborted upload leaves nothing behind"
    assert _local(folder) == {**ROTATED, **CURRENT}


class _CorruptingStore(FileStore):
    """A folder store that hands back one flipped byte, as a damaged object would read."""

    def reader(self, key: str) -> io.BytesIO:
        with super().reader(key) as stream:
            data = bytearray(stream.read())
        if key.endswith(".tar.zst"):
            data[len(data) // 2] ^= 0xFF
        return io.BytesIO(bytes(data))


class _CorruptingResource(BackupStoreResource):
    def open(self) -> BackupStore:
        return _CorruptingStore(Path(self.url.removeprefix("file://")))


def test_logs_are_kept_when_the_stored_archive_does_not_read_back_intact(host, store, week):
    folder = _logs(host)

    result = materialize("log_archive", store, week, _CorruptingResource(url=store.url))

    assert not result.success
    message = failure_message(result)
    assert message.startswith("could not take the logs archive of web-1 during verify: ")
    assert "does not match its manifest" in message
    assert message.endswith("no local file was removed")
    assert _local(folder) == {**ROTATED, **CURRENT}
    [entry] = list_backups(store)
    assert not entry.verified


def test_a_log_rotated_again_after_archiving_is_kept(tmp_path):
    log = tmp_path / "error.log.1"
    log.write_bytes(b"old lines\n")
    status = log.stat()
    archived = ArchivedFile(
        path=str(log),
        size_bytes=status.st_size,
        sha256="0" * 64,
        device=status.st_dev,
        inode=status.st_ino,
        mtime_ns=status.st_mtime_ns,
    )
    # logrotate moved the archived file on and put newer lines under the same name.
    log.rename(tmp_path / "error.log.2")
    log.write_bytes(b"newer lines, never archived\n")

    removal = remove_archived_logs([archived], ReadBack(), logging.getLogger(__name__))

    assert removal.removed == []
    assert removal.kept == {str(log): "changed since it was archived"}
    assert log.read_bytes() == b"newer lines, never archived\n"


def test_no_rotated_logs_stores_nothing_and_succeeds(host, store, week):
    folder = host.root / "var/log/ai-karen"
    host.write("var/log/ai-karen/error.log", b"fresh\n")
    host.configure(log_paths=[str(folder)])

    result = materialize("log_archive", store, week)

    assert result.success
    assert stored_keys(store) == []
    metadata = materialization_metadata(result, "log_archive")
    assert (metadata["files"], metadata["stored"]) == (0, False)


def test_missing_log_folder_is_reported_while_the_other_is_archived(host, store, week):
    folder = _logs(host)
    gone = host.root / "var/log/nginx-karen"
    host.configure(log_paths=[str(folder), str(gone)])

    result = materialize("log_archive", store, week)

    assert result.success
    assert only_manifest(store, "logs").missing == [str(gone)]
    assert materialization_metadata(result, "log_archive")["missing"] == str(gone)
