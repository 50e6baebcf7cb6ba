"""Every check in order, streamed as they finish, and the exit status."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from karen_ops.alerting.resource import AlertingResource
from karen_ops.doctor.archiving import archiving_checks
from karen_ops.doctor.database import database_checks, fleet_checks
from karen_ops.doctor.instance import instance_checks
from karen_ops.doctor.model import SETTINGS_FILE_BROKEN, Finding, fail, skip
from karen_ops.doctor.services import alerting_checks, check_redis
from karen_ops.doctor.store import store_checks
from karen_ops.errors import ConfigurationError, SettingsFileError
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.redis import RedisResource
from karen_ops.resources.store import BackupStoreResource
from karen_ops.settings import load_fleet


def sections() -> list[Callable[[], list[Finding]]]:
    """The checks, in the order an operator fixes things: instance, database, store, rest."""
    return [
        instance_checks,
        lambda: database_checks(PostgresResource()),
        _fleet_section,
        lambda: archiving_checks(PostgresResource()),
        lambda: store_checks(BackupStoreResource()),
        lambda: [check_redis(RedisResource())],
        lambda: alerting_checks(AlertingResource()),
    ]


def _fleet_section() -> list[Finding]:
    try:
        fleet = load_fleet()
    except SettingsFileError:
        return [skip("fleet settings", f"not read: {SETTINGS_FILE_BROKEN}")]
    except ConfigurationError as exc:
        # The message names the file and the entry but never echoes a value, which may be a
        # URL with its password.
        return [fail("fleet settings", str(exc), "correct the databases section")]
    return fleet_checks(PostgresResource(), fleet)


def run_checks() -> Iterator[Finding]:
    for section in sections():
        yield from section()
