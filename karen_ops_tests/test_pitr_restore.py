"""karen-ops pitr-restore: base backup plus WAL into a new data folder, to a moment between two
writes, started and checked; and the guard rails around the folder and the target."""

from __future__ import annotations

import logging
import shlex
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from karen_ops.cli import main as cli_main
from karen_ops.pitr.basebackup import BaseBackupRequest, take_base_backup
from karen_ops.resources.store.file import FileStore

pytest_plugins = ["karen_ops_tests.pitr_fixtures"]
log = logging.getLogger(__name__)


@pytest.mark.parametrize("server_user", ["15", "16"], indirect=True)
def test_pitr_restore_to_a_moment_between_two_writes_holds_exactly_the_rows_before_it(
    server_folder: Path,
    private_server_factory,
    server_user,
    karen_ops_argv,
    restore_folder: Path,
    unused_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    env = {"KAREN_BACKUP_URL": server_folder.as_uri(), "KAREN_PITR_CLUSTER": "karen-test"}
    for name, value in {**env, "KAREN_PITR_COMMAND": shlex.join(karen_ops_argv)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KAREN_PG_BIN_DIR", str(server_user.bin_dir))
    monkeypatch.delenv("KAREN_BACKUP_ENCRYPTION_KEY", raising=False)
    server = private_server_factory(env)
    server.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    server.execute("INSERT INTO notes VALUES (1, 'before the base backup')")
    store = FileStore(server_folder)
    base = take_base_backup(
        BaseBackupRequest(server.conninfo(), store, "karen-test", bin_dir=str(server_user.bin_dir)),
        log,
    )
    server.execute("INSERT INTO notes VALUES (2, 'first write')")
    time.sleep(0.3)
    moment = server.execute("SELECT clock_timestamp()")[0][0]
    time.sleep(0.3)
    server.execute("INSERT INTO notes VALUES (3, 'second write')")
    server.switch_and_wait()

    work, port = restore_folder, unused_port
    target = work / "restored"
    argv = ["pitr-restore", "--to-time", moment.isoformat(), "--target-dir", str(target)]
    try:
        code = cli_main([*argv, "--start", "--port", str(port), "--os-user", server_user.name])
        out = capsys.readouterr().out
        assert code == 0, out
        assert f"restored base backup {base.backup_id} (taken {base.created_at}" in out
        assert f"with WAL from {base.start_wal_file} to at most " in out
        assert f"recovered server running on port {port}, paused at WAL position" in out
        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            rows = conn.execute("SELECT id, body FROM notes ORDER BY id").fetchall()
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        assert rows == [(1, "before the base backup"), (2, "first write")]

        # The folder now holds a running server: refused without --replace, and with it.
        assert cli_main(argv) == 1
        assert (
            f"refusing to restore into {target}: the folder is not empty; choose a new "
            "--target-dir, or pass --replace" in capsys.readouterr().err
        )
        assert cli_main([*argv, "--replace"]) == 1
        assert "postmaster.pid says a server may be running" in capsys.readouterr().err
    finally:
        server_user.run([server_user.tool("pg_ctl"), "-D", str(target), "-m", "fast", "stop"])

    # Stopped, it is moved aside (never deleted) and a fresh copy restored in its place.
    assert cli_main([*argv, "--replace", "--action", "promote"]) == 0
    out = capsys.readouterr().out
    aside = next(work.glob("restored.before-restore-*"))
    assert f"the previous folder is kept as {aside}" in out
    assert (aside / "PG_VERSION").exists() and (target / "recovery.signal").exists()
    auto = (target / "postgresql.auto.conf").read_text()
    assert "recovery_target_action = 'promote'" in auto
    assert "archive_mode = 'off'" in auto
    assert f"restore_command = '{shlex.join([*karen_ops_argv, 'wal-fetch'])} %f %p'" in auto

    # Targets the archive cannot reach are refused before anything is touched.
    early = (datetime.fromisoformat(base.created_at) - timedelta(minutes=5)).isoformat()
    assert cli_main(["pitr-restore", "--to-time", early, "--target-dir", str(work / "a")]) == 1
    assert "it is before the oldest base backup" in capsys.readouterr().err
    late = (moment + timedelta(hours=1)).isoformat()
    assert cli_main(["pitr-restore", "--to-time", late, "--target-dir", str(work / "b")]) == 1
    assert "it is after the newest archived WAL" in capsys.readouterr().err
    assert not (work / "a").exists() and not (work / "b").exists()
