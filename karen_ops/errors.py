"""Errors karen-ops raises on purpose.

Every message says what could not be done, to what, and why, then names the setting or
command that fixes it. The tree::

    KarenOpsError
    ├── ConfigurationError     a setting is missing or malformed
    ├── DatabaseError          PostgreSQL could not be reached or answered with an error
    ├── ToolNotFoundError      no pg_dump / pg_restore of a suitable major version
    ├── StoreError             the backup store could not be read or written
    ├── BackupError            a backup could not be taken or published
    └── RestoreError           a backup could not be fetched, read or restored
        └── ArchiveFormatError the stored bytes are not an archive this tool can read
"""


class KarenOpsError(Exception):
    """Root of every error karen-ops raises on purpose."""


class ConfigurationError(KarenOpsError):
    """A setting is missing or malformed."""


class DatabaseError(KarenOpsError):
    """PostgreSQL could not be reached, or answered a statement with an error."""


class ToolNotFoundError(KarenOpsError):
    """No PostgreSQL client tool of a suitable major version was found."""


class StoreError(KarenOpsError):
    """The backup store could not be read or written."""


class BackupError(KarenOpsError):
    """A backup could not be taken or published."""


class RestoreError(KarenOpsError):
    """A backup could not be fetched, read or restored."""


class ArchiveFormatError(RestoreError):
    """The stored bytes are not an archive the available pg_restore can read."""
