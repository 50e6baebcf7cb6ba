"""The Dagster resource that opens the backup store named by ``KAREN_BACKUP_URL``."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from karen_ops.resources.store.base import BackupStore
from karen_ops.resources.store.configured import open_configured_store, open_store

__all__ = ["BackupStoreResource", "open_store"]


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
        return open_configured_store(
            url=self.url,
            s3_endpoint_url=self.s3_endpoint_url,
            server_side_encryption=self.s3_server_side_encryption,
            kms_key_id=self.s3_kms_key_id,
            encryption_key=self.encryption_key,
        )
