"""The asset check on configuration archives: secrets never sit unencrypted in the store."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

import dagster as dg

from karen_ops.archives.config import SECTION

CONFIG_BACKUP = dg.AssetKey("config_backup")
SECRETS_ARE_ENCRYPTED = "secrets_are_encrypted"

# An application's .env (and .env.production and the like) always holds secrets.
ALWAYS_SECRET = (".env", ".env.*")

CHECK_SPECS = [
    dg.AssetCheckSpec(
        SECRETS_ARE_ENCRYPTED,
        asset=CONFIG_BACKUP,
        description="Files holding secrets (.env files and those named in "
        f"{SECTION}.secret_files) are archived only into a store with client-side encryption.",
        # WARN, not blocking: an unencrypted archive of the secrets still beats no archive.
        blocking=False,
    )
]


def secret_files(paths: Iterable[str], patterns: Iterable[str]) -> list[str]:
    """The archived paths whose name, or whole path, matches a secret pattern."""
    patterns = (*ALWAYS_SECRET, *patterns)
    return [
        path
        for path in paths
        if any(fnmatchcase(PurePosixPath(path).name, p) or fnmatchcase(path, p) for p in patterns)
    ]


def secrets_are_encrypted(
    paths: Iterable[str], patterns: Iterable[str], *, encrypted: bool
) -> dg.AssetCheckResult:
    secrets = secret_files(paths, patterns)
    passed = encrypted or not secrets
    description = None
    if not passed:
        description = (
            f"{len(secrets)} archived file(s) hold secrets and the backup store does not "
            f"encrypt them: {', '.join(secrets)}; anyone who can read the store can read "
            "them. Configure client-side encryption of the backup store, or leave these "
            f"files out of {SECTION}.config_paths"
        )
    return dg.AssetCheckResult(
        check_name=SECRETS_ARE_ENCRYPTED,
        asset_key=CONFIG_BACKUP,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "store_encrypted": encrypted,
            "secret_files": len(secrets),
            "secret_paths": ", ".join(secrets) or "none",
        },
    )
