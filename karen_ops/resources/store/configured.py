"""Opening the store the environment names, without Dagster: the archiving commands that
PostgreSQL runs for every WAL file start in a fraction of the time."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import ParseResult, unquote, urlparse

from karen_ops import settings
from karen_ops.errors import ConfigurationError
from karen_ops.resources.store.base import BackupStore
from karen_ops.resources.store.file import FileStore

ENCRYPTION_KEY = "KAREN_BACKUP_ENCRYPTION_KEY"
S3_SSE = "KAREN_S3_SSE"
S3_KMS_KEY_ID = "KAREN_S3_KMS_KEY_ID"


def open_configured_store(
    *,
    url: str | None = None,
    s3_endpoint_url: str | None = None,
    server_side_encryption: str | None = None,
    kms_key_id: str | None = None,
    encryption_key: str | None = None,
) -> BackupStore:
    """The store from the arguments given, else their environment variables, else the demo's."""
    store = open_store(
        url or settings.env(settings.BACKUP_URL) or settings.default_backup_url(),
        s3_endpoint_url=s3_endpoint_url or settings.env(settings.S3_ENDPOINT_URL),
        server_side_encryption=server_side_encryption or settings.env(S3_SSE),
        kms_key_id=kms_key_id or settings.env(S3_KMS_KEY_ID),
    )
    key = encryption_key or settings.env(ENCRYPTION_KEY)
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
    parsed = _parse(url)
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


def _parse(url: str) -> ParseResult:
    """``url`` split into parts, refused before any message can quote credentials in it."""
    try:
        parsed = urlparse(url)
    except ValueError:
        # urlparse's own message may quote the host part, user info and all: not chained.
        raise ConfigurationError(
            f"{settings.BACKUP_URL} is not a valid URL: its host part cannot be parsed; "
            "use file:///absolute/path or s3://bucket/prefix"
        ) from None
    if _may_hold_credentials(parsed):
        where = "bucket" if parsed.scheme == "s3" else "host"
        raise ConfigurationError(
            f"{settings.BACKUP_URL} ({parsed.scheme}://...) carries user info before its "
            f"{where}; remove it, since the URL is shown in logs and errors. {_CREDENTIALS_HINT}"
        )
    return parsed


def _may_hold_credentials(parsed: ParseResult) -> bool:
    # '@' ends user info. A ':' also counts in the stores served here: neither a bucket nor a
    # local host takes a port, and a secret holding a '/' cuts the host short at its colon.
    if "@" in parsed.netloc:
        return True
    return parsed.scheme in ("s3", "file") and ":" in parsed.netloc


_CREDENTIALS_HINT = (
    "An S3 store takes its credentials from the standard AWS chain: AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, or a profile named by AWS_PROFILE, or the instance's role; a "
    "folder store (file:///absolute/path) needs none"
)
