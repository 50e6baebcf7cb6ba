"""A private, temporary PostgreSQL server on a restored data folder, for drills.

The server listens on a Unix socket only, in a folder only its OS user can enter, trusts that
socket alone, never archives (its WAL must not reach the production archive) and fetches WAL
through ``karen-ops wal-fetch``. When karen-ops runs as root the server runs as
``os_user`` instead, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from karen_ops.errors import PitrError
from karen_ops.resources.pg_tools import find_tool

PORT = 5499  # only a socket file name: nothing listens on TCP


def server_binaries(server_version: str, bin_dir: str | None) -> Path:
    """The folder of the server binaries of a base backup's major version, the only version
    its data folder starts under."""
    major = int(server_version.split(".")[0])
    pg_ctl = find_tool("pg_ctl", major, bin_dir=bin_dir)
    if pg_ctl.major != major:
        raise PitrError(
            f"no PostgreSQL {major} server binaries (found {pg_ctl}); a base backup only starts "
            f"under its own major version: install postgresql-{major} or set KAREN_PG_BIN_DIR"
        )
    return pg_ctl.path.parent


@dataclass(frozen=True)
class Recovery:
    """Where recovery stops and how it gets WAL."""

    restore_command: list[str]  # 'wal-fetch %f %p' is appended
    target_lsn: str | None = None
    target_time: str | None = None


def recovery_settings(recovery: Recovery, socket_dir: Path, data: Path) -> dict[str, str]:
    settings = {
        "restore_command": shlex.join([*recovery.restore_command, "wal-fetch"]) + " %f %p",
        "recovery_target_action": "pause",
        "archive_mode": "off",
        "listen_addresses": "",
        "port": str(PORT),
        "unix_socket_directories": str(socket_dir),
        "hot_standby": "on",
        "hba_file": str(data / "karen_ops_hba.conf"),
    }
    if recovery.target_lsn:
        # Exclusive: stop before the first record at the target, so that everything written
        # before it is replayed and nothing after.
        settings["recovery_target_lsn"] = recovery.target_lsn
        settings["recovery_target_inclusive"] = "off"
    if recovery.target_time:
        settings["recovery_target_time"] = recovery.target_time
    return settings


def prepare_recovery(data: Path, settings: dict[str, str], *, trust_socket: bool = True) -> None:
    """Write the recovery settings (and, for drills, the socket-only trust rule) into an
    unpacked backup."""
    if trust_socket:
        (data / "karen_ops_hba.conf").write_text("local all all trust\n")
    conf = data / "postgresql.conf"
    if not conf.exists():  # Debian keeps it in /etc, outside the data folder
        conf.write_text("")
    lines = "".join(f"{name} = '{_quote(value)}'\n" for name, value in settings.items())
    with (data / "postgresql.auto.conf").open("a") as auto:
        auto.write("\n# karen-ops recovery settings\n" + lines)
    (data / "recovery.signal").write_text("")
    for stale in ("postmaster.pid", "postmaster.opts"):
        (data / stale).unlink(missing_ok=True)


def _quote(value: str) -> str:
    return value.replace("'", "''")


@dataclass
class TemporaryServer:
    bin_dir: Path
    folder: Path  # holds data/, the socket and server.log
    os_user: str | None
    env: dict[str, str]
    running: bool = False
    data_dir: Path | None = None  # default: folder/data
    host: str | None = None  # default: the socket in folder
    port: int = PORT

    @property
    def data(self) -> Path:
        return self.data_dir or self.folder / "data"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    def hand_over(self) -> None:
        """Give the folder to the server's OS user; only that user may enter it."""
        os.chmod(self.folder, 0o700)
        if self.os_user is None:
            return
        entry = pwd.getpwnam(self.os_user)
        for root, dirs, files in os.walk(self.folder):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for name in dirs + files:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)

    def start(self, timeout: float) -> None:
        command = [
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(int(timeout)),
            "start",
        ]
        completed = self._run(command, timeout + 30)
        self.running = True
        if completed.returncode != 0:
            raise PitrError(f"the recovered server did not start: {self.log_tail()}")

    def stop(self) -> None:
        if self.running:
            self._run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                120,
            )
            self.running = False

    def connect(self, user: str, dbname: str) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host or str(self.folder),
            port=self.port,
            user=user,
            dbname=dbname,
            autocommit=True,
            connect_timeout=10,
        )

    def wait_until_paused(self, user: str, timeout: float) -> str:
        """Wait until recovery reached its target and paused; return the replayed position."""
        return self._wait_for_recovery(user, timeout, _replay_position_if_paused)

    def wait_until_promoted(self, user: str, timeout: float) -> str:
        """Wait until recovery reached its target and the server left recovery; return the
        position it had replayed to."""
        return self._wait_for_recovery(user, timeout, _position_if_promoted)

    def _wait_for_recovery(
        self, user: str, timeout: float, reached: Callable[[psycopg.Connection], str | None]
    ) -> str:
        """Poll until ``reached`` gives a position; fail early when the server has stopped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with self.connect(user, "postgres") as conn:
                    position = reached(conn)
                if position is not None:
                    return position
            except psycopg.OperationalError:
                if not self._alive():
                    raise PitrError(
                        f"recovery stopped before its target: {self.log_tail()}"
                    ) from None
            time.sleep(0.3)
        raise PitrError(f"recovery did not reach its target in {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 12) -> str:
        if not self.log_file.exists():
            return "no server log"
        return " | ".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _alive(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def _run(self, command: list[str], timeout: float) -> subprocess.CompletedProcess:
        if self.os_user is not None:
            command = ["runuser", "-u", self.os_user, "--", *command]
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, check=False, timeout=timeout
        )


def _replay_position_if_paused(conn: psycopg.Connection) -> str | None:
    state, lsn = conn.execute(
        "SELECT pg_get_wal_replay_pause_state(), pg_last_wal_replay_lsn()::text"
    ).fetchone()
    return lsn if state == "paused" else None


def _position_if_promoted(conn: psycopg.Connection) -> str | None:
    if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
        return None
    return conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
