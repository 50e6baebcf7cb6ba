"""The karen-ops code location: each domain's definitions merged, with the shared resources."""

from __future__ import annotations

import dagster as dg

from karen_ops.alerting.definitions import build_definitions as alerting
from karen_ops.archives.definitions import build_definitions as archives
from karen_ops.backups.definitions import build_definitions as backups
from karen_ops.capacity.definitions import build_definitions as capacity
from karen_ops.health.definitions import build_definitions as health
from karen_ops.maintenance.definitions import build_definitions as maintenance
from karen_ops.pitr.definitions import build_definitions as pitr
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.redis import RedisResource
from karen_ops.resources.store import BackupStoreResource
from karen_ops.security.definitions import build_definitions as security
from karen_ops.settings import load_fleet, load_schedule_settings

# Schedules are part of the definitions' structure, so their settings are read when the code
# location loads; connection settings are resolved later, when each run starts.
_schedules = load_schedule_settings()
_fleet = load_fleet()

defs = dg.Definitions.merge(
    backups(_schedules, _fleet),
    archives(_schedules),
    maintenance(_schedules, _fleet),
    capacity(_schedules),
    pitr(_schedules),
    health(_schedules),
    security(_schedules),
    alerting(_schedules),
    dg.Definitions(
        resources={
            "postgres": PostgresResource(),
            "backup_store": BackupStoreResource(),
            "redis": RedisResource(),
        }
    ),
)
