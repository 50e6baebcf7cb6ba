"""Settings of continuous archiving, read when a command or a run starts."""

from __future__ import annotations

import re

from karen_ops import settings
from karen_ops.errors import ConfigurationError

CLUSTER = "KAREN_PITR_CLUSTER"
DEFAULT_CLUSTER = "primary"

# When the physical backups and drills run (defaults; the schedules section may override them).
BASE_BACKUP_CRON = "0 1 * * *"
WAL_ARCHIVE_CRON = "5 * * * *"
PITR_DRILL_CRON = "0 5 * * 6"


def cluster_name() -> str:
    """The name this server's WAL and base backups are filed under in the store."""
    name = settings.env(CLUSTER) or DEFAULT_CLUSTER
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name in {".", ".."}:
        raise ConfigurationError(
            f"{CLUSTER}={name!r} must be letters, digits, '.', '_' or '-' (it names a folder)"
        )
    return name
