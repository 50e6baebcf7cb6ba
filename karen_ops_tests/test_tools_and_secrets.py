"""Choosing PostgreSQL client tools, and keeping passwords out of argv, logs and metadata."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from karen_ops.errors import ConfigurationError, ToolNotFoundError
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import embedded_bin_dir, find_tool, list_tools
from karen_ops.resources.postgres import PostgresResource
from karen_ops_tests.runs import materialize_day


def test_missing_tool_names_the_versions_found_and_the_one_needed():
    found = list_tools("pg_dump")

    with pytest.raises(ToolNotFoundError) as raised:
        find_tool("pg_dump", 99)

    message = str(raised.value)
    assert message.startswith("no pg_dump of PostgreSQL 99 or newer was found (found: pg_dump ")
    assert all(tool.version in message for tool in found)
    assert "set KAREN_PG_BIN_DIR to a folder holding pg_dump 99" in message


def test_the_embedded_servers_tools_serve_postgresql_16():
    assert embedded_bin_dir() is not None
    assert find_tool("pg_dump", 16).major == 16


def test_a_configured_bin_dir_is_searched_first():
    embedded = embedded_bin_dir()
    tool = find_tool("pg_restore", 16, bin_dir=str(embedded))
    assert tool.path.parent == embedded


def test_exact_major_version_is_preferred_over_a_newer_one():
    majors = {tool.major for tool in list_tools("pg_dump")}
    if not {15, 16} <= majors:
        pytest.skip(f"needs pg_dump 15 and 16 side by side, found {sorted(majors)}")
    assert find_tool("pg_dump", 15).major == 15


def test_conninfo_keeps_the_password_out_of_what_is_shown():
    info = ConnInfo.parse("postgresql://karen:s3cret-pw@db.internal:6432/karen", setting="X")

    assert "s3cret-pw" not in info.public_dsn()
    assert "s3cret-pw" not in info.describe()
    assert info.tool_environment() == {"PGPASSWORD": "s3cret-pw"}


def test_malformed_url_names_the_setting():
    with pytest.raises(ConfigurationError, match="KAREN_DATABASE_URL is not a valid libpq"):
        ConnInfo.parse("dbname=karen host", setting="KAREN_DATABASE_URL")


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_database_url_is_refused_rather_than_replaced_by_the_demo_server(
    blank, monkeypatch, tmp_path
):
    monkeypatch.setenv("KAREN_DATABASE_URL", blank)
    monkeypatch.setenv("KAREN_OPS_HOME", str(tmp_path))

    with pytest.raises(ConfigurationError) as raised:
        PostgresResource().source()

    assert str(raised.value) == (
        "KAREN_DATABASE_URL is set but empty; set it to the application database's libpq URL, "
        "or unset it to use the embedded demo server"
    )
    assert not (tmp_path / "pgdata").exists()


@pytest.fixture
def password_role(service_server):
    password = "Pw-never-shown-42"  # noqa: S105 (a throwaway role of this test)
    with psycopg.connect(**service_server.maintenance.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE karen_secret_test LOGIN SUPERUSER PASSWORD {}").format(
                sql.Literal(password)
            )
        )
    yield password
    with psycopg.connect(**service_server.maintenance.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute("DROP ROLE karen_secret_test")


def test_password_never_reaches_logs_or_metadata(service_server, password_role, store, yesterday):
    with service_server.database() as db, dg.DagsterInstance.ephemeral() as instance:
        source = ConnInfo({**db.params, "user": "karen_secret_test", "password": password_role})
        result = materialize_day(source, store, yesterday, instance=instance)
        # Every log line and event of the run, as the UI would show them.
        shown = [repr(entry) for entry in instance.all_logs(result.run_id)]

    assert result.success
    assert len(shown) > 20
    assert not [text for text in shown if password_role in text]
    assert password_role not in "".join(p.read_text() for p in store.root.rglob("*.json"))
