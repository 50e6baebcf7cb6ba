"""Bad input and damaged state: clear errors, nothing lost, nothing misfiled."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from karen_ops.backups.manifest import list_manifests
from karen_ops.backups.scratch import MARK, drop_abandoned_scratch_databases
from karen_ops.errors import ConfigurationError, SettingsFileError, ToolNotFoundError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import find_tool
from karen_ops.resources.postgres import connect
from karen_ops.resources.store.resource import open_store
from karen_ops.settings import load_fleet, load_schedule_settings
from karen_ops_tests.conftest import check_evaluations
from karen_ops_tests.runs import failure_message, materialize_day, only_manifest


def _admin(server):
    return psycopg.connect(**server.maintenance.psycopg_kwargs(), autocommit=True)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://karen:S3cr%zzt@127.0.0.1/karen",
        "postgresql://karen:TopSecret@[::1",
        "password=Sp4ce Secret dbname=karen",
    ],
)
def test_malformed_urls_never_echo_the_password(url):
    with pytest.raises(ConfigurationError) as raised:
        ConnInfo.parse(url, setting="KAREN_DATABASE_URL")

    message = str(raised.value)
    assert message.startswith("KAREN_DATABASE_URL is not a valid libpq connection string")
    assert not any(secret in message for secret in ("S3cr", "TopSecret", "Sp4ce", "Secret"))


def test_url_without_a_database_is_refused_rather_than_misfiled():
    with pytest.raises(ConfigurationError, match="names no database; add it"):
        ConnInfo.parse("postgresql://postgres@127.0.0.1:5432", setting="KAREN_DATABASE_URL")


def test_url_parameters_override_the_connection_defaults(service_server):
    url = service_server.url("postgres") + " application_name=nightly connect_timeout=3"
    info = ConnInfo.parse(url, setting="KAREN_DATABASE_URL")

    with connect(info, setting="KAREN_DATABASE_URL") as conn:
        name = conn.execute("SELECT current_setting('application_name')").fetchone()[0]

    assert name == "nightly"


def test_inheritance_children_are_not_counted_twice(service_server, store, yesterday):
    with service_server.database() as db:
        with psycopg.connect(**db.psycopg_kwargs(), autocommit=True) as conn:
            conn.execute("CREATE TABLE parent (id int)")
            conn.execute("CREATE TABLE child () INHERITS (parent)")
            conn.execute("INSERT INTO parent VALUES (1)")
            conn.execute("INSERT INTO child VALUES (2), (3)")

        result = materialize_day(db, store, yesterday)

        counts = only_manifest(store, db.dbname, yesterday).inventory.row_counts
    assert result.success
    assert counts == {"public.child": 2, "public.parent": 1}


@pytest.fixture
def limited_role(service_server):
    role, password = f"karen_limited_{secrets.token_hex(3)}", secrets.token_hex(8)
    with _admin(service_server) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
    yield role, password
    with _admin(service_server) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_unreadable_table_is_named_with_the_grant_that_fixes_it(
    service_server, limited_role, store, yesterday
):
    role, password = limited_role
    with service_server.database() as db:
        with psycopg.connect(**db.psycopg_kwargs(), autocommit=True) as conn:
            conn.execute("CREATE SCHEMA secret")
            conn.execute("CREATE TABLE secret.keys (k text)")
            conn.execute("CREATE TABLE public.open (id int)")
            conn.execute(sql.SQL("GRANT SELECT ON public.open TO {}").format(sql.Identifier(role)))
        as_role = ConnInfo({**db.params, "user": role, "password": password})

        result = materialize_day(as_role, store, yesterday, only="postgres_backup")

    message = failure_message(result)
    assert "permission denied for 1 table(s): secret.keys" in message
    assert f"GRANT pg_read_all_data TO {role}" in message


def test_role_that_cannot_create_databases_fails_the_restore_check_with_the_fix(
    service_server, limited_role, store, yesterday
):
    role, password = limited_role
    with service_server.database() as db:
        with psycopg.connect(**db.psycopg_kwargs(), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int)")
            conn.execute(sql.SQL("GRANT SELECT ON t TO {}").format(sql.Identifier(role)))
        as_role = ConnInfo({**db.params, "user": role, "password": password})

        result = materialize_day(as_role, store, yesterday)

    restore = check_evaluations(result)["restore_succeeded"]
    assert not restore.passed
    assert "grant CREATEDB to the role, or set KAREN_VERIFY_DATABASE_URL" in restore.description


def test_damaged_or_foreign_manifests_do_not_hide_a_good_backup(chinook, store, yesterday):
    materialize_day(chinook, store, yesterday, only="postgres_backup")
    good = only_manifest(store, chinook.dbname, yesterday)
    prefix = f"postgres/{chinook.dbname}/{yesterday}/"
    store.put_bytes(prefix + "20260101T000000Z-dead/manifest.json", b"{")
    store.put_bytes(prefix + "20260101T000000Z-f00d/manifest.json", json.dumps({"x": 1}).encode())
    nested = json.loads(good.to_json())
    nested["database"] = f"{chinook.dbname}/{yesterday}"
    store.put_bytes(prefix + f"{yesterday}/x/manifest.json", json.dumps(nested).encode())

    assert [m.backup_id for m in list_manifests(store, chinook.dbname, yesterday)] == [
        good.backup_id
    ]
    result = materialize_day(chinook, store, yesterday, only="backup_verification")
    assert result.success


def test_missing_archive_fails_the_checksum_check_and_says_so(chinook, store, yesterday):
    materialize_day(chinook, store, yesterday, only="postgres_backup")
    manifest = only_manifest(store, chinook.dbname, yesterday)
    store.path(manifest.archive_key).unlink()

    result = materialize_day(chinook, store, yesterday, only="backup_verification")

    checksum = check_evaluations(result)["checksum_matches"]
    assert not checksum.passed
    assert "the archive could not be read: could not read file://" in checksum.description


def test_abandoned_scratch_databases_are_dropped_and_live_ones_kept(service_server):
    old = (datetime.now(UTC) - timedelta(hours=7)).isoformat()
    names = {kind: f"karen_verify_{kind}_{secrets.token_hex(3)}" for kind in ("old", "new", "busy")}
    with _admin(service_server) as conn:
        for kind, name in names.items():
            created = old if kind != "new" else datetime.now(UTC).isoformat()
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(name), sql.Literal(f"{MARK} of backup x at {created}")
                )
            )
        busy = psycopg.connect(
            **service_server.maintenance.with_dbname(names["busy"]).psycopg_kwargs()
        )

        dropped = drop_abandoned_scratch_databases(conn, datetime.now(UTC) - timedelta(hours=6))

        busy.close()
        for name in (names["new"], names["busy"]):
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    assert dropped == [names["old"]]


def test_relative_or_hostful_file_urls_are_refused():
    for url in ("file:relative/store", "file:", "file://otherhost/path"):
        with pytest.raises(ConfigurationError, match="file:///absolute/path"):
            open_store(url)


def test_configured_bin_dir_without_the_tool_is_an_error(tmp_path):
    with pytest.raises(ToolNotFoundError, match=f"KAREN_PG_BIN_DIR={tmp_path} holds no pg_dump"):
        find_tool("pg_dump", 15, bin_dir=str(tmp_path))


def test_unknown_timezone_in_the_settings_file_is_named(tmp_path, monkeypatch):
    config = tmp_path / "karen-ops.yaml"
    config.write_text("schedules:\n  timezone: Mars/Olympus\n")
    monkeypatch.setenv("KAREN_OPS_CONFIG", str(config))

    with pytest.raises(ConfigurationError, match="unknown timezone 'Mars/Olympus'"):
        load_schedule_settings()


def _settings_file(tmp_path, monkeypatch, text: str):
    config = tmp_path / "karen-ops.yaml"
    config.write_text(text)
    monkeypatch.setenv("KAREN_OPS_CONFIG", str(config))
    return config


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("timezone: 5", "schedules.timezone in {config} must be a timezone name, not a number; "
         "use an IANA name such as Europe/Berlin or UTC"),
        ('backups_start_date: "garbage"', "schedules.backups_start_date in {config} is "
         "'garbage', not a date of the form YYYY-MM-DD; write the first day to back up, like "
         "backups_start_date: 2026-11-01"),
        ("backups_start_date: 2026-11-01 02:00:00", "schedules.backups_start_date in {config} "
         "holds a time of day as well as a date; write the first day to back up, like "
         "backups_start_date: 2026-11-01"),
        ("nightly_backup_cron: 5", "schedules.nightly_backup_cron in {config} must be a cron "
         'expression of five fields, not a number; quote it, like nightly_backup_cron: '
         '"0 2 * * *"'),
        ('weekly_maintenance_cron: "61 2 * * *"', "schedules.weekly_maintenance_cron in "
         "{config} must be a cron expression of five fields, not '61 2 * * *'; quote it, like "
         'weekly_maintenance_cron: "0 3 * * 0"'),
    ],
)  # fmt: skip
def test_malformed_schedule_setting_is_named_with_its_file_and_fix(
    tmp_path, monkeypatch, setting, expected
):
    config = _settings_file(tmp_path, monkeypatch, f"schedules:\n  {setting}\n")

    with pytest.raises(ConfigurationError) as raised:
        load_schedule_settings()

    assert str(raised.value) == expected.format(config=config)


def test_unquoted_start_date_is_read_as_the_day_it_names(tmp_path, monkeypatch):
    _settings_file(tmp_path, monkeypatch, "schedules:\n  backups_start_date: 2026-10-15\n")

    assert load_schedule_settings().backups_start_date == "2026-10-15"


def test_yaml_syntax_error_names_line_and_column_but_never_quotes_the_line(tmp_path, monkeypatch):
    config = _settings_file(
        tmp_path, monkeypatch, "schedules:\n  timezone: UTC\ndb: postgres://a:Xy9pQ@h/k: x\n"
    )

    with pytest.raises(SettingsFileError) as raised:
        load_schedule_settings()

    message = str(raised.value)
    assert message.startswith(
        f"settings file {config} is not valid YAML at line 3, column 27: mapping values are not "
        "allowed here; fix that line"
    )
    assert "Xy9pQ" not in message and "postgres" not in message
    # Dagster shows a chained exception beside the error; PyYAML's would quote the line.
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_password_read_as_a_yaml_alias_is_not_quoted(tmp_path, monkeypatch):
    _settings_file(tmp_path, monkeypatch, "schedules:\n  timezone: *Xy9pQ\n")

    with pytest.raises(SettingsFileError) as raised:
        load_schedule_settings()

    assert "at line 2, column 13: found undefined alias (text not shown)" in str(raised.value)
    assert "Xy9pQ" not in str(raised.value)


def test_password_read_as_a_repeated_yaml_anchor_is_not_quoted(tmp_path, monkeypatch):
    text = "schedules:\n  timezone: &Xy9pQ UTC\n  nightly_backup_cron: &Xy9pQ '0 2 * * *'\n"
    _settings_file(tmp_path, monkeypatch, text)

    with pytest.raises(SettingsFileError) as raised:
        load_schedule_settings()

    assert "Xy9pQ" not in str(raised.value)
    assert "(found duplicate anchor (text not shown); first occurrence from line 2)" in str(
        raised.value
    )


@pytest.mark.parametrize(
    ("setting", "shown"),
    [
        ("timezone: Europe/Berln", "names an unknown timezone 'Europe/Berln'"),
        ("timezone: postgresql://ops:Xy9pQ@db/karen", "names an unknown timezone a string"),
        ("nightly_backup_cron: 'https://hooks.example/Xy9pQ'", "not a string"),
    ],
)
def test_a_bad_schedule_value_is_quoted_only_when_it_cannot_be_a_secret(
    tmp_path, monkeypatch, setting, shown
):
    _settings_file(tmp_path, monkeypatch, f"schedules:\n  {setting}\n")

    with pytest.raises(ConfigurationError) as raised:
        load_schedule_settings()

    assert shown in str(raised.value)
    assert "Xy9pQ" not in str(raised.value)


def test_misspelt_section_is_refused_naming_the_known_ones(tmp_path, monkeypatch):
    config = _settings_file(tmp_path, monkeypatch, "schedule:\n  timezone: Europe/Berlin\n")

    with pytest.raises(SettingsFileError) as raised:
        load_schedule_settings()

    assert str(raised.value) == (
        f"unknown section(s) schedule in settings file {config}; known sections are alerting, "
        "archives, databases, health, schedules, security: correct the name or remove the section"
    )


def test_key_written_twice_is_refused_rather_than_the_last_winning(tmp_path, monkeypatch):
    config = _settings_file(
        tmp_path, monkeypatch, "schedules:\n  timezone: Europe/Berlin\n  timezone: UTC\n"
    )

    with pytest.raises(SettingsFileError) as raised:
        load_schedule_settings()

    assert str(raised.value) == (
        f"settings file {config} is not valid YAML at line 3, column 3: key timezone is written "
        "twice in one mapping (first at line 2); keep the one you mean and delete the other"
    )


def test_key_written_twice_that_is_not_a_name_is_not_quoted(tmp_path, monkeypatch):
    _settings_file(
        tmp_path,
        monkeypatch,
        "databases:\n  prod: {postgresql://k:Xy9pQ@db/k, postgresql://k:Xy9pQ@db/k}\n",
    )

    with pytest.raises(SettingsFileError) as raised:
        load_fleet()

    assert "a key is written twice in one mapping (first at line 2)" in str(raised.value)
    assert "Xy9pQ" not in str(raised.value)


def test_keys_merged_from_an_anchor_may_be_overridden(tmp_path, monkeypatch):
    from karen_ops.alerting.routing import load_alerting_config

    _settings_file(
        tmp_path,
        monkeypatch,
        "alerting:\n"
        "  routes:\n"
        "    - &critical {name: critical, match: {severity: critical}, channels: [email]}\n"
        "    - <<: *critical\n"
        "      name: warning\n"
        "      match: {severity: warning}\n",
    )

    routes = load_alerting_config().routes

    assert [(route.name, route.match, route.channels) for route in routes] == [
        ("critical", {"severity": "critical"}, ("email",)),
        ("warning", {"severity": "warning"}, ("email",)),
    ]
