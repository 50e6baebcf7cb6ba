"""The backup store: where archives and their manifests live.

Keys are relative, '/'-separated paths such as ``postgres/karen/2026-12-03/<id>/manifest.json``.
``open_store`` turns ``KAREN_BACKUP_URL`` into the one implementation that serves it.
"""

from karen_ops.resources.store.base import BackupStore, Upload
from karen_ops.resources.store.resource import BackupStoreResource, open_store

__all__ = ["BackupStore", "BackupStoreResource", "Upload", "open_store"]
