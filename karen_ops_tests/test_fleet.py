"""A fleet of databases named in the settings file: each backed up and verified on its own."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import psycopg
import pytest

from karen_ops.backups.definitions import build_definitions
from karen_ops.errors import ConfigurationError
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.store import BackupStoreResource
from karen_ops.resources.store.catalog import list_backups
from karen_ops.settings import DATABASE_TAG, FleetDatabase, ScheduleSettings, load_fleet

FLEET = (
    FleetDatabase("production", "KAREN_TEST_PRODUCTION_URL"),
    FleetDatabase("staging", "KAREN_TEST_STAGING_URL"),
    FleetDatabase("tenant_acme", "KAREN_TEST_ACME_URL"),
)


def _tick(defs: dg.Definitions) -> list[dg.RunRequest]:
    schedule = defs.resolve_schedule_def("nightly_backup_schedule")
    at_two = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    with dg.build_schedule_context(
        scheduled_execution_time=at_two, repository_def=defs.get_repository_def()
    ) as context:
        return list(schedule.evaluate_tick(context).run_requests)


def test_one_tick_backs_up_and_verifies_each_database_and_one_failure_stops_no_other(
    service_server, store, monkeypatch
):
    with service_server.database() as production, service_server.database() as staging:
        for db, rows in ((production, 30), (staging, 20)):
            with psycopg.connect(**db.psycopg_kwargs(), autocommit=True) as conn:
                conn.execute(
                    f"CREATE TABLE messages AS SELECT g AS id FROM generate_series(1, {rows}) g"
                )
        monkeypatch.setenv("KAREN_TEST_PRODUCTION_URL", production.public_dsn())
        monkeypatch.setenv("KAREN_TEST_STAGING_URL", staging.public_dsn())
        monkeypatch.setenv("KAREN_TEST_ACME_URL", service_server.url("karen_acme_is_missing"))
        defs = dg.Definitions.merge(
            build_definitions(ScheduleSettings(), FLEET),
            dg.Definitions(
                resources={
                    "postgres": PostgresResource(),
                    "backup_store": BackupStoreResource(url=store.url),
                }
            ),
        )

        requests = _tick(defs)
        job = defs.resolve_job_def("nightly_backup")
        with dg.DagsterInstance.ephemeral() as instance:
            results = {
                request.tags[DATABASE_TAG]: job.execute_in_process(
                    partition_key=request.partition_key,
                    tags=request.tags,
                    instance=instance,
                    raise_on_error=False,
                )
                for request in requests
            }

    assert sorted(results) == ["production", "staging", "tenant_acme"]
    assert results["production"].success and results["staging"].success
    assert not results["tenant_acme"].success
    backups = {entry.name: entry for entry in list_backups(store)}
    assert sorted(backups) == ["production", "staging"]
    assert all(entry.verified for entry in backups.values())
    rows = {
        name: result.asset_materializations_for_node("backup_verification")[0]
        .metadata["rows_verified"]
        .value
        for name, result in results.items()
        if result.success
    }
    assert rows == {"production": 30, "staging": 20}


def test_fleet_is_read_from_the_settings_file(tmp_path, monkeypatch):
    config = tmp_path / "karen-ops.yaml"
    config.write_text(
        "databases:\n"
        "  production: {url_env: KAREN_DATABASE_URL}\n"
        "  staging: {url_env: KAREN_STAGING_DATABASE_URL,\n"
        "            verify_url_env: KAREN_STAGING_VERIFY_URL}\n"
    )
    monkeypatch.setenv("KAREN_OPS_CONFIG", str(config))

    assert load_fleet() == (
        FleetDatabase("production", "KAREN_DATABASE_URL"),
        FleetDatabase("staging", "KAREN_STAGING_DATABASE_URL", "KAREN_STAGING_VERIFY_URL"),
    )


def test_fleet_entry_without_its_variable_says_which_to_set(monkeypatch):
    monkeypatch.delenv("KAREN_TEST_STAGING_URL", raising=False)

    with pytest.raises(ConfigurationError, match="KAREN_TEST_STAGING_URL is not set"):
        PostgresResource().source(FLEET[1])


def test_weekly_maintenance_runs_once_per_database_under_its_own_tag(service_server, monkeypatch):
    from karen_ops.maintenance.definitions import build_definitions as maintenance

    with service_server.database() as staging:
        monkeypatch.setenv("KAREN_TEST_STAGING_URL", staging.public_dsn())
        defs = dg.Definitions.merge(
            maintenance(ScheduleSettings(), FLEET),
            dg.Definitions(resources={"postgres": PostgresResource()}),
        )
        schedule = defs.resolve_schedule_def("weekly_maintenance_schedule")
        with dg.build_schedule_context(
            scheduled_execution_time=datetime(2026, 12, 6, 3, tzinfo=UTC),
            repository_def=defs.get_repository_def(),
        ) as context:
            requests = list(schedule.evaluate_tick(context).run_requests)

        staging_request = next(r for r in requests if r.tags[DATABASE_TAG] == "staging")
        result = defs.resolve_job_def("weekly_maintenance").execute_in_process(
            partition_key=staging_request.partition_key, raise_on_error=False
        )

    assert sorted(r.tags[DATABASE_TAG] for r in requests) == [d.name for d in FLEET]
    assert result.success
    health = result.asset_materializations_for_node("table_health")[0]
    assert health.partition == "staging"
