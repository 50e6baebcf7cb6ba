"""Restoring backups into databases: new ones, refusals, and the safe replace."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from karen_ops.backups import restore, swap
from karen_ops.backups.restore import restore_backup
from karen_ops.backups.swap import _SESSIONS_OUT_OF_REACH
from karen_ops.errors import PgRestoreFailed, RestoreError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import find_tool
from karen_ops.resources.store.catalog import list_backups
from karen_ops_tests.runs import materialize_day, only_manifest
from karen_ops_tests.servers import Server, embedded_server_conninfo, exact_row_counts


def _databases(server) -> set[str]:
    return server.databases()


def _drop(server, *names):
    with psycopg.connect(**server.maintenance.psycopg_kwargs(), autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_restore_into_a_new_database_creates_it_with_every_row(
    service_server, chinook, store, yesterday
):
    materialize_day(chinook, store, yesterday, only="postgres_backup")
    manifest = only_manifest(store, chinook.dbname, yesterday)
    target = service_server.maintenance.with_dbname(chinook.dbname + "_copy")

    try:
        outcome = restore_backup(manifest, store, target)
        assert exact_row_counts(target) == manifest.inventory.row_counts
        assert not outcome.replaced
        assert (outcome.tables, outcome.rows) == (11, manifest.inventory.total_rows)
    finally:
        _drop(service_server, target.dbname)


def test_a_restore_that_lacks_rows_its_manifest_counted_is_never_put_to_use(
    server, chinook, store, yesterday
):
    materialize_day(chinook, store, yesterday, only="postgres_backup")
    manifest = only_manifest(store, chinook.dbname, yesterday)
    counts = {**manifest.inventory.row_counts, "public.artist": 1_000_000}
    claimed = replace(manifest, inventory=replace(manifest.inventory, row_counts=counts))
    target = server.maintenance.with_dbname(chinook.dbname + "_short")

    with pytest.raises(RestoreError) as new_database:
        restore_backup(claimed, store, target)
    with pytest.raises(RestoreError):
        restore_backup(claimed, store, chinook, replace=True)

    assert str(new_database.value).startswith(
        f"backup {manifest.backup_id} restored into {target.describe()} does not hold the rows "
        "its manifest counted (1 table(s) differ: public.artist: manifest 1000000, restored 275)"
    )
    assert target.dbname not in server.databases()
    assert _side_copies(server, chinook) == []
    assert exact_row_counts(chinook) == manifest.inventory.row_counts


def test_non_empty_target_is_refused_without_replace(chinook, store, yesterday):
    materialize_day(chinook, store, yesterday, only="postgres_backup")
    manifest = only_manifest(store, chinook.dbname, yesterday)
    before = exact_row_counts(chinook)

    with pytest.raises(RestoreError, match="it already holds tables; restore into a new database"):
        restore_backup(manifest, store, chinook)

    assert exact_row_counts(chinook) == before


def test_replace_takes_a_safety_backup_and_swaps_keeping_the_original(
    service_server, chinook, store, yesterday
):
    materialize_day(chinook, store, yesterday, only="postgres_backup")
    manifest = only_manifest(store, chinook.dbname, yesterday)
    with psycopg.connect(**chinook.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute("DELETE FROM playlist_track")  # the accident the restore repairs
    holder = psycopg.connect(**chinook.psycopg_kwargs())  # a session still on the old database

    outcome = restore_backup(manifest, store, chinook, replace=True)

    try:
        assert exact_row_counts(chinook) == manifest.inventory.row_counts
        previous = chinook.with_dbname(outcome.previous_database)
        assert exact_row_counts(previous)["public.playlist_track"] == 0
        pinned = [e for e in list_backups(store) if e.pinned]
        assert [e.folder for e in pinned] == [outcome.safety_backup]
        assert pinned[0].pin_label.startswith("safety backup before restore")
        assert holder.closed or holder.broken or _lost(holder)
    finally:
        _drop(service_server, outcome.previous_database)


def _lost(conn) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_failed_replace_leaves_the_original_whole_and_no_half_restore(
    service_server, embedded_server, store, yesterday
):
    if service_server.maintenance.server() == embedded_server.maintenance.server():
        pytest.skip("needs two servers: the source's role must be missing on the target")
    role = f"karen_owner_{os.urandom(3).hex()}"
    with psycopg.connect(**service_server.maintenance.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    try:
        with service_server.database() as source, embedded_server.database() as target:
            with psycopg.connect(**source.psycopg_kwargs(), autocommit=True) as conn:
                conn.execute("CREATE TABLE owned (id int)")
                conn.execute(sql.SQL("ALTER TABLE owned OWNER TO {}").format(sql.Identifier(role)))
            with psycopg.connect(**target.psycopg_kwargs(), autocommit=True) as conn:
                conn.execute("CREATE TABLE precious AS SELECT 1 AS id")
            materialize_day(source, store, yesterday, only="postgres_backup")
            manifest = only_manifest(store, source.dbname, yesterday)

            with pytest.raises(RestoreError, match="could not restore"):
                restore_backup(manifest, store, target, replace=True)

            assert exact_row_counts(target) == {"public.precious": 1}
            leftovers = [d for d in embedded_server.databases() if "_restore_" in d]
            assert leftovers == []
    finally:
        with psycopg.connect(
            **service_server.maintenance.psycopg_kwargs(), autocommit=True
        ) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _run(server, statement: str, *names: str) -> None:
    """Run a statement on the maintenance database, with ``names`` quoted into its {}."""
    with psycopg.connect(**server.maintenance.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(sql.SQL(statement).format(*map(sql.Identifier, names)))


@contextmanager
def _role(server, attributes: str, name: str | None = None) -> Iterator[str]:
    """A role, of a unique name unless given one, dropped afterwards."""
    role = name or f"karen_role_{os.urandom(3).hex()}"
    _run(server, f"CREATE ROLE {{}} {attributes}", role)
    try:
        yield role
    finally:
        _run(server, "DROP ROLE IF EXISTS {}", role)


@contextmanager
def _replace_target(server, store, day) -> Iterator[tuple[ConnInfo, str, object]]:
    """A database with a table of a new role, backed up with one row, then given a second.

    Yields the database (as the superuser), the role (which may log in and create databases)
    and the backup's manifest. Side copies a failed replace left behind are dropped with it.
    """
    with _role(server, "LOGIN CREATEDB") as role, server.database() as target:
        try:
            with psycopg.connect(**target.psycopg_kwargs(), autocommit=True) as conn:
                conn.execute("CREATE TABLE precious AS SELECT 1 AS id")
                conn.execute(
                    sql.SQL("ALTER TABLE precious OWNER TO {}").format(sql.Identifier(role))
                )
            materialize_day(target, store, day, only="postgres_backup")
            with psycopg.connect(**target.psycopg_kwargs(), autocommit=True) as conn:
                conn.execute("INSERT INTO precious VALUES (2)")
            yield target, role, only_manifest(store, target.dbname, day)
        finally:
            _drop(server, *_side_copies(server, target))


def _as_role(target: ConnInfo, role: str) -> ConnInfo:
    return ConnInfo({**target.params, "user": role})


def _allows_connections(server, name: str) -> bool:
    with psycopg.connect(**server.maintenance.psycopg_kwargs()) as conn:
        return conn.execute(
            "SELECT datallowconn FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()[0]


def _side_copies(server, target: ConnInfo) -> list[str]:
    return sorted(d for d in server.databases() if d.startswith(f"{target.dbname}_restore_"))


def test_replace_stopped_by_a_superuser_session_reopens_the_target_and_drops_the_copy(
    server, store, yesterday
):
    with _replace_target(server, store, yesterday) as (target, role, manifest):
        _run(server, "ALTER DATABASE {} OWNER TO {}", target.dbname, role)
        superuser_session = psycopg.connect(**target.psycopg_kwargs(), autocommit=True)
        superuser = superuser_session.info.user
        # A session the role could end: it is left alone too, as the swap cannot go ahead.
        own_session = psycopg.connect(**_as_role(target, role).psycopg_kwargs(), autocommit=True)
        try:
            with pytest.raises(RestoreError) as failed:
                restore_backup(manifest, store, _as_role(target, role), replace=True)

            assert _allows_connections(server, target.dbname)
            assert _side_copies(server, target) == []
            assert exact_row_counts(target) == {"public.precious": 2}
            assert superuser_session.execute("SELECT 1").fetchone() == (1,)
            assert own_session.execute("SELECT 1").fetchone() == (1,)
        finally:
            superuser_session.close()
            own_session.close()

    message = str(failed.value)
    assert message.startswith(
        f"could not end the sessions on database {target.dbname}: sessions of {superuser} "
        f"are out of {role}'s reach; "
    )
    assert message.endswith(
        f"; close them (see pg_stat_activity), or GRANT pg_signal_backend TO {role} "
        "(only a superuser can end a superuser's sessions)"
    )


def test_replace_stopped_by_another_roles_session_ends_none_of_them(server, store, yesterday):
    with (
        _replace_target(server, store, yesterday) as (target, role, manifest),
        _role(server, "LOGIN") as other,
    ):
        _run(server, "ALTER DATABASE {} OWNER TO {}", target.dbname, role)
        others_session = psycopg.connect(**_as_role(target, other).psycopg_kwargs())
        own_session = psycopg.connect(**_as_role(target, role).psycopg_kwargs(), autocommit=True)
        try:
            with pytest.raises(RestoreError) as failed:
                restore_backup(manifest, store, _as_role(target, role), replace=True)

            assert _allows_connections(server, target.dbname)
            assert _side_copies(server, target) == []
            assert others_session.execute("SELECT 1").fetchone() == (1,)
            assert own_session.execute("SELECT 1").fetchone() == (1,)
        finally:
            others_session.close()
            own_session.close()

    assert str(failed.value) == (
        f"could not end the sessions on database {target.dbname}: sessions of {other} are out "
        f"of {role}'s reach; close them (see pg_stat_activity), or GRANT pg_signal_backend TO "
        f"{role} (only a superuser can end a superuser's sessions)"
    )


@pytest.fixture(scope="module")
def eager_autovacuum_server() -> Iterator[Server]:
    """A server of its own whose autovacuum visits every database each second, so a test can
    have an autovacuum worker at work on its database within seconds, not a minute."""
    with embedded_server_conninfo("autovacuum") as maintenance:
        with psycopg.connect(**maintenance.psycopg_kwargs(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET autovacuum_naptime = 1")
            conn.execute("SELECT pg_reload_conf()")
        yield Server("autovacuum", maintenance)


def _autovacuum_at_work(server: Server, target: ConnInfo, owner: str) -> None:
    """Leave a table of dead rows that autovacuum vacuums at a crawl, and wait for its worker.

    The per-table cost limit of 1 makes the worker sleep after every page, so it stays on the
    database for minutes, far longer than the test needs it. The table is ``owner``'s, so a
    safety backup taken as ``owner`` can read it.
    """
    with psycopg.connect(**_as_role(target, owner).psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE crawl (id int) WITH (autovacuum_vacuum_threshold = 0, "
            "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_cost_delay = 100, "
            "autovacuum_vacuum_cost_limit = 1)"
        )
        conn.execute("INSERT INTO crawl SELECT generate_series(1, 100000)")
        conn.execute("DELETE FROM crawl")
    for _ in range(600):
        if _autovacuum_workers(server, target.dbname):
            return
        time.sleep(0.1)
    pytest.fail(f"no autovacuum worker came to database {target.dbname} within 60 s")


def _autovacuum_workers(server: Server, name: str) -> list[tuple]:
    """The roles of the autovacuum workers on database ``name``, as a superuser sees them."""
    with psycopg.connect(**server.maintenance.psycopg_kwargs()) as conn:
        return conn.execute(
            "SELECT usesysid FROM pg_stat_activity "
            "WHERE datname = %s AND backend_type = 'autovacuum worker'",
            (name,),
        ).fetchall()


def test_replace_stopped_by_an_autovacuum_worker_names_it_and_ends_no_session(
    eager_autovacuum_server, store, yesterday
):
    server = eager_autovacuum_server
    with _replace_target(server, store, yesterday) as (target, role, manifest):
        _run(server, "ALTER DATABASE {} OWNER TO {}", target.dbname, role)
        # Even pg_signal_backend does not reach a process that runs as no role.
        _run(server, "GRANT pg_signal_backend TO {}", role)
        _autovacuum_at_work(server, target, role)
        own_session = psycopg.connect(**_as_role(target, role).psycopg_kwargs(), autocommit=True)
        try:
            with pytest.raises(RestoreError) as type_hidden:
                restore_backup(manifest, store, _as_role(target, role), replace=True)
            # pg_read_all_stats lets the role see what kind of process holds the database.
            _run(server, "GRANT pg_read_all_stats TO {}", role)
            with pytest.raises(RestoreError) as type_shown:
                restore_backup(manifest, store, _as_role(target, role), replace=True)

            assert _autovacuum_workers(server, target.dbname) == [(None,)]  # still at work
            assert _allows_connections(server, target.dbname)
            assert _side_copies(server, target) == []
            assert own_session.execute("SELECT 1").fetchone() == (1,)
            # A superuser may end it, so the same check lets a superuser's restore go on.
            with psycopg.connect(**server.maintenance.psycopg_kwargs()) as superuser:
                assert superuser.execute(_SESSIONS_OUT_OF_REACH, (target.dbname,)).fetchall() == []
        finally:
            own_session.close()

    remedy = (
        f"out of {role}'s reach; wait for it to finish (see pg_stat_activity), or restore as a "
        "superuser (only a superuser can end a process that runs as no role)"
    )
    start = f"could not end the sessions on database {target.dbname}: "
    assert str(type_hidden.value) == (
        f"{start}an autovacuum worker or other background process is {remedy}"
    )
    assert str(type_shown.value) == f"{start}an autovacuum worker is {remedy}"


def test_replace_of_a_database_the_role_does_not_own_reopens_it_and_drops_the_copy(
    server, store, yesterday
):
    with _replace_target(server, store, yesterday) as (target, role, manifest):
        with pytest.raises(RestoreError) as failed:
            restore_backup(manifest, store, _as_role(target, role), replace=True)

        assert _allows_connections(server, target.dbname)
        assert _side_copies(server, target) == []
        assert exact_row_counts(target) == {"public.precious": 2}

    assert str(failed.value) == (
        f"could not close database {target.dbname} to new sessions for the swap: must be "
        f"owner of database {target.dbname}; restore as its owner, or make {role} the owner "
        f"(ALTER DATABASE {target.dbname} OWNER TO {role})"
    )


def test_replace_whose_reopening_fails_after_the_swap_says_the_swap_is_done(
    server, store, yesterday, monkeypatch
):
    with _replace_target(server, store, yesterday) as (target, role, manifest):
        _run(server, "ALTER DATABASE {} OWNER TO {}", target.dbname, role)
        superuser = server.maintenance.params["user"]
        rename_both = swap._rename_both

        def swap_then_lose_ownership(conn, *renames):
            # Nothing in PostgreSQL makes only the reopening fail, so the restored copy is
            # given away the moment the swap commits; the real ALTER DATABASE then refuses it.
            rename_both(conn, *renames)
            _run(server, "ALTER DATABASE {} OWNER TO {}", target.dbname, superuser)

        monkeypatch.setattr(swap, "_rename_both", swap_then_lose_ownership)
        try:
            with pytest.raises(RestoreError) as failed:
                restore_backup(manifest, store, _as_role(target, role), replace=True)

            [previous] = _previous_copies(server, target)
            assert _allows_connections(server, previous)
            assert not _allows_connections(server, target.dbname)
            _run(server, "ALTER DATABASE {} ALLOW_CONNECTIONS true", target.dbname)
            assert exact_row_counts(target) == {"public.precious": 1}
            assert exact_row_counts(target.with_dbname(previous)) == {"public.precious": 2}
            [safety] = [e for e in list_backups(store) if e.pinned]
        finally:
            _drop(server, *_previous_copies(server, target))

    assert str(failed.value) == (
        f"the restored copy was swapped in, but database {target.dbname} still refuses new "
        f"sessions: must be owner of database {target.dbname}; as its owner, run ALTER DATABASE "
        f"{target.dbname} ALLOW_CONNECTIONS true. The swap is done: {target.dbname} holds the "
        f"restored backup, the previous database is kept as {previous}, and the safety backup "
        f"{safety.backup_id} is pinned"
    )


def _previous_copies(server, target: ConnInfo) -> list[str]:
    return sorted(d for d in server.databases() if d.startswith(f"{target.dbname}_previous_"))


def test_failed_restore_into_a_new_database_drops_it_so_the_retry_starts_clean(
    server, store, yesterday
):
    with _replace_target(server, store, yesterday) as (_, role, manifest):
        pass
    # The role is gone now, as on a server that never had it, so restoring its table fails.
    target = server.maintenance.with_dbname(f"karen_new_{os.urandom(3).hex()}")

    try:
        with pytest.raises(RestoreError) as failed:
            restore_backup(manifest, store, target)
        assert target.dbname not in server.databases()

        with _role(server, "NOLOGIN", name=role):
            restore_backup(manifest, store, target)
            assert exact_row_counts(target) == {"public.precious": 1}
            _drop(server, target.dbname)  # before its tables' owner goes
    finally:
        _drop(server, target.dbname)

    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith(f"could not restore backup {manifest.backup_id} into ")
    assert f'error: could not execute query: ERROR: role "{role}" does not exist' in message
    assert "Command was" not in message


def _pg_restore_killed_by_sigkill(folder: Path, real_pg_restore: Path) -> str:
    """A bin folder whose pg_restore reports the real version, starts, quotes a statement
    holding a password, and dies as if the out-of-memory killer took it."""
    script = folder / "pg_restore"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = --version ]; then exec "{real_pg_restore}" --version; fi\n'
        "echo 'pg_restore: creating TABLE \"public.precious\"' >&2\n"
        'echo "Command was: CREATE USER MAPPING FOR app SERVER remote OPTIONS (" >&2\n'
        "echo \"    password 'hunter2');\" >&2\n"
        "kill -KILL $$\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(folder)


def test_pg_restore_killed_without_a_word_is_named_by_its_signal_and_last_line(
    server, store, yesterday, tmp_path
):
    real = find_tool("pg_restore", server.major).path
    bin_dir = _pg_restore_killed_by_sigkill(tmp_path, real)
    target = server.maintenance.with_dbname(f"karen_new_{os.urandom(3).hex()}")

    with _replace_target(server, store, yesterday) as (_, _role_name, manifest):
        try:
            with pytest.raises(RestoreError) as failed:
                restore_backup(manifest, store, target, bin_dir=bin_dir)
            assert target.dbname not in server.databases()
        finally:
            _drop(server, target.dbname)

    assert str(failed.value) == (
        f"could not restore backup {manifest.backup_id} into {target.describe()}: pg_restore "
        "was killed by signal 9 (SIGKILL) without reporting an error; its last output: "
        'pg_restore: creating TABLE "public.precious"; look in the system log for the cause '
        "(an out-of-memory kill is logged there) and run the restore again"
    )


def test_restore_command_refuses_and_lists(chinook, store, yesterday, tmp_path):
    materialize_day(chinook, store, yesterday)
    env = {**os.environ, "KAREN_BACKUP_URL": store.url, "KAREN_DATABASE_URL": chinook.public_dsn()}
    karen_ops = str(Path(sys.executable).parent / "karen-ops")

    listing = subprocess.run(
        [karen_ops, "backups"], env=env, capture_output=True, text=True, check=False
    )
    refused = subprocess.run(
        [karen_ops, "restore", "--target", chinook.public_dsn()],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert listing.returncode == 0, listing.stderr
    row = listing.stdout.splitlines()[1].split()
    assert row[:2] == ["postgres", chinook.dbname]
    assert "yes" in row  # verified by the nightly run
    assert refused.returncode == 1
    assert "it already holds tables" in refused.stderr


def test_labelled_backup_is_verified_pinned_and_unpinned(chinook, store):
    env = {**os.environ, "KAREN_BACKUP_URL": store.url, "KAREN_DATABASE_URL": chinook.public_dsn()}
    karen_ops = str(Path(sys.executable).parent / "karen-ops")

    taken = subprocess.run(
        [karen_ops, "backup", "--label", "pre-deploy"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert taken.returncode == 0, taken.stderr
    [entry] = list_backups(store)
    assert (entry.verified, entry.pin_label) == (True, "pre-deploy")
    assert f"backup {entry.backup_id} verified and pinned as 'pre-deploy'" in taken.stdout

    unpinned = subprocess.run(
        [karen_ops, "unpin", entry.backup_id], env=env, capture_output=True, text=True, check=False
    )

    assert unpinned.returncode == 0, unpinned.stderr
    assert not list_backups(store)[0].pinned


def test_a_failed_restore_never_quotes_a_statement_whose_start_was_cut_off():
    # The output's kept tail: here, the end of a quoted statement holding a password.
    output = "    PERFORM dblink_connect('host=db.internal password=Hunter2-secret');\nEND;\n"
    failed = PgRestoreFailed("pg_restore failed", returncode=1, output=output)

    message = restore._pg_restore_errors(failed)

    assert "Hunter2-secret" not in message
    assert message.startswith("pg_restore exited with status 1 without reporting an error; look")
