"""The Dagster resource that opens the backup store named by ``KAREN_BACKUP_URL``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import dagster as dg
from pydantic import Field

from karen_ops import settings
from karen_ops.errors import ConfigurationError
from karen_ops.resources.store.base import BackupStore
from karen_ops.resources.store.file import FileStore

ENCRYPTION_KEY = "KAREN_BACKUP_ENCRYPTION_KEY"
S3_SSE = "KAREN_S3_SSE"
S3_KMS_KEY_ID = "KAREN_S3_KMS_KEY_ID"


class BackupStoreResource(dg.ConfigurableResource):
    """Where backups and their manifests are kept, and how they are protected there."""

    url: str | None = Field(
        default=None,
        description="file:///path or s3://bucket/prefix (default: $KAREN_BACKUP_URL, else "
        "the 'backups' folder under the karen-ops home).",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible service (default: $KAREN_S3_ENDPOINT_URL, "
        "else AWS). Credentials come from the standard AWS chain.",
    )
    s3_server_side_encryption: str | None = Field(
        default=None,
        description="'AES256' (SSE-S3) or 'aws:kms' (default: $KAREN_S3_SSE, else none).",
    )
    s3_kms_key_id: str | None = Field(
        default=None, description="KMS key id for 'aws:kms' (default: $KAREN_S3_KMS_KEY_ID)."
    )
    encryption_key: str | None = Field(
        default=None,
        description="Base64 AES-256 key for client-side encryption of backup data (default: "
        "$KAREN_BACKUP_ENCRYPTION_KEY, else no client-side encryption).",
    )

    def open(self) -> BackupStore:
        store = open_store(
            self.url or settings.env(settings.BACKUP_URL) or settings.default_backup_url(),
            s3_endpoint_url=self.s3_endpoint_url or settings.env(settings.S3_ENDPOINT_URL),
            server_side_encryption=self.s3_server_side_encryption or settings.env(S3_SSE),
            kms_key_id=self.s3_kms_key_id or settings.env(S3_KMS_KEY_ID),
        )
        key = self.encryption_key or settings.env(ENCRYPTION_KEY)
        if key is None:
            return store
        from karen_ops.resources.store.encryption import EncryptingStore, parse_key

        return EncryptingStore(store, parse_key(key))


def open_store(
    url: str,
    *,
    s3_endpoint_url: str | None = None,
    server_side_encryption: str | None = None,
    kms_key_id: str | None = None,
) -> BackupStore:
    """The store implementation that serves ``url``."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
            raise ConfigurationError(
                f"{settings.BACKUP_URL}={url} must name a local absolute path: "
                "file:///absolute/path"
            )
        return FileStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigurationError(
                f"{settings.BACKUP_URL}={url} names no bucket; use s3://bucket/prefix"
            )
        from karen_ops.resources.store.s3 import S3Store, s3_client

        return S3Store(
            s3_client(s3_endpoint_url),
            parsed.netloc,
            parsed.path,
            server_side_encryption=server_side_encryption,
            kms_key_id=kms_key_id,
        )
    raise ConfigurationError(
        f"{settings.BACKUP_URL}={url} has an unsupported scheme {parsed.scheme!r}; "
        "use file:///absolute/path or s3://bucket/prefix"
    )
