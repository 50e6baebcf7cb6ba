"""Errors of the file archives, under the karen-ops error tree."""

from karen_ops.errors import KarenOpsError


class ArchiveError(KarenOpsError):
    """Files could not be selected, archived, stored or verified."""
