"""Byte streams that hash and count what passes through them."""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from karen_ops.errors import StoreError
from karen_ops.resources.store import Upload


class HashingReader:
    """Reads from ``raw``, keeping the SHA-256 and count of every byte handed out."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        self.bytes += len(data)
        return data

    def drain(self, chunk: int = 1 << 20) -> None:
        """Read to the end, so the digest covers the whole stream."""
        while self.read(chunk):
            pass

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()


class HashingSink:
    """Where compressed archive bytes go: counted, hashed, then written to the store upload."""

    def __init__(self, upload: Upload, location: str) -> None:
        self.upload = upload
        self.location = location
        self.digest = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.bytes += len(data)
        try:
            self.upload.write(data)
        except OSError as exc:
            # Told apart from a file that could not be read: the store is what failed.
            raise StoreError(
                f"could not write {self.location}: {exc.strerror or exc}; check that "
                "KAREN_BACKUP_URL names a store with room to write"
            ) from exc
        return len(data)

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()
