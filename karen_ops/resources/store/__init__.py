"""The backup store: where archives and their manifests live.

Keys are relative, '/'-separated paths such as ``postgres/karen/2026-12-03/<id>/manifest.json``.
``open_store`` turns ``KAREN_BACKUP_URL`` into the one implementation that serves it.
"""

from typing import Any

from karen_ops.resources.store.base import BackupStore, Upload
from karen_ops.resources.store.configured import open_configured_store, open_store

__all__ = ["BackupStore", "BackupStoreResource", "Upload", "open_configured_store", "open_store"]


def __getattr__(name: str) -> Any:
    # The Dagster resource is loaded on first use: it imports Dagster, which the archiving
    # commands that PostgreSQL runs for every WAL file must not wait for.
    if name == "BackupStoreResource":
        from karen_ops.resources.store.resource import BackupStoreResource

        return BackupStoreResource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
