"""A fleet of databases named in the settings file: each backed up and verified on its own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml
from dagster._core.definitions.automation_tick_evaluation_context import (
    build_run_requests_with_backfill_policies,
)
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.remote_representation.external_data import partition_set_snap_name_for_job_name
from dagster._grpc.impl import get_partition_set_execution_param_data
from dagster._utils.tags import TagConcurrencyLimitsCounter

from karen_ops.backups.definitions import build_definitions
from karen_ops.errors import ConfigurationError
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.redis import RedisResource
from karen_ops.resources.store import BackupStoreResource
from karen_ops.resources.store.catalog import list_backups
from karen_ops.settings import (
    DATABASE_PARTITION_TAG,
    DATABASE_TAG,
    FleetDatabase,
    ScheduleSettings,
    load_fleet,
)

ROOT = Path(__file__).resolve().parents[1]

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


def _load_databases_section(tmp_path, monkeypatch, section: str) -> ConfigurationError:
    config = tmp_path / "karen-ops.yaml"
    config.write_text("databases:\n" + section)
    monkeypatch.setenv("KAREN_OPS_CONFIG", str(config))
    with pytest.raises(ConfigurationError) as raised:
        load_fleet()
    return raised.value


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "{url_env: }",
            "url_env of database prod in {config} is empty: it must name an environment "
            "variable (like KAREN_PROD_URL) that holds the libpq URL",
        ),
        (
            "{url_env: 42}",
            "url_env of database prod in {config} is a number: it must name an environment "
            "variable (like KAREN_PROD_URL) that holds the libpq URL",
        ),
        (
            "{url_env: KAREN_PROD_URL, verify_url_env: [a, b]}",
            "verify_url_env of database prod in {config} is a list: it must name an "
            "environment variable (like KAREN_PROD_VERIFY_URL) that holds the libpq URL",
        ),
    ],
)
def test_fleet_entry_whose_variable_is_not_a_name_is_refused_when_loading(
    tmp_path, monkeypatch, entry, expected
):
    error = _load_databases_section(tmp_path, monkeypatch, f"  prod: {entry}\n")

    assert str(error) == expected.format(config=tmp_path / "karen-ops.yaml")


@pytest.mark.parametrize("key", ["url_env", "verify_url_env"])
def test_fleet_entry_holding_a_url_instead_of_a_variable_never_echoes_the_password(
    tmp_path, monkeypatch, key
):
    entry = {
        "url_env": "{url_env: 'postgresql://karen:Secr3t@db.internal/karen'}",
        "verify_url_env": "{url_env: KAREN_PROD_URL, "
        "verify_url_env: 'host=db.internal password=Secr3t'}",
    }[key]

    error = _load_databases_section(tmp_path, monkeypatch, f"  prod: {entry}\n")

    message = str(error)
    assert message.startswith(f"{key} of database prod in {tmp_path / 'karen-ops.yaml'} must ")
    assert "must name an environment variable (like KAREN_PROD_" in message
    assert "not hold a URL" in message
    assert "Secr3t" not in message and "db.internal" not in message


def test_fleet_entry_written_as_a_url_asks_for_a_mapping_without_echoing_it(tmp_path, monkeypatch):
    error = _load_databases_section(
        tmp_path, monkeypatch, "  prod: postgresql://karen:Secr3t@db.internal/karen\n"
    )

    assert str(error) == (
        f"database prod in {tmp_path / 'karen-ops.yaml'} must be a mapping {{url_env: VARIABLE}} "
        "naming the environment variable that holds its libpq URL, not a string; for example "
        "prod: {url_env: KAREN_PROD_URL}"
    )


def test_fleet_entry_with_a_misspelt_key_lists_the_known_keys(tmp_path, monkeypatch):
    error = _load_databases_section(
        tmp_path,
        monkeypatch,
        "  prod: {url_env: KAREN_PROD_URL, verfy_url_env: KAREN_PROD_VERIFY_URL}\n",
    )

    assert str(error) == (
        f"unknown setting(s) verfy_url_env for database prod in {tmp_path / 'karen-ops.yaml'}; "
        "known settings are url_env, verify_url_env"
    )


def test_fleet_entry_with_a_url_in_braces_counts_the_key_without_quoting_it(tmp_path, monkeypatch):
    # In a YAML flow mapping a lone URL is a key with no value.
    error = _load_databases_section(
        tmp_path, monkeypatch, "  prod: {postgresql://karen:Secr3t@db.internal/karen}\n"
    )

    assert "unknown setting(s) 1 key(s) that are not names for database prod" in str(error)
    assert "Secr3t" not in str(error)


def test_two_entries_reading_one_variable_are_refused_naming_both(tmp_path, monkeypatch):
    error = _load_databases_section(
        tmp_path,
        monkeypatch,
        "  production: {url_env: KAREN_DATABASE_URL}\n"
        "  staging: {url_env: KAREN_STAGING_URL}\n"
        "  prod_again: {url_env: KAREN_DATABASE_URL}\n",
    )

    assert str(error) == (
        f"databases production and prod_again in {tmp_path / 'karen-ops.yaml'} both take their "
        "URL from KAREN_DATABASE_URL, so one database would be backed up twice; give each entry "
        "the variable of its own database, or remove one of them"
    )


def test_entries_may_share_the_server_of_their_scratch_restores(tmp_path, monkeypatch):
    config = tmp_path / "karen-ops.yaml"
    config.write_text(
        "databases:\n"
        "  production: {url_env: KAREN_DATABASE_URL, verify_url_env: KAREN_SCRATCH_URL}\n"
        "  staging: {url_env: KAREN_STAGING_URL, verify_url_env: KAREN_SCRATCH_URL}\n"
    )
    monkeypatch.setenv("KAREN_OPS_CONFIG", str(config))

    assert [database.name for database in load_fleet()] == ["production", "staging"]


def _instance_limits() -> list[dict]:
    instance = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    return instance["concurrency"]["runs"]["tag_concurrency_limits"]


def _queues_behind(waiting: dict[str, str], running: dict[str, str]) -> bool:
    """Whether Dagster's run queue holds back a run with ``waiting``'s tags while one with
    ``running``'s tags is in progress, under the limits of the repository's dagster.yaml."""
    counter = TagConcurrencyLimitsCounter(
        _instance_limits(), [dg.DagsterRun(job_name="running", tags=running)]
    )
    return counter.is_blocked(dg.DagsterRun(job_name="waiting", tags=waiting))


def _fleet_definitions() -> dg.Definitions:
    from karen_ops.maintenance.definitions import build_definitions as maintenance

    return dg.Definitions.merge(
        build_definitions(ScheduleSettings(), FLEET),
        maintenance(ScheduleSettings(), FLEET),
        dg.Definitions(
            resources={"postgres": PostgresResource(), "backup_store": BackupStoreResource()}
        ),
    )


def _job_backfill_tags(defs: dg.Definitions, job_name: str, partition: str) -> dict[str, str]:
    """The tags of a run of a backfill started from the job's page: the job's own tags and
    those its code location gives the partition, as Dagster's backfill daemon merges them."""
    repository = defs.get_repository_def()
    data = get_partition_set_execution_param_data(
        repository, partition_set_snap_name_for_job_name(job_name), [partition]
    )
    return {**repository.get_job(job_name).tags, **data.partition_data[0].tags}


def _asset_backfill_tags(defs: dg.Definitions, asset: str, partition: str) -> dict[str, str]:
    """The tags of a run of a backfill started from an asset's page, built the way Dagster's
    backfill daemon builds them: outside any job, so only the partition's own tags."""
    with dg.DagsterInstance.ephemeral() as instance:
        [request] = build_run_requests_with_backfill_policies(
            [AssetKeyPartitionKey(dg.AssetKey(asset), partition)],
            defs.get_repository_def().asset_graph,
            instance,
        )
    return dict(request.tags)


def test_runs_of_one_database_queue_behind_each_other_however_they_are_started():
    defs = _fleet_definitions()
    day = "2026-12-03"
    earlier = dg.MultiPartitionKey({"date": "2026-12-01", "database": "production"})
    staging = dg.MultiPartitionKey({"date": day, "database": "staging"})
    scheduled = {r.tags[DATABASE_TAG]: dict(r.tags) for r in _tick(defs)}
    job_backfill = _job_backfill_tags(defs, "nightly_backup", earlier)
    asset_backfill = _asset_backfill_tags(defs, "postgres_backup", earlier)
    staging_backfill = _asset_backfill_tags(defs, "postgres_backup", staging)
    maintenance = _job_backfill_tags(defs, "weekly_maintenance", "production")

    assert scheduled["production"][DATABASE_PARTITION_TAG] == "production"
    assert asset_backfill[DATABASE_PARTITION_TAG] == "production"
    assert job_backfill[DATABASE_TAG] == maintenance[DATABASE_TAG] == "production"
    assert _queues_behind(asset_backfill, running=scheduled["production"])
    assert _queues_behind(asset_backfill, running=job_backfill)
    assert _queues_behind(job_backfill, running=scheduled["production"])
    assert _queues_behind(maintenance, running=job_backfill)
    assert _queues_behind(job_backfill, running=maintenance)
    assert not _queues_behind(staging_backfill, running=asset_backfill)
    assert not _queues_behind(scheduled["staging"], running=scheduled["production"])
    assert not _queues_behind(scheduled["staging"], running=maintenance)


def test_jobs_on_the_application_database_take_its_name_in_the_fleet(tmp_path, monkeypatch):
    from karen_ops.capacity.definitions import build_definitions as capacity
    from karen_ops.pitr.definitions import build_definitions as pitr

    config = tmp_path / "karen-ops.yaml"
    config.write_text(
        "databases:\n"
        "  staging: {url_env: KAREN_STAGING_DATABASE_URL}\n"
        "  production: {url_env: KAREN_DATABASE_URL}\n"
    )
    monkeypatch.setenv("KAREN_OPS_CONFIG", str(config))
    shared = {
        "postgres": PostgresResource(),
        "backup_store": BackupStoreResource(),
        "redis": RedisResource(),
    }
    defs = dg.Definitions.merge(
        capacity(ScheduleSettings()), pitr(ScheduleSettings()), dg.Definitions(resources=shared)
    )

    jobs = ("daily_capacity", "weekly_capacity_report", "weekly_capacity_report_snapshot")
    for job in (*jobs, "base_backup"):
        assert defs.resolve_job_def(job).tags[DATABASE_TAG] == "production", job
