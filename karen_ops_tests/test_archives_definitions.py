"""The file archives' definitions, schedules, partitions and settings defaults."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from karen_ops.archives.config import ArchiveSettings, load_archive_settings
from karen_ops.archives.definitions import build_definitions
from karen_ops.errors import ConfigurationError
from karen_ops.resources.store import BackupStoreResource
from karen_ops.settings import DATABASE_TAG, OPS_CONFIG, ScheduleSettings
from karen_ops_tests.archives_fixtures import (
    day_fixture,  # noqa: F401 - a fixture, used by name
    failure_message,
    host_fixture,  # noqa: F401 - a fixture, used by name
    materialize,
    stored_keys,
)


def _defs() -> dg.Definitions:
    return dg.Definitions.merge(
        build_definitions(ScheduleSettings(timezone="UTC", backups_start_date="2026-11-01")),
        dg.Definitions(resources={"backup_store": BackupStoreResource(url="file:///tmp/x")}),
    )


def test_definitions_offer_the_three_archives_the_check_and_two_scheduled_jobs():
    repository = _defs().get_repository_def()
    assets = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    checks = {
        (key.asset_key.to_user_string(), key.name)
        for key in repository.asset_graph.asset_check_keys
    }

    assert assets == {"config_backup", "application_backup", "log_archive"}
    assert checks == {("config_backup", "secrets_are_encrypted")}
    jobs = {job.name: job for job in repository.get_all_jobs()}
    assert {"daily_config_backup", "weekly_file_archives"} <= set(jobs)
    assert DATABASE_TAG not in jobs["daily_config_backup"].tags
    assert DATABASE_TAG not in jobs["weekly_file_archives"].tags
    schedules = {s.name: s.cron_schedule for s in repository.schedule_defs}
    assert schedules == {
        "daily_config_backup_schedule": "30 1 * * *",
        "weekly_file_archives_schedule": "0 4 * * 1",
    }


def test_daily_schedule_archives_the_day_that_just_ended():
    defs = _defs()
    schedule = defs.resolve_schedule_def("daily_config_backup_schedule")
    with dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 12, 4, 1, 30, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    ) as context:
        request = schedule.evaluate_tick(context).run_requests[0]

    assert request.partition_key == "2026-12-03"


def test_weekly_schedule_archives_the_week_that_ended_on_sunday():
    defs = _defs()
    schedule = defs.resolve_schedule_def("weekly_file_archives_schedule")
    with dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 12, 7, 4, 0, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    ) as context:
        request = schedule.evaluate_tick(context).run_requests[0]

    assert request.partition_key == "2026-11-30"


def test_an_old_partition_is_refused_rather_than_mislabelled(host, store):
    site = host.write("etc/nginx/sites-available/ai-karen", b"server {}\n")
    host.configure(config_paths=[str(site)])

    result = materialize("config_backup", store, "2026-11-05")

    assert not result.success
    message = failure_message(result)
    assert message.startswith(
        "cannot archive partition 2026-11-05: an archive records the files as they are now"
    )
    assert "materialize the newest partition" in message
    assert stored_keys(store) == []


def test_without_a_settings_file_the_defaults_follow_the_ai_karen_layout(monkeypatch):
    monkeypatch.delenv(OPS_CONFIG, raising=False)

    loaded = load_archive_settings()

    assert loaded == ArchiveSettings()
    assert "/opt/ai-karen/.env" in loaded.config_paths
    assert "/etc/systemd/system/ai-karen*.service" in loaded.config_paths
    assert loaded.application_paths == ("/opt/ai-karen",)
    assert loaded.log_paths == ("/var/log/ai-karen",)
    assert {"node_modules", ".venv", ".git", "__pycache__"} <= set(loaded.application_excludes)


def test_a_host_label_that_cannot_name_a_folder_is_refused(host):
    host.configure(host="../etc")

    with pytest.raises(ConfigurationError) as raised:
        _ = load_archive_settings().name

    assert str(raised.value) == (
        "host label '../etc' cannot name a folder in the backup store; set archives.host in "
        "the KAREN_OPS_CONFIG file to letters, digits, '.', '_' or '-'"
    )


def test_relative_paths_are_refused_with_the_setting_to_fix(host, store, day):
    host.configure(config_paths=["etc/nginx/sites-available/ai-karen"])

    result = materialize("config_backup", store, day)

    assert failure_message(result).startswith(
        "archives.config_paths holds relative path(s) etc/nginx/sites-available/ai-karen;"
    )
