"""The doctor's archiving report against servers with and without archiving."""

from __future__ import annotations

import psycopg

from karen_ops.pitr.doctor import archiving_report, format_report, settings_to_add

pytest_plugins = ["karen_ops_tests.pitr_fixtures"]


def test_archiving_server_passes_and_a_plain_one_gets_the_settings_to_add(
    private_server_factory, server_folder
) -> None:
    env = {"KAREN_BACKUP_URL": server_folder.as_uri()}
    archiving = private_server_factory(env)
    with psycopg.connect(**archiving.conninfo().psycopg_kwargs()) as conn:
        items = archiving_report(conn)
    assert all(item.ok for item in items), format_report(items)

    plain = private_server_factory(env, archive=False)
    with psycopg.connect(**plain.conninfo().psycopg_kwargs()) as conn:
        items = archiving_report(conn)
    # With archive_mode off the server shows archive_command as "(disabled)".
    assert [i.setting for i in items if not i.ok] == ["archive_mode", "archive_command"]
    assert settings_to_add(items) == [
        "ALTER SYSTEM SET archive_mode = 'on';  -- needs a restart",
        "ALTER SYSTEM SET archive_command = 'karen-ops wal-push %p'; SELECT pg_reload_conf();",
    ]
    assert "MISSING  archive_mode         off  (needs on)" in format_report(items)
