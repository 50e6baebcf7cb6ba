"""Writing a tar archive through zstd and SHA-256 straight into a store upload.

The tar stream is produced entry by entry and compressed on every core while it is written,
so memory stays at a few buffers and no temporary copy of the archive is made on the host.
Every regular file is hashed as it is read, so the manifest says exactly which bytes of each
file the archive holds.
"""

from __future__ import annotations

import os
import stat
import tarfile
from dataclasses import dataclass, field

import zstandard

from karen_ops.archives.collect import Source
from karen_ops.archives.hashing import HashingReader, HashingSink
from karen_ops.errors import ArchiveError
from karen_ops.resources.store import Upload


@dataclass(frozen=True)
class ArchivedFile:
    """A regular file as it went into the archive."""

    path: str
    size_bytes: int
    sha256: str
    # Which file was read: a later file at the same path (a log rotated again) differs here.
    device: int
    inode: int
    mtime_ns: int

    @property
    def arcname(self) -> str:
        return self.path.lstrip("/")

    def manifest_entry(self) -> dict[str, object]:
        return {"path": self.path, "size_bytes": self.size_bytes, "sha256": self.sha256}


@dataclass
class WrittenArchive:
    """What was written: its files, other entries, and the stored bytes' size and digest."""

    files: list[ArchivedFile] = field(default_factory=list)
    other_entries: int = 0
    vanished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stored_bytes: int = 0
    sha256: str = ""

    @property
    def file_bytes(self) -> int:
        return sum(file.size_bytes for file in self.files)


def write_archive(
    sources: list[Source], upload: Upload, *, location: str, level: int, setting: str
) -> WrittenArchive:
    """Stream ``sources`` as one tar archive, zstd-compressed, into ``upload``."""
    sink = HashingSink(upload, location)
    written = WrittenArchive()
    # threads=-1: one compression worker per core while this thread reads the files.
    compressor = zstandard.ZstdCompressor(level=level, threads=-1)
    # No context managers: after a failure nothing more may be written to the upload, which
    # the caller aborts; on success the tar end blocks and then the zstd frame end go out.
    compressed = compressor.stream_writer(sink, closefd=False)
    tar = tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
    for source in sources:
        _add(tar, source, written, setting)
    tar.close()
    compressed.close()
    written.stored_bytes = sink.bytes
    written.sha256 = sink.sha256
    return written


def _add(tar: tarfile.TarFile, source: Source, written: WrittenArchive, setting: str) -> None:
    path = str(source.path)
    try:
        status = os.stat(path) if source.follow else os.lstat(path)
        if stat.S_ISREG(status.st_mode):
            written.files.append(_add_file(tar, source))
        elif stat.S_ISDIR(status.st_mode) or stat.S_ISLNK(status.st_mode):
            tar.dereference = source.follow
            tar.addfile(tar.gettarinfo(path, source.arcname))
            written.other_entries += 1
        else:
            # Sockets, pipes and devices hold no data worth restoring; reading a pipe blocks.
            written.skipped.append(path)
    except FileNotFoundError:
        # Gone between listing and reading, as a log rotated meanwhile: reported, not fatal.
        written.vanished.append(path)
    except PermissionError as exc:
        raise ArchiveError(
            f"could not read {path}: permission denied; run karen-ops as a user that may read "
            f"it, or leave it out of {setting}"
        ) from exc
    except OSError as exc:
        raise ArchiveError(
            f"could not archive {path}: {exc.strerror or exc}; if the file changed size while "
            "it was read, run the archive again"
        ) from exc


def _add_file(tar: tarfile.TarFile, source: Source) -> ArchivedFile:
    # O_NOFOLLOW: a walked entry swapped for a link since it was listed is not followed.
    flags = os.O_RDONLY | (0 if source.follow else os.O_NOFOLLOW)
    with os.fdopen(os.open(source.path, flags), "rb") as file:
        status = os.fstat(file.fileno())
        info = tar.gettarinfo(arcname=source.arcname, fileobj=file)
        reader = HashingReader(file)
        tar.addfile(info, reader)
    return ArchivedFile(
        path=str(source.path),
        size_bytes=reader.bytes,
        sha256=reader.sha256,
        device=status.st_dev,
        inode=status.st_ino,
        mtime_ns=status.st_mtime_ns,
    )
