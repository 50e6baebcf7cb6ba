"""The PITR resource: which cluster, how the server runs karen-ops, and the drill's limits."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import dagster as dg
from pydantic import Field

from karen_ops import settings
from karen_ops.pitr.settings import cluster_name

COMMAND = "KAREN_PITR_COMMAND"
DRILL_USER = "KAREN_PITR_DRILL_USER"


class PitrResource(dg.ConfigurableResource):
    """Settings of base backups, the WAL archive check and recovery drills."""

    cluster: str | None = Field(
        default=None,
        description="Name the server's WAL and base backups are filed under (default: "
        "$KAREN_PITR_CLUSTER, else 'primary'). Must match the archive_command's environment.",
    )
    karen_ops_command: str | None = Field(
        default=None,
        description="The karen-ops a drill server runs as restore_command (default: "
        "$KAREN_PITR_COMMAND, else the karen-ops installed beside this Python).",
    )
    drill_os_user: str | None = Field(
        default=None,
        description="OS user that runs the drill's temporary server when karen-ops runs as "
        "root (default: $KAREN_PITR_DRILL_USER); PostgreSQL refuses to run as root.",
    )
    drill_work_dir: str | None = Field(
        default=None, description="Where drills unpack base backups (default: the temp folder)."
    )
    fast_checkpoint: bool = Field(
        default=True,
        description="Start base backups with an immediate checkpoint; false spreads it over "
        "checkpoint_completion_target, gentler on disks but slower to start.",
    )
    idle_switch_seconds: float = Field(
        default=900,
        description="wal_archive switches to a new WAL segment when nothing was archived for "
        "this long, so that an idle hour still reaches the archive.",
    )
    max_lag_seconds: float = Field(
        default=3600, description="archive_lag_within_hour fails beyond this archive lag."
    )
    drill_timeout_seconds: float = Field(
        default=3600, description="Longest a drill's recovery may take before it fails."
    )

    def cluster_name(self) -> str:
        return self.cluster or cluster_name()

    def command(self) -> list[str]:
        configured = self.karen_ops_command or settings.env(COMMAND)
        if configured:
            return configured.split()
        beside = Path(sys.executable).parent / "karen-ops"
        return [str(beside)] if beside.exists() else [shutil.which("karen-ops") or "karen-ops"]

    def os_user(self) -> str | None:
        return self.drill_os_user or settings.env(DRILL_USER)
