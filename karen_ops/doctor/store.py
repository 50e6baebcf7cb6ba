"""The backup store: writable, readable, deletable; and the client-side encryption key."""

from __future__ import annotations

import secrets

from karen_ops import settings
from karen_ops.doctor.model import Finding, Status, fail, ok, skip
from karen_ops.errors import KarenOpsError
from karen_ops.resources.store import BackupStoreResource
from karen_ops.resources.store.encryption import KEY_SETTING, parse_key

# Outside every prefix that backups, archives and reports use, so no listing ever sees it.
PROBE_PREFIX = "karen-ops-doctor"


def store_checks(store: BackupStoreResource) -> list[Finding]:
    key = check_encryption_key(store)
    if key.status is Status.FAIL:
        return [key, skip("backup store", f"not probed until {KEY_SETTING} is valid")]
    return [key, check_store_writable(store)]


def check_encryption_key(store: BackupStoreResource) -> Finding:
    item = "encryption key"
    key = store.encryption_key or settings.env(KEY_SETTING)
    if key is None:
        return skip(item, f"{KEY_SETTING} is not set: backups are not encrypted by karen-ops")
    try:
        parse_key(key)
    except KarenOpsError as exc:
        return fail(item, str(exc).split(";")[0], "make one with: openssl rand -base64 32")
    return ok(item, f"{KEY_SETTING} holds a valid AES-256 key")


def check_store_writable(store: BackupStoreResource) -> Finding:
    """Write a small probe object, read it back, delete it."""
    item = "backup store"
    configured = store.url or settings.env(settings.BACKUP_URL)
    demo_folder = settings.ops_home() / "backups"
    if configured is None and not demo_folder.is_dir():
        # The demo default would create a folder wherever the doctor happens to run.
        return fail(
            item,
            f"{settings.BACKUP_URL} is not set and the demo's backup folder {demo_folder} "
            "does not exist",
            f"export {settings.BACKUP_URL}=file:///var/backups/karen (or s3://BUCKET/PREFIX)",
        )
    try:
        opened = store.open()
    except KarenOpsError as exc:
        return fail(item, str(exc), f"correct {settings.BACKUP_URL}")
    where = opened.url
    default = "" if configured else f" ({settings.BACKUP_URL} is not set: the demo's folder)"

    key = f"{PROBE_PREFIX}/probe-{secrets.token_hex(8)}.bin"
    payload = secrets.token_bytes(64)
    phase = "write"
    try:
        opened.put_bytes(key, payload)
        phase = "read back"
        if opened.read_bytes(key) != payload:
            raise OSError("the probe object read back differs from what was written")
        phase = "delete"
        opened.delete(key)
    except (KarenOpsError, OSError) as exc:
        return fail(
            item,
            f"could not {phase} a probe object in {where}{default}: {exc}",
            f"make {where} writable by this user, or set {settings.BACKUP_URL} to a store it "
            "may write (S3: check the AWS credentials and the bucket policy)",
        )
    encrypted = ", encrypted client-side" if opened.encrypted else ""
    return ok(item, f"{where}{default}: wrote, read back and deleted a probe object{encrypted}")
