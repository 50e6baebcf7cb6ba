"""Client-side encryption of backup data: AES-256-GCM in authenticated chunks, streamed.

An encrypted object is a header (magic, chunk size, a random nonce prefix) followed by chunks,
each a 4-byte length and the AES-GCM ciphertext of up to one chunk of plaintext with its tag.
Every chunk's nonce is the prefix, the chunk's number and a final-chunk flag, and the header is
authenticated with every chunk, so a wrong key, a changed byte, reordered chunks and a cut-off
tail are all detected. Manifests and markers (``*.json``) stay readable: retention and
listings need them, and they hold sizes and counts, not the database's rows.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import struct
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from karen_ops.errors import ConfigurationError, StoreError
from karen_ops.resources.store.base import BackupStore, IncompleteUpload, Upload

MAGIC = b"KAROPS-E1"
CHUNK_BYTES = 1024 * 1024
_HEADER = struct.Struct(">9sI7s")  # magic, plaintext chunk size, nonce prefix
_LENGTH = struct.Struct(">I")
KEY_SETTING = "KAREN_BACKUP_ENCRYPTION_KEY"


def parse_key(encoded: str) -> bytes:
    """The 32-byte key from its base64 text, or a ConfigurationError that says how to make one."""
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(f"{KEY_SETTING} is not base64: {exc}; {_HOW_TO_MAKE}") from exc
    if len(key) != 32:
        raise ConfigurationError(
            f"{KEY_SETTING} decodes to {len(key)} bytes, AES-256 needs 32; {_HOW_TO_MAKE}"
        )
    return key


_HOW_TO_MAKE = "make one with: openssl rand -base64 32"


class EncryptingStore(BackupStore):
    """Another store, with every data object encrypted on the way in and out."""

    encrypted = True

    def __init__(self, inner: BackupStore, key: bytes) -> None:
        self.inner = inner
        self.url = inner.url
        self.aead = AESGCM(key)

    def upload(self, key: str, expected_bytes: int | None = None) -> Upload:
        upload = self.inner.upload(key, expected_bytes)
        return upload if _is_plain(key) else _EncryptingUpload(upload, self.aead)

    def put_bytes(self, key: str, data: bytes) -> None:
        if _is_plain(key):
            self.inner.put_bytes(key, data)
        else:
            super().put_bytes(key, data)

    def reader(self, key: str) -> AbstractContextManager[BinaryIO]:
        if _is_plain(key):
            return self.inner.reader(key)
        return self._decrypting(key)

    @contextmanager
    def _decrypting(self, key: str) -> Iterator[BinaryIO]:
        with self.inner.reader(key) as raw:
            stream = _DecryptingReader(raw, self.aead, self.location(key))
            yield io.BufferedReader(stream, buffer_size=CHUNK_BYTES)  # type: ignore[arg-type]

    def list_keys(self, prefix: str) -> Iterator[str]:
        return self.inner.list_keys(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def location(self, key: str) -> str:
        return self.inner.location(key)

    def incomplete_uploads(self) -> list[IncompleteUpload]:
        return self.inner.incomplete_uploads()

    def discard(self, upload: IncompleteUpload) -> None:
        self.inner.discard(upload)


def _is_plain(key: str) -> bool:
    return key.endswith(".json")


def _nonce(prefix: bytes, number: int, final: bool) -> bytes:
    return prefix + struct.pack(">I?", number, final)


class _EncryptingUpload(Upload):
    def __init__(self, inner: Upload, aead: AESGCM) -> None:
        self.inner = inner
        self.aead = aead
        self.prefix = os.urandom(7)
        self.header = _HEADER.pack(MAGIC, CHUNK_BYTES, self.prefix)
        self.pending = bytearray()
        self.number = 0
        inner.write(self.header)

    def write(self, data: bytes) -> int:
        self.pending += data
        while len(self.pending) > CHUNK_BYTES:
            self._seal(bytes(self.pending[:CHUNK_BYTES]), final=False)
            del self.pending[:CHUNK_BYTES]
        return len(data)

    def publish(self) -> None:
        self._seal(bytes(self.pending), final=True)
        self.pending.clear()
        self.inner.publish()

    def abort(self) -> None:
        self.inner.abort()

    def _seal(self, plaintext: bytes, *, final: bool) -> None:
        nonce = _nonce(self.prefix, self.number, final)
        sealed = self.aead.encrypt(nonce, plaintext, self.header)
        self.inner.write(_LENGTH.pack(len(sealed)) + sealed)
        self.number += 1


class _DecryptingReader(io.RawIOBase):
    """Plaintext of an encrypted object, one authenticated chunk at a time."""

    def __init__(self, raw: BinaryIO, aead: AESGCM, location: str) -> None:
        self.raw, self.aead, self.location = raw, aead, location
        self.header = raw.read(_HEADER.size)
        _magic, self.chunk_bytes, self.prefix = self._parse_header()
        self.number = 0
        self.plain = b""
        self.finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray) -> int:  # type: ignore[override]
        while not self.plain and not self.finished:
            self.plain = self._next_chunk()
        size = min(len(target), len(self.plain))
        target[:size] = self.plain[:size]
        self.plain = self.plain[size:]
        return size

    def _parse_header(self) -> tuple[bytes, int, bytes]:
        if len(self.header) < _HEADER.size or not self.header.startswith(MAGIC):
            raise StoreError(
                f"{self.location} is not encrypted by karen-ops; was it written without "
                f"{KEY_SETTING}? Unset the key to read unencrypted backups"
            )
        return _HEADER.unpack(self.header)

    def _next_chunk(self) -> bytes:
        length_bytes = self.raw.read(_LENGTH.size)
        if len(length_bytes) < _LENGTH.size:
            raise StoreError(f"{self.location} ends before its final encrypted chunk: truncated")
        sealed = _read_exactly(self.raw, _LENGTH.unpack(length_bytes)[0])
        for final in (False, True):
            try:
                nonce = _nonce(self.prefix, self.number, final)
                plain = self.aead.decrypt(nonce, sealed, self.header)
            except InvalidTag:
                continue
            self.number += 1
            self.finished = final
            if final and self.raw.read(1):
                raise StoreError(f"{self.location} has data after its final encrypted chunk")
            return plain
        raise StoreError(
            f"could not decrypt {self.location} (chunk {self.number}): wrong {KEY_SETTING} "
            "or the object was changed after it was written"
        )


def _read_exactly(raw: BinaryIO, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = raw.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
