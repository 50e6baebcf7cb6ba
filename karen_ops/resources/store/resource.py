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


class BackupStoreResource(dg.ConfigurableResource):
    """Where backups and their manifests are kept."""

    url: str | None = Field(
        default=None,
        description="file:///path or s3://bucket/prefix (default: $KAREN_BACKUP_URL, else "
        "the 'backups' folder under the karen-ops home).",
    )

    def open(self) -> BackupStore:
        return open_store(
            self.url or settings.env(settings.BACKUP_URL) or settings.default_backup_url()
        )


def open_store(url: str) -> BackupStore:
    """The store implementation that serves ``url``."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ConfigurationError(
                f"{settings.BACKUP_URL}={url} names a remote host; use file:///absolute/path"
            )
        return FileStore(Path(unquote(parsed.path)))
    raise ConfigurationError(
        f"{settings.BACKUP_URL}={url} has an unsupported scheme {parsed.scheme!r}; "
        "use file:///absolute/path"
    )
