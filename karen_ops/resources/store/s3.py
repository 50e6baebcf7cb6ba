"""A backup store in an S3 bucket or any S3-compatible service (``s3://bucket/prefix``).

Data objects stream up as multipart uploads. The part size is chosen from the expected size so
that even a multi-terabyte dump stays under S3's 10,000-part limit, and each part is spooled
to disk past a small memory buffer, so memory stays bounded whatever the part size. The
multipart upload is created with the first part and aborted on any failure, so no parts
linger. Integrity is the manifest's SHA-256, never the ETag, which for a multipart upload is
not a digest of the object.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing
from typing import Any, BinaryIO

from karen_ops.errors import StoreError
from karen_ops.resources.store.base import BackupStore, IncompleteUpload, Upload

log = logging.getLogger(__name__)

MiB = 1024 * 1024
MIN_PART_BYTES = 8 * MiB  # S3 needs 5 MiB; 8 MiB keeps request counts low for small dumps
MAX_PART_BYTES = 5 * 1024 * MiB
MAX_PARTS = 10_000
# Plan for this many parts so a dump larger than expected still fits under MAX_PARTS.
PLANNED_PARTS = 8_000
IN_MEMORY_PART_BYTES = 16 * MiB


def choose_part_size(expected_bytes: int | None) -> int:
    """A part size, in whole MiB, that fits ``expected_bytes`` in 8,000 parts."""
    if not expected_bytes:
        expected_bytes = 1024**4  # unknown: plan for a terabyte
    wanted = math.ceil(expected_bytes / PLANNED_PARTS / MiB) * MiB
    return min(MAX_PART_BYTES, max(MIN_PART_BYTES, wanted))


class S3Store(BackupStore):
    """Objects under ``prefix`` in ``bucket``; uploads are multipart, reads are streamed."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str,
        *,
        server_side_encryption: str | None = None,
        kms_key_id: str | None = None,
        part_bytes: int | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}"
        self.part_bytes = part_bytes
        self.put_args: dict[str, str] = {}
        if server_side_encryption:
            self.put_args["ServerSideEncryption"] = server_side_encryption
        if kms_key_id:
            self.put_args["SSEKMSKeyId"] = kms_key_id

    def upload(self, key: str, expected_bytes: int | None = None) -> Upload:
        part_bytes = self.part_bytes or choose_part_size(expected_bytes)
        return _S3Upload(self, self.object_key(key), part_bytes)

    def put_bytes(self, key: str, data: bytes) -> None:
        # Small objects (manifests, markers) go up whole: a single PUT is atomic.
        self._call(
            "write",
            key,
            self.client.put_object,
            Bucket=self.bucket,
            Key=self.object_key(key),
            Body=data,
            **self.put_args,
        )

    def reader(self, key: str) -> AbstractContextManager[BinaryIO]:
        response = self._call(
            "read", key, self.client.get_object, Bucket=self.bucket, Key=self.object_key(key)
        )
        return closing(response["Body"])

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.object_key(prefix))
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :]
        except Exception as exc:  # botocore raises many unrelated types; all mean "unreadable"
            raise StoreError(f"could not list {self.location(prefix)}: {exc}") from exc

    def delete(self, key: str) -> None:
        self._call(
            "delete", key, self.client.delete_object, Bucket=self.bucket, Key=self.object_key(key)
        )

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def incomplete_uploads(self) -> list[IncompleteUpload]:
        response = self._call(
            "list uploads under",
            "",
            self.client.list_multipart_uploads,
            Bucket=self.bucket,
            Prefix=self.prefix,
        )
        return [
            IncompleteUpload(item["Key"][len(self.prefix) :], item["Initiated"], item["UploadId"])
            for item in response.get("Uploads", [])
        ]

    def discard(self, upload: IncompleteUpload) -> None:
        self._call(
            "abort the upload of",
            upload.key,
            self.client.abort_multipart_upload,
            Bucket=self.bucket,
            Key=self.object_key(upload.key),
            UploadId=upload.handle,
        )

    def object_key(self, key: str) -> str:
        return self.prefix + key

    def _call(self, verb: str, key: str, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except Exception as exc:  # botocore's errors share no useful base class
            raise StoreError(
                f"could not {verb} {self.location(key)}: {exc}; check KAREN_BACKUP_URL, "
                "KAREN_S3_ENDPOINT_URL and the AWS credentials"
            ) from exc


class _S3Upload(Upload):
    def __init__(self, store: S3Store, object_key: str, part_bytes: int) -> None:
        self.store = store
        self.key = object_key
        self.part_bytes = part_bytes
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.buffer = self._new_buffer()
        self.buffered = 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            room = self.part_bytes - self.buffered
            self.buffer.write(view[:room])
            self.buffered += min(room, len(view))
            view = view[room:]
            if self.buffered == self.part_bytes:
                self._guarded(self._send_part)
        return len(data)

    def publish(self) -> None:
        self._guarded(self._finish)

    def _finish(self) -> None:
        client, bucket = self.store.client, self.store.bucket
        if self.upload_id is None:
            # Smaller than one part: a single PUT publishes it whole.
            self.buffer.seek(0)
            client.put_object(
                Bucket=bucket, Key=self.key, Body=self.buffer.read(), **self.store.put_args
            )
            return
        if self.buffered:
            self._send_part()
        client.complete_multipart_upload(
            Bucket=bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    def _guarded(self, step: Any) -> None:
        try:
            step()
        except StoreError:
            raise
        except Exception as exc:  # botocore's errors share no useful base class
            raise StoreError(
                f"could not upload s3://{self.store.bucket}/{self.key}: {exc}; check "
                "KAREN_BACKUP_URL, KAREN_S3_ENDPOINT_URL and the AWS credentials"
            ) from exc

    def abort(self) -> None:
        self.buffer.close()
        if self.upload_id is None:
            return
        try:
            self.store.client.abort_multipart_upload(
                Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id
            )
        except Exception as exc:  # the store may be the thing that failed; retention cleans up
            log.warning("could not abort multipart upload key=%s reason=%s", self.key, exc)

    def _send_part(self) -> None:
        if self.upload_id is None:
            created = self.store.client.create_multipart_upload(
                Bucket=self.store.bucket, Key=self.key, **self.store.put_args
            )
            self.upload_id = created["UploadId"]
        number = len(self.parts) + 1
        if number > MAX_PARTS:
            raise StoreError(f"upload of {self.key} passed {MAX_PARTS} parts of {self.part_bytes}")
        self.buffer.seek(0)
        response = self.store.client.upload_part(
            Bucket=self.store.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=self.buffer,
            ContentLength=self.buffered,
        )
        self.parts.append({"PartNumber": number, "ETag": response["ETag"]})
        self.buffer.close()
        self.buffer = self._new_buffer()
        self.buffered = 0

    @staticmethod
    def _new_buffer() -> tempfile.SpooledTemporaryFile:
        return tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_PART_BYTES)


def s3_client(endpoint_url: str | None) -> Any:
    """A boto3 S3 client; credentials come from the standard AWS chain."""
    import boto3  # imported on use: it costs a third of a second that definitions need not pay
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=120
    )
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)
