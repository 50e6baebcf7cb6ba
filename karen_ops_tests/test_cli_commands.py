"""The karen-ops command line: the UI's port and its instance's daemon, --home for every
command, listings, unpin, restore progress and the archiving commands' usage."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psutil
import pytest
from dagster._daemon.types import DaemonHeartbeat

from karen_ops import cli
from karen_ops.alerting.resource import DEFAULT_UI_URL
from karen_ops.backups import commands as backup_commands
from karen_ops.resources.store.catalog import list_backups, mark_verified, pin
from karen_ops.resources.store.file import FileStore
from karen_ops_tests.doctor_fixtures import clean_environment

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
CREATED = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


@pytest.fixture
def listening_socket() -> Iterator[int]:
    """A real server socket on a free local port, as another program's UI would hold it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _add_backup(
    store: FileStore, backup_id: str, *, name: str = "karen", label: str | None = None
) -> None:
    """A catalog entry as the nightly backup leaves it, without its archive; listed in the
    order added."""
    folder = f"postgres/{name}/2026-12-04/{backup_id}/"
    created = CREATED + timedelta(minutes=len(list_backups(store)))
    manifest = {
        "kind": "postgres",
        "database": name,
        "backup_id": backup_id,
        "created_at": created.isoformat(),
        "size_bytes": 123_456,
    }
    store.put_bytes(folder + "manifest.json", json.dumps(manifest).encode())
    if label is not None:
        pin(store, folder, label, CREATED)


def test_ui_listens_on_3030_by_default_leaving_3000_to_the_frontend():
    args = cli._parser().parse_args(["ui"])

    assert args.port == cli.UI_PORT == 3030
    assert DEFAULT_UI_URL == "http://127.0.0.1:3030"


def test_ui_refuses_a_port_outside_the_tcp_range(capsys):
    with pytest.raises(SystemExit) as exited:
        cli._parser().parse_args(["ui", "--port", "70000"])

    assert exited.value.code == 2
    assert "'70000' is not a TCP port (1 to 65535)" in capsys.readouterr().err


def test_ui_on_a_taken_port_says_so_and_starts_nothing(tmp_path, listening_socket):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAREN_", "DAGSTER_"))}

    completed = subprocess.run(
        [str(BIN / "karen-ops"), "--home", str(home), "ui", "--port", str(listening_socket)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 1
    assert completed.stdout == ""
    assert completed.stderr.strip() == (
        f"karen-ops: port {listening_socket} on 127.0.0.1 is already in use, so the Dagster UI "
        "cannot listen there; stop what holds it or choose another port with --port PORT"
    )
    # Refused before anything started: no embedded server, no instance, no dagster dev.
    assert not home.exists()


def test_the_port_check_passes_a_free_port(listening_socket):
    with pytest.raises(Exception, match="already in use"):
        cli._check_port_free("127.0.0.1", listening_socket)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]

    cli._check_port_free("127.0.0.1", free)


def _instance_with_a_heartbeat(home: Path, seconds_ago: float) -> Path:
    """The demo's instance folder under ``home``, as `karen-ops ui` leaves it, where a scheduler
    daemon last reported ``seconds_ago``."""
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    heartbeat = DaemonHeartbeat(time.time() - seconds_ago, "SCHEDULER", "the-other-daemon")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.add_daemon_heartbeat(heartbeat)
    return dagster_home


def test_ui_on_an_instance_whose_daemon_reports_says_so_and_starts_nothing(
    tmp_path, monkeypatch, capsys
):
    home = tmp_path / "home"
    dagster_home = _instance_with_a_heartbeat(home, seconds_ago=5)
    clean_environment(monkeypatch, home)
    monkeypatch.chdir(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    children = psutil.Process().children(recursive=True)

    status = cli.main(["--home", str(home), "ui", "--port", str(port)])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == ""
    age, wait = (int(seconds) for seconds in re.findall(r"(\d+) seconds", captured.err))
    assert captured.err.strip() == (
        f"karen-ops: a Dagster daemon already runs for the instance in {dagster_home} (last "
        f"heartbeat {age} seconds ago), so a second one would launch every scheduled run twice; "
        "open the UI that serves it or stop it first (if it has stopped, try again in "
        f"{wait} seconds)"
    )
    assert 5 <= age < 60
    assert age + wait == 60  # two of Dagster's 30-second heartbeat intervals
    # Refused before anything started: no embedded server, no dagster dev, the port still free.
    assert psutil.Process().children(recursive=True) == children
    assert not (home / "pgdata").exists()
    cli._check_port_free("127.0.0.1", port)


def test_a_daemon_silent_for_two_heartbeat_intervals_leaves_the_ui_free_to_start(
    tmp_path, monkeypatch, capsys, listening_socket
):
    home = tmp_path / "home"
    _instance_with_a_heartbeat(home, seconds_ago=61)
    clean_environment(monkeypatch, home)
    monkeypatch.chdir(tmp_path)

    # On a taken port: past the daemon check, the port check still stops it before anything starts.
    status = cli.main(["--home", str(home), "ui", "--port", str(listening_socket)])

    assert status == 1
    assert capsys.readouterr().err.startswith(f"karen-ops: port {listening_socket} on 127.0.0.1 ")


def test_an_instance_no_daemon_ever_ran_on_leaves_the_ui_free_to_start(tmp_path):
    cli._check_no_daemon(tmp_path / "home" / "dagster")  # not created yet
    (tmp_path / "home" / "dagster").mkdir(parents=True)

    cli._check_no_daemon(tmp_path / "home" / "dagster")


def test_home_option_reaches_backups(tmp_path, monkeypatch, capsys):
    clean_environment(monkeypatch, tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    _add_backup(FileStore(home / "backups"), "20261204T150000Z-aaaa")

    status = cli.main(["--home", str(home), "backups"])

    out = capsys.readouterr().out
    assert status == 0
    assert "20261204T150000Z-aaaa" in out


def test_backups_of_a_store_that_does_not_exist_names_it(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "no-such-store"
    clean_environment(monkeypatch, tmp_path / "home", KAREN_BACKUP_URL=missing.as_uri())

    status = cli.main(["backups"])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == ""
    assert captured.err.strip() == (
        f"karen-ops: the backup store {missing.as_uri()} does not exist, so it holds no "
        "backups; check KAREN_BACKUP_URL (or --home, whose backups folder is the default store)"
    )


def test_backups_of_an_empty_store_says_it_holds_none(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store"
    store.mkdir()
    clean_environment(monkeypatch, tmp_path / "home", KAREN_BACKUP_URL=store.as_uri())
    _add_backup(FileStore(store), "20261204T150000Z-aaaa")

    everything = cli.main(["backups"])
    everything_out = capsys.readouterr().out
    logs = cli.main(["backups", "--kind", "logs"])

    assert everything == logs == 0
    assert "20261204T150000Z-aaaa" in everything_out
    assert (
        capsys.readouterr().out.strip()
        == f"the backup store {store.as_uri()} holds no logs backups"
    )


def test_backups_refuses_an_unknown_kind(tmp_path, monkeypatch, capsys):
    clean_environment(monkeypatch, tmp_path / "home")

    with pytest.raises(SystemExit) as exited:
        cli.main(["backups", "--kind", "bogus"])

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --kind: invalid choice: 'bogus'" in err
    assert "'postgres', 'base', 'config', 'application', 'logs'" in err


def test_backups_columns_line_up_whatever_the_pin_label(tmp_path, monkeypatch, capsys):
    store = FileStore(tmp_path / "store")
    clean_environment(monkeypatch, tmp_path / "home", KAREN_BACKUP_URL=store.url)
    label = "kept before the 2026-12 schema migration of the conversations table"
    _add_backup(store, "20261204T150000Z-aaaa", label=label)
    _add_backup(store, "20261204T150000Z-bbbb", name="karen_with_a_long_database_name")
    _add_backup(store, "20261204T150000Z-cccc", label="pre-deploy")

    assert cli.main(["backups"]) == 0

    header, *rows = capsys.readouterr().out.splitlines()
    assert header == (
        "kind      name                             created (UTC)        size  verified  pinned"
        "                    id"
    )
    assert len(rows) == 3
    ids, pinned, size_end = header.index("id"), header.index("pinned"), header.index("size") + 4
    assert [row.index("20261204T150000Z-") for row in rows] == [ids] * 3
    assert [row.index("123,456") + len("123,456") for row in rows] == [size_end] * 3
    # The long label is cut to 24 characters; the others keep their place.
    assert rows[0][pinned:ids].rstrip() == "kept before the 2026-12\u2026"
    assert rows[1][pinned:ids].strip() == ""
    assert rows[2][pinned:ids].rstrip() == "pre-deploy"


def test_unpin_says_when_a_backup_was_not_pinned(tmp_path, monkeypatch, capsys):
    store = FileStore(tmp_path / "store")
    clean_environment(monkeypatch, tmp_path / "home", KAREN_BACKUP_URL=store.url)
    _add_backup(store, "20261204T150000Z-aaaa", label="pre-deploy")

    first = cli.main(["unpin", "20261204T150000Z-aaaa"])
    first_out = capsys.readouterr().out
    second = cli.main(["unpin", "20261204T150000Z-aaaa"])

    assert first == second == 0
    assert first_out.strip() == (
        "backup 20261204T150000Z-aaaa unpinned; retention decides its fate again"
    )
    assert capsys.readouterr().out.strip() == (
        "backup 20261204T150000Z-aaaa was not pinned; nothing changed"
    )
    assert not list_backups(store)[0].pinned


DAMAGED_ID = "20261205T150000Z-bbbb"


def _verified_backup_and_a_newer_damaged_one(store: FileStore) -> str:
    """A verified backup of database karen, then a newer one whose manifest was cut short;
    the damaged manifest's location."""
    _add_backup(store, "20261204T150000Z-aaaa")
    mark_verified(store, list_backups(store)[0].folder, {"verified_at": CREATED.isoformat()})
    damaged = f"postgres/karen/2026-12-05/{DAMAGED_ID}/manifest.json"
    store.put_bytes(damaged, b'{"kind": "postgres", "database": "kar')
    return store.location(damaged)


def test_restore_of_the_newest_backup_refuses_when_a_manifest_of_its_database_is_damaged(
    service_server, tmp_path, monkeypatch, capsys
):
    store = FileStore(tmp_path / "store")
    damaged = _verified_backup_and_a_newer_damaged_one(store)
    clean_environment(
        monkeypatch,
        tmp_path / "home",
        KAREN_BACKUP_URL=store.url,
        KAREN_DATABASE_URL=service_server.url("karen"),
    )
    target = f"karen_restored_{os.urandom(3).hex()}"

    status = cli.main(["restore", "--target", service_server.url(target), "--replace"])

    err = capsys.readouterr().err.strip()
    assert status == 1
    assert target not in service_server.databases()
    assert err.startswith(
        f"karen-ops: could not choose the newest verified backup of database karen: manifest "
        f"{damaged} is unreadable ("
    )
    assert err.endswith(
        "); move the folder aside or delete it; or pass --backup ID to restore a chosen backup"
    )


@pytest.mark.parametrize(
    "argv",
    [["unpin", DAMAGED_ID], ["restore", "--backup", DAMAGED_ID, "--target"]],
    ids=["unpin", "restore"],
)
def test_a_backup_id_whose_manifest_is_damaged_is_named_as_damaged(
    argv, service_server, tmp_path, monkeypatch, capsys
):
    store = FileStore(tmp_path / "store")
    damaged = _verified_backup_and_a_newer_damaged_one(store)
    clean_environment(monkeypatch, tmp_path / "home", KAREN_BACKUP_URL=store.url)
    target = [service_server.url("karen_never_restored")] if argv[0] == "restore" else []

    status = cli.main([*argv, *target])

    err = capsys.readouterr().err.strip()
    assert status == 1
    assert err.startswith(f"karen-ops: cannot use backup {DAMAGED_ID}: manifest {damaged} is ")
    assert err.endswith("); move the folder aside or delete it")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_restore_progress_piped_is_a_line_every_few_seconds_then_the_total():
    out, clock = io.StringIO(), _Clock()
    progress = backup_commands._Progress(out, clock)

    for second in range(12):
        clock.now = float(second)
        progress("pg_restore: processing data for table public.messages")
        progress("pg_restore: executing SEQUENCE SET messages_id_seq")  # not counted
    progress.finish()

    assert "\r" not in out.getvalue()
    assert out.getvalue().splitlines() == [
        "  6 objects restored",  # 5 seconds after the start
        "  11 objects restored",  # 5 seconds after that
        "  12 objects restored",  # the total
    ]


def test_restore_progress_on_a_terminal_rewrites_one_line():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    progress = backup_commands._Progress(out)

    for _ in range(3):
        progress("pg_restore: creating TABLE public.users")
    progress.finish()

    assert out.getvalue() == (
        "\r  1 objects restored\r  2 objects restored\r  3 objects restored\n"
    )


@pytest.mark.parametrize("command", ["wal-push", "wal-fetch"])
def test_archiving_commands_show_the_command_users_type(command, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: karen-ops {command} ")
