"""Errors karen-ops raises on purpose.

Every message says what could not be done, to what, and why, then names the setting or
command that fixes it. The tree::

    KarenOpsError
    ├── ConfigurationError     a setting is missing or malformed
    │   └── SettingsFileError  the settings file as a whole cannot be read or used
    ├── DatabaseError          PostgreSQL could not be reached or answered with an error
    ├── ToolNotFoundError      no pg_dump / pg_restore of a suitable major version
    ├── StoreError             the backup store could not be read or written
    ├── BackupError            a backup could not be taken or published
    ├── RestoreError           a backup could not be fetched, read or restored
    │   └── ArchiveFormatError the stored bytes are not an archive this tool can read
    ├── ArchiveError           files could not be selected, archived, stored or verified
    ├── CapacityError          a capacity observation or report could not be made
    ├── AlertingError          alerts could not be raised, routed or delivered
    │   ├── DeliveryError      a channel did not accept a notification after its retries
    │   └── StateUnavailable   the alert state store (Redis) could not be read or written
    └── PitrError              archiving, a base backup, a drill or a restore went wrong
        ├── SegmentConflictError  a different WAL file of the same name is already archived
        └── SegmentMissingError   a WAL file PostgreSQL asked for is not in the archive

A request declined before any work began (a partition that can no longer be taken) is a
``RequestRefused`` as well as its domain's error: ``BackupRefused``, ``ArchiveRefused`` and
``CapacityRefused``. Nothing was attempted or lost, so run alerts tell whoever asked instead
of paging on-call.
"""


class KarenOpsError(Exception):
    """Root of every error karen-ops raises on purpose."""


class ConfigurationError(KarenOpsError):
    """A setting is missing or malformed."""


class SettingsFileError(ConfigurationError):
    """The settings file cannot be read, is not valid YAML, or holds an unknown section: no
    section of it can be trusted until it is fixed."""


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


class PgRestoreFailed(RestoreError):
    """pg_restore exited with an error; how it ended and the tail of what it wrote."""

    def __init__(self, message: str, *, returncode: int, output: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.output = output


class ArchiveFormatError(RestoreError):
    """The stored bytes are not an archive the available pg_restore can read."""


class ArchiveError(KarenOpsError):
    """Files could not be selected, archived, stored or verified."""


class CapacityError(KarenOpsError):
    """A capacity observation or report could not be made."""


class AlertingError(KarenOpsError):
    """Alerts could not be raised, routed or delivered."""


class DeliveryError(AlertingError):
    """A channel did not accept a notification after its bounded retries."""


class StateUnavailable(AlertingError):
    """The alert state store could not be read or written."""


class PitrError(KarenOpsError):
    """Continuous archiving, a base backup, a recovery drill or a restore went wrong."""


class SegmentConflictError(PitrError):
    """The archive already holds a different WAL file under the same name."""


class SegmentMissingError(PitrError):
    """The archive holds no WAL file of the requested name."""


class RequestRefused(KarenOpsError):
    """A request declined as asked, before any work began: a partition that can no longer be
    taken, a range a snapshot cannot fill. Nothing was attempted and nothing was lost; whoever
    asked has to ask differently, so run alerts tell them instead of paging on-call."""


class BackupRefused(BackupError, RequestRefused):
    """A backup asked for a partition it cannot be recorded under."""


class ArchiveRefused(ArchiveError, RequestRefused):
    """An archive asked for a partition it cannot be recorded under."""


class CapacityRefused(CapacityError, RequestRefused):
    """A capacity snapshot asked for a day or a range it cannot observe."""
