"""Private PostgreSQL servers that archive through ``karen-ops wal-push``, for the PITR tests.

Each server is a fresh ``initdb`` from the machine's PostgreSQL binaries, run as an unprivileged
OS user (PostgreSQL refuses to run as root), listening on a free port on 127.0.0.1, with 1 MiB
WAL segments so that switching and archiving stay fast. Its ``archive_command`` runs the
karen-ops of this test run, with the store's settings in the server's environment.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import embedded_bin_dir

DEBIAN_BIN = Path("/usr/lib/postgresql/15/bin")
# The majors in reach: Debian's binaries and the embedded pgserver's.
SERVER_MAJORS = ["15", "16"]
WAL_SEGMENT_MB = 1


@dataclass(frozen=True)
class ServerUser:
    """Who runs the private servers, and how a command is run as them."""

    name: str | None  # None: this process is not root and runs them itself
    bin_dir: Path

    def argv(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", self.name, "--", *command] if self.name else command

    def run(self, command: list[str], env: dict[str, str] | None = None, **kwargs):
        return subprocess.run(
            self.argv(command), env=env, capture_output=True, text=True, check=False, **kwargs
        )

    def give(self, path: Path) -> None:
        """Hand ``path`` (and what is in it) to the server user."""
        if self.name:
            entry = pwd.getpwnam(self.name)
            for item in [path, *path.rglob("*")]:
                os.chown(item, entry.pw_uid, entry.pw_gid)

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)


def find_server_user(major: str | None = None) -> ServerUser | None:
    """Debian's PostgreSQL 15 run as 'postgres', else pgserver's 16 run as 'pgserver'; or
    only the ``major`` asked for."""
    candidates = [("15", DEBIAN_BIN, "postgres")]
    if embedded_bin_dir() is not None:
        candidates.append(("16", embedded_bin_dir(), "pgserver"))
    for version, bin_dir, user in candidates:
        if major not in (None, version) or not (bin_dir / "initdb").is_file():
            continue
        if os.geteuid() != 0:
            return ServerUser(None, bin_dir)
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ServerUser(user, bin_dir)
    return None


@pytest.fixture(scope="session")
def server_user(request: pytest.FixtureRequest) -> ServerUser:
    """The servers' binaries and OS user; a test picks a major version with
    ``@pytest.mark.parametrize("server_user", SERVER_MAJORS, indirect=True)``."""
    major = getattr(request, "param", None)
    found = find_server_user(major)
    if found is None:
        wanted = f"PostgreSQL {major}" if major else "PostgreSQL"
        pytest.skip(
            f"no {wanted} server binaries with an unprivileged user to run them: install "
            "postgresql-15 (Debian, run by 'postgres') or pgserver (16, run by a 'pgserver' "
            "user: useradd --system pgserver)"
        )
    return found


@pytest.fixture(scope="session")
def karen_ops_argv(server_user: ServerUser) -> Iterator[list[str]]:
    """How the server user runs this test run's karen-ops: its own script, else a shim."""
    script = Path(sys.executable).parent / "karen-ops"
    if server_user.run([str(script), "wal-push", "--help"]).returncode == 0:
        yield [str(script)]
        return
    if server_user.run([sys.executable, "-c", "import karen_ops.pitr"]).returncode == 0:
        yield [sys.executable, "-m", "karen_ops.pitr"]
        return
    # The interpreter lives where the server user may not look (e.g. under /root): run the
    # same packages with a system Python of the same version.
    system_python = shutil.which(
        f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin:/usr/local/bin"
    )
    if system_python is None:
        pytest.skip(f"the server user cannot run {sys.executable} and no system Python exists")
    shim = Path(tempfile.mkdtemp(prefix="karen-pitr-shim-"))
    subprocess.run([system_python, "-m", "venv", "--without-pip", str(shim)], check=True)
    site_packages = sysconfig.get_paths()["purelib"]
    purelib = next((shim / "lib").glob("python*/site-packages"))
    (purelib / "karen_ops_tests.pth").write_text(
        f"import site; site.addsitedir({site_packages!r})\n"
    )
    shim.chmod(0o755)
    argv = [str(shim / "bin" / "python"), "-m", "karen_ops.pitr"]
    probe = server_user.run([*argv, "wal-push", "--help"])
    if probe.returncode != 0:
        pytest.skip(f"the server user cannot run karen-ops: {probe.stderr.strip()[-300:]}")
    yield argv
    shutil.rmtree(shim, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PrivateServer:
    """One running private server; ``stop`` is always called by the fixture that made it."""

    user: ServerUser
    folder: Path
    port: int
    env: dict[str, str]
    running: bool = field(default=False)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    def conninfo(self, dbname: str = "postgres") -> ConnInfo:
        return ConnInfo(
            {"host": "127.0.0.1", "port": str(self.port), "user": "postgres", "dbname": dbname}
        )

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def execute(self, statement: str, dbname: str = "postgres", params=None):
        with psycopg.connect(**self.conninfo(dbname).psycopg_kwargs(), autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else None

    def start(self) -> None:
        completed = self.user.run(
            [
                self.user.tool("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "start",
            ],
            env={**os.environ, **self.env},
        )
        if completed.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {completed.stderr}\n{self.server_log()}")
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.user.run(
                [self.user.tool("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
            )
            self.running = False

    def server_log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def switch_and_wait(self, timeout: float = 60.0) -> str:
        """Close the current segment and wait until the archiver has pushed it."""
        import time

        name = self.execute("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.execute("SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver")
            if row[0][0] is not None and row[0][0] >= name:
                return name
            time.sleep(0.2)
        raise AssertionError(f"{name} was not archived in {timeout}s:\n{self.server_log()[-3000:]}")


def make_server(
    user: ServerUser, karen_ops: list[str], env: dict[str, str], *, archive: bool = True
) -> PrivateServer:
    folder = Path(tempfile.mkdtemp(prefix="karen-pitr-"))
    folder.chmod(0o755)
    user.give(folder)
    server = PrivateServer(user, folder, free_port(), env)
    initdb = user.run(
        [
            user.tool("initdb"),
            "-D",
            str(server.data),
            "-U",
            "postgres",
            "--auth=trust",
            f"--wal-segsize={WAL_SEGMENT_MB}",
            "--no-sync",
        ]
    )
    if initdb.returncode != 0:
        raise RuntimeError(f"initdb failed: {initdb.stderr}")
    archive_command = shlex.join([*karen_ops, "wal-push"]) + " %p"
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(server.port),
        "unix_socket_directories": f"'{folder}'",
        "wal_level": "replica",
        "archive_mode": "on" if archive else "off",
        "archive_command": "'" + archive_command.replace("'", "''") + "'",
        "max_wal_senders": "4",
        "fsync": "off",  # a test server: speed over crash safety
        "full_page_writes": "on",
    }
    with (server.data / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
    return server


@pytest.fixture
def private_server_factory(server_user: ServerUser, karen_ops_argv: list[str]) -> Iterator:
    """Start archiving servers on demand; every one is stopped and removed afterwards."""
    started: list[PrivateServer] = []

    def start(env: dict[str, str], *, archive: bool = True) -> PrivateServer:
        server = make_server(server_user, karen_ops_argv, env, archive=archive)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


def private_folder(user: ServerUser, prefix: str) -> Path:
    """A folder under /tmp that the server user owns (pytest's own are root-only)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    user.give(folder)
    return folder


@pytest.fixture
def server_folder(server_user: ServerUser) -> Iterator[Path]:
    """An empty folder the server user owns (a store root its wal-push can write), removed
    afterwards."""
    folder = private_folder(server_user, "karen-pitr-store-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def restore_folder(server_user: ServerUser) -> Iterator[Path]:
    """An empty folder the server user owns, for restored data folders; removed afterwards."""
    folder = private_folder(server_user, "karen-pitr-restore-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def unused_port() -> int:
    return free_port()
