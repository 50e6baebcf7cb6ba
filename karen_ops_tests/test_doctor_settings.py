"""Doctor on alert routing and the fleet settings: a route whose channels are none of the
configured ones is named, since the alerts it takes would reach nobody; a bad fleet entry is
one failed line."""

from __future__ import annotations

import sys

import yaml

from karen_ops.alerting.resource import AlertingResource
from karen_ops.doctor.instance import check_code_location, check_instance
from karen_ops.doctor.model import Status
from karen_ops.doctor.services import alerting_checks
from karen_ops_tests.doctor_fixtures import clean_environment


def _lines(tmp_path, monkeypatch, **environment) -> list[str]:
    clean_environment(monkeypatch, tmp_path / "home", **environment)
    return [finding.line() for finding in alerting_checks(AlertingResource())]


def test_warnings_with_only_slack_name_the_route_that_reaches_nobody(
    tmp_path, monkeypatch, receiver_factory
):
    slack = receiver_factory()
    lines = _lines(tmp_path, monkeypatch, KAREN_ALERT_SLACK_WEBHOOK_URL=slack.url)

    unheard = [line for line in lines if line.startswith("WARN  alert route")]
    assert unheard == [
        "WARN  alert route warning  none of its channels (email) is configured: the alerts it "
        "takes reach nobody; fix: set KAREN_SMTP_URL with KAREN_ALERT_EMAIL_TO and "
        "KAREN_ALERT_EMAIL_FROM, or change the route's channels in the alerting section of "
        "KAREN_OPS_CONFIG",
        "WARN  alert route default  none of its channels (webhook) is configured: the alerts it "
        "takes reach nobody; fix: set KAREN_ALERT_WEBHOOK_URL, or change the route's channels "
        "in the alerting section of KAREN_OPS_CONFIG",
    ]
    assert slack.posts == []  # the dry run sends nothing


def test_routes_that_can_all_deliver_raise_no_warning(tmp_path, monkeypatch, receiver_factory):
    hook = receiver_factory()
    settings = tmp_path / "karen-ops.yaml"
    settings.write_text(yaml.safe_dump({"alerting": {"routes": [
        {"name": "everything", "channels": ["webhook"]},
    ]}}))  # fmt: skip
    lines = _lines(
        tmp_path, monkeypatch, KAREN_ALERT_WEBHOOK_URL=hook.url, KAREN_OPS_CONFIG=str(settings)
    )

    assert not [line for line in lines if line.startswith("WARN")]


def test_a_route_without_channels_is_a_mute_that_doctor_names(
    tmp_path, monkeypatch, receiver_factory
):
    hook = receiver_factory()
    settings = tmp_path / "karen-ops.yaml"
    settings.write_text(yaml.safe_dump({"alerting": {"routes": [
        {"name": "quiet", "match": {"severity": "warning"}, "channels": []},
        {"name": "everything", "channels": ["webhook"]},
    ]}}))  # fmt: skip
    lines = _lines(
        tmp_path, monkeypatch, KAREN_ALERT_WEBHOOK_URL=hook.url, KAREN_OPS_CONFIG=str(settings)
    )

    assert [line for line in lines if line.startswith("WARN")] == [
        "WARN  alert route quiet  has no channels: it mutes the alerts it takes; fix: list "
        "channels for it if they should reach someone"
    ]


def test_alertmanager_taking_every_alert_leaves_no_route_unheard(
    tmp_path, monkeypatch, alertmanager
):
    lines = _lines(tmp_path, monkeypatch, KAREN_ALERTMANAGER_URL=alertmanager)

    assert not [line for line in lines if line.startswith("WARN")]


def test_a_bad_fleet_entry_is_one_failed_line_without_its_password(tmp_path, monkeypatch):
    from karen_ops.doctor.run import sections

    settings = tmp_path / "karen-ops.yaml"
    settings.write_text("databases:\n  prod: {url_env: 'postgresql://karen:Secr3t@db/karen'}\n")
    clean_environment(monkeypatch, tmp_path / "home", KAREN_OPS_CONFIG=str(settings))
    fleet_section = sections()[2]

    [finding] = fleet_section()

    assert finding.line().startswith(
        "FAIL  fleet settings    url_env of database prod in "
        f"{settings} must name an environment variable"
    )
    assert finding.line().endswith("fix: correct the databases section")
    assert "Secr3t" not in finding.line()


def test_a_bad_alerting_section_is_one_failed_line_and_the_checks_go_on(
    tmp_path, monkeypatch, receiver_factory
):
    slack = receiver_factory()
    settings = tmp_path / "karen-ops.yaml"
    settings.write_text("alerting:\n  stale_backup_hours: abc\n")
    lines = _lines(
        tmp_path,
        monkeypatch,
        KAREN_ALERT_SLACK_WEBHOOK_URL=slack.url,
        KAREN_OPS_CONFIG=str(settings),
    )

    assert lines[0] == (
        f"FAIL  alert settings    alerting.stale_backup_hours in {settings} must be a finite "
        "number of zero or more, not a string; write it as stale_backup_hours: 26, for example; "
        "fix: correct the alerting section"
    )
    assert [line.split()[:3] for line in lines[1:]] == [
        ["OK", "alert", "slack"],
        ["SKIP", "pushgateway", "KAREN_PUSHGATEWAY_URL"],
    ]


def _failed_settings_lines(tmp_path, monkeypatch, text: str) -> list[str]:
    """The failed lines of every doctor check that reads the settings file ``text``."""
    from karen_ops.doctor.run import sections

    settings = tmp_path / "karen-ops.yaml"
    settings.write_text(text)
    clean_environment(monkeypatch, tmp_path / "home", KAREN_OPS_CONFIG=str(settings))
    # Loaded afresh, as a new doctor process would, and restored for the other tests.
    monkeypatch.delitem(sys.modules, "karen_ops.definitions", raising=False)
    fleet_section = sections()[2]
    findings = [check_code_location(), *fleet_section(), *alerting_checks(AlertingResource())]
    return [finding.line() for finding in findings if finding.status is Status.FAIL]


def test_a_settings_file_that_is_not_yaml_fails_once_without_quoting_the_broken_line(
    tmp_path, monkeypatch
):
    text = "schedules:\n  timezone: UTC\ndb: postgres://a:Xy9pQ@h/k: x\n"

    failed = _failed_settings_lines(tmp_path, monkeypatch, text)

    assert failed == [
        "FAIL  code location     karen_ops.definitions does not load: settings file "
        f"{tmp_path / 'karen-ops.yaml'} is not valid YAML at line 3, column 27: mapping values "
        "are not allowed here; fix that line, quoting any value that holds ': ' or ' #' or "
        "starts with '*', '&', '!' or '%'; fix: fix the file named by KAREN_OPS_CONFIG"
    ]
    assert "Xy9pQ" not in failed[0]


def test_a_malformed_schedule_setting_is_one_failed_line_naming_it(tmp_path, monkeypatch):
    failed = _failed_settings_lines(tmp_path, monkeypatch, "schedules:\n  timezone: 5\n")

    assert failed == [
        "FAIL  code location     karen_ops.definitions does not load: schedules.timezone in "
        f"{tmp_path / 'karen-ops.yaml'} must be a timezone name, not a number; use an IANA name "
        "such as Europe/Berlin or UTC; fix: fix the file named by KAREN_OPS_CONFIG"
    ]


def test_malformed_alert_defaults_are_one_failed_line_naming_them(tmp_path, monkeypatch):
    failed = _failed_settings_lines(tmp_path, monkeypatch, "alerting:\n  defaults: [1]\n")

    assert failed == [
        f"FAIL  alert settings    alerting.defaults in {tmp_path / 'karen-ops.yaml'} must be a "
        "mapping, not a list; write it as defaults: {group_by: [alertname], "
        "group_wait_seconds: 0}; fix: correct the alerting section"
    ]


def test_a_dagster_yaml_that_is_not_yaml_is_named_without_quoting_the_broken_line(
    tmp_path, monkeypatch
):
    home = tmp_path / "dagster"
    home.mkdir()
    instance = home / "dagster.yaml"
    instance.write_text("storage:\n  postgres:\n    postgres_url: postgresql://k:Xy9pQ@db/k: x\n")
    clean_environment(monkeypatch, tmp_path / "home", DAGSTER_HOME=str(home))

    line = check_instance().line()

    assert line == (
        f"FAIL  dagster instance  {instance} is not valid YAML at line 3, column 44: mapping "
        f"values are not allowed here; fix: fix {instance}"
    )
