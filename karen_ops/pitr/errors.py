"""Errors of continuous archiving and point-in-time recovery.

::

    KarenOpsError
    └── PitrError               archiving, a base backup, a drill or a restore went wrong
        ├── SegmentConflictError  a different WAL file of the same name is already archived
        └── SegmentMissingError   a WAL file PostgreSQL asked for is not in the archive
"""

from karen_ops.errors import KarenOpsError


class PitrError(KarenOpsError):
    """Continuous archiving, a base backup, a recovery drill or a restore went wrong."""


class SegmentConflictError(PitrError):
    """The archive already holds a different WAL file under the same name."""


class SegmentMissingError(PitrError):
    """The archive holds no WAL file of the requested name."""
