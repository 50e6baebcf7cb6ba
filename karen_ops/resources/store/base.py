"""What every backup store offers: streamed uploads that publish atomically, reads, listings."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO


@dataclass(frozen=True)
class IncompleteUpload:
    """An upload that was started and never published: a crash, or a store that went away."""

    key: str
    started_at: datetime
    handle: str  # what the store needs to discard it (a file name, a multipart upload id)


class Upload(ABC):
    """An object being written. It becomes visible under its key only on ``publish``."""

    @abstractmethod
    def write(self, data: bytes) -> int: ...

    @abstractmethod
    def publish(self) -> None:
        """Make the object visible under its key, whole, in one step."""

    @abstractmethod
    def abort(self) -> None:
        """Remove everything written so far; nothing of the upload stays in the store."""


class BackupStore(ABC):
    """A place that holds backup objects under '/'-separated keys."""

    url: str
    # True when data objects are encrypted client-side before they reach the store.
    encrypted: bool = False

    @abstractmethod
    def upload(self, key: str, expected_bytes: int | None = None) -> Upload:
        """Start writing ``key``; the caller must ``publish`` or ``abort`` the upload.

        ``expected_bytes`` is a hint for stores that cut uploads into parts.
        """

    @abstractmethod
    def reader(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Open ``key`` for streamed reading."""

    @abstractmethod
    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every published key under ``prefix``, in no particular order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    @abstractmethod
    def location(self, key: str) -> str:
        """Where ``key`` lives, as a URL an operator can use."""

    @abstractmethod
    def incomplete_uploads(self) -> list[IncompleteUpload]:
        """Uploads started and never published or aborted."""

    @abstractmethod
    def discard(self, upload: IncompleteUpload) -> None:
        """Remove what an incomplete upload left behind."""

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write a small object whole, published atomically."""
        upload = self.upload(key)
        try:
            upload.write(data)
            upload.publish()
        except BaseException:
            upload.abort()
            raise

    def read_bytes(self, key: str) -> bytes:
        with self.reader(key) as stream:
            return stream.read()
