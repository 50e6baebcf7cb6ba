"""security_events and error_analysis from log fixtures with hostile and malformed lines."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime, timedelta

import dagster as dg
from hypothesis import given
from hypothesis import strategies as st

from karen_ops.security.definitions import build_definitions
from karen_ops.security.logs import parse_access_line, parse_error_line, parse_security_line
from karen_ops.security.patterns import sql_injection_patterns
from karen_ops.security.settings import SecuritySettingsResource
from karen_ops.security.updates import parse_apt_simulation
from karen_ops.settings import ScheduleSettings

DAY = "2026-11-20"
NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _nginx(client, at, method, uri, status=200):
    stamp = at.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{client} - - [{stamp}] "{method} {uri} HTTP/1.1" {status} 12 "-" "curl/8"\n'


def _login(client, at, event="login_failed"):
    return json.dumps({"timestamp": at.isoformat(), "event": event, "ip": client}) + "\n"


def _materialize(tmp_path, asset_name, **settings):
    defs = build_definitions(ScheduleSettings())
    assets = [a for a in defs.assets if a.key.to_user_string() == asset_name]
    return dg.materialize(
        assets,
        partition_key=DAY,
        resources={"security_settings": SecuritySettingsResource(**settings)},
        instance=dg.DagsterInstance.ephemeral(),
    )


def test_bursts_writes_and_injection_are_found_per_client_and_bad_lines_counted(tmp_path):
    security = tmp_path / "security.log"
    lines = [_login("203.0.113.7", NOON + timedelta(seconds=20 * i)) for i in range(12)]
    # Eleven failures spread over an hour never fill one five-minute window past ten.
    lines += [_login("198.51.100.2", NOON + timedelta(minutes=6 * i)) for i in range(11)]
    lines += [_login("198.51.100.9", NOON, event="login_success")]
    lines += ["{not json\n", "\x00\xff binary junk\n", '{"event": "login_failed"}\n']
    security.write_text("".join(lines))

    access = tmp_path / "access.log"
    lines = [_nginx("192.0.2.10", NOON, "POST", f"/api/messages/{i}") for i in range(101)]
    lines += [_nginx("192.0.2.11", NOON, "PUT", "/api/profile") for _ in range(100)]
    lines += [
        _nginx("192.0.2.66", NOON, "GET", "/api/users?id=1%27%20OR%20%271%27=%271"),
        _nginx("192.0.2.66", NOON, "GET", "/api/x?q=1+UNION+SELECT+password+FROM+users"),
        _nginx("192.0.2.20", NOON, "GET", "/docs/select-your-plan"),
        _nginx("192.0.2.20", NOON, "GET", "/api/conversations?sort=updated&select=title"),
        _nginx("192.0.2.30", NOON - timedelta(days=2), "GET", "/x?id=1;DROP%20TABLE%20users"),
        "garbage without a request\n",
        '192.0.2.1 - - [31/Foo/2026:99:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n',
    ]
    access.write_text("".join(lines))

    result = _materialize(
        tmp_path, "security_events", security_log=str(security), access_log=str(access)
    )

    metadata = result.asset_materializations_for_node("security_events")[0].metadata
    report = metadata["report"].value
    assert metadata["findings"].value == 3
    assert metadata["unparseable_lines"].value == 5
    assert "| 203.0.113.7 | failed_logins | 12 | 12:00:00 | 12:03:40 |" in report
    assert "| 192.0.2.10 | write_burst | 101 |" in report
    assert "| 192.0.2.66 | sql_injection | 2 |" in report
    assert "quoted_tautology" in report and "union_select" in report
    for innocent in ("198.51.100.2", "192.0.2.11", "192.0.2.20", "192.0.2.30"):
        assert innocent not in report
    assert f"| {security} | 27 | 3 |" in report
    assert "| 12 failed logins within 5 minutes (12 that day) |" in report
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.description.startswith(
        "203.0.113.7: 12 failed logins within 5 minutes (12 that day); "
        "192.0.2.10: 101 write requests that day, over the limit of 100; "
        "192.0.2.66: 2 request(s) matching SQL injection patterns quoted_tautology, union_select"
    )
    assert check.description.endswith(
        "; the materialization's report gives each one's first and last time"
    )


def test_missing_log_fails_with_the_setting_to_fix(tmp_path):
    missing = tmp_path / "nope.log"
    defs = build_definitions(ScheduleSettings())
    assets = [a for a in defs.assets if a.key.to_user_string() == "security_events"]
    result = dg.materialize(
        assets,
        partition_key=DAY,
        resources={"security_settings": SecuritySettingsResource(security_log=str(missing))},
        raise_on_error=False,
    )
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.cause.message
    assert f"could not read log {missing}: No such file or directory; set security_log" in message


def test_error_analysis_reports_types_hours_and_endpoints(tmp_path):
    log = tmp_path / "error.log"
    records = [
        {
            "timestamp": "2026-11-20T09:15:00Z",
            "error_type": "TimeoutError",
            "endpoint": "/api/chat",
        },
        {
            "timestamp": "2026-11-20T09:45:00Z",
            "error_type": "TimeoutError",
            "endpoint": "/api/chat",
        },
        {"timestamp": "2026-11-20T17:00:00Z", "error_type": "KeyError", "endpoint": "/api/users"},
        {"timestamp": "2026-11-21T01:00:00Z", "error_type": "KeyError", "endpoint": "/api/users"},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in records) + "[1, 2]\nplain text\n")

    result = _materialize(tmp_path, "error_analysis", error_log=str(log))

    metadata = result.asset_materializations_for_node("error_analysis")[0].metadata
    report = metadata["report"].value
    assert metadata["errors"].value == 3
    assert metadata["unparseable_lines"].value == 2
    assert "| TimeoutError | 2 |" in report and "| KeyError | 1 |" in report
    assert "| /api/chat | 2 |" in report
    assert "| 09:00 | 2 |" in report and "| 17:00 | 1 |" in report and "| 10:00 | 0 |" in report


def _rotated(path, text, written):
    """Write a rotation as logrotate leaves it, gzip-compressed when its name says so."""
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    os.utime(path, (written.timestamp(), written.timestamp()))


def test_security_events_read_the_day_from_rotated_and_compressed_logs(tmp_path):
    security, access = tmp_path / "security.log", tmp_path / "access.log"
    morning = NOON - timedelta(hours=3)
    # A burst of twelve failed logins cut in two by a rotation at 09:01:00.
    burst = [_login("203.0.113.7", morning + timedelta(seconds=10 * i)) for i in range(12)]
    day_before = [_login("203.0.113.8", morning - timedelta(days=1, seconds=i)) for i in range(12)]
    _rotated(tmp_path / "security.log.2.gz", "".join(day_before + burst[:6]), morning)
    _rotated(tmp_path / "security.log.1", "".join(burst[6:]) + "{broken\n", NOON)
    # Last written before the day began: cannot hold its lines, and is never opened.
    _rotated(tmp_path / "security.log.3.gz", "not gzip at all", morning - timedelta(days=1))
    security.write_text(_login("198.51.100.9", NOON, event="login_success"))
    writes = [_nginx("192.0.2.10", NOON, "POST", f"/api/messages/{i}") for i in range(101)]
    _rotated(tmp_path / "access.log-20261121.gz", "".join(writes), NOON + timedelta(hours=12))
    access.write_text(_nginx("192.0.2.66", NOON, "GET", "/x?id=1%27%20OR%20%271%27=%271"))

    result = _materialize(
        tmp_path, "security_events", security_log=str(security), access_log=str(access)
    )

    metadata = result.asset_materializations_for_node("security_events")[0].metadata
    report = metadata["report"].value
    assert metadata["findings"].value == 3
    assert "| 203.0.113.7 | failed_logins | 12 | 09:00:00 | 09:01:50 |" in report
    assert "203.0.113.8" not in report
    assert "| 192.0.2.10 | write_burst | 101 |" in report
    assert "| 192.0.2.66 | sql_injection | 1 |" in report
    assert metadata["unparseable_lines"].value == 1
    read = f"{security}.2.gz<br>{security}.1<br>{security}"
    assert f"| {security} | 26 | 1 | {read} |" in report
    assert f"| {access} | 102 | 0 | {access}-20261121.gz<br>{access} |" in report


def test_error_analysis_counts_only_the_days_lines_of_every_rotation(tmp_path):
    log = tmp_path / "error.log"

    def error(at, kind):
        return json.dumps({"timestamp": at, "error_type": kind, "endpoint": "/api/chat"}) + "\n"

    _rotated(
        tmp_path / "error.log.2.gz",
        error("2026-11-19T23:59:59Z", "Old") + error("2026-11-20T00:00:00Z", "TimeoutError"),
        NOON - timedelta(hours=11),
    )
    _rotated(tmp_path / "error.log.1", error("2026-11-20T13:00:00Z", "TimeoutError"), NOON)
    log.write_text(error("2026-11-20T23:59:59Z", "KeyError") + error("2026-11-21T00:00:00Z", "New"))

    result = _materialize(tmp_path, "error_analysis", error_log=str(log))

    metadata = result.asset_materializations_for_node("error_analysis")[0].metadata
    report = metadata["report"].value
    assert metadata["errors"].value == 3
    assert metadata["files_read"].value == f"{log}.2.gz\n{log}.1\n{log}"
    assert "| TimeoutError | 2 |" in report and "| KeyError | 1 |" in report
    assert "Old" not in report and "New" not in report
    assert "| 00:00 | 1 |" in report and "| 13:00 | 1 |" in report and "| 23:00 | 1 |" in report


def test_damaged_compressed_rotation_fails_naming_the_file(tmp_path):
    log = tmp_path / "error.log"
    log.write_text("")
    _rotated(tmp_path / "error.log.2.gz", "", NOON)
    damaged = tmp_path / "error.log.2.gz"
    damaged.write_bytes(gzip.compress(b'{"timestamp": "2026-11-20T01:00:00Z"}\n' * 50)[:40])

    defs = build_definitions(ScheduleSettings())
    assets = [a for a in defs.assets if a.key.to_user_string() == "error_analysis"]
    result = dg.materialize(
        assets,
        partition_key=DAY,
        resources={"security_settings": SecuritySettingsResource(error_log=str(log))},
        raise_on_error=False,
    )
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.cause.message
    assert f"could not read log {damaged}: " in message
    assert "set error_log in the security section" in message


def test_ordinary_paths_with_sql_words_are_not_attacks():
    for path in [
        "/api/select",
        "/docs/how-to-select-data-from-postgres",
        "/search?q=update+my+profile+and+delete+old+chats",
        "/users/o%27brien",
        "/api/items;update",
    ]:
        assert sql_injection_patterns(path) == [], path


def test_apt_simulation_marks_security_updates():
    output = (
        "Inst openssl [3.0.11-1] (3.0.13-1~deb12u1 Debian-Security:12/stable-security [amd64])\n"
        "Inst tzdata [2024a-0] (2024b-0 Debian:12.7/stable [all])\n"
        "Conf openssl (3.0.13-1~deb12u1 Debian-Security:12/stable-security [amd64])\n"
    )
    updates = parse_apt_simulation(output)
    assert [(u.package, u.version, u.security) for u in updates] == [
        ("openssl", "3.0.13-1~deb12u1", True),
        ("tzdata", "2024b-0", False),
    ]


@given(st.text())
def test_no_text_crashes_the_log_parsers(line):
    parse_access_line(line)
    parse_security_line(line)
    parse_error_line(line)
    sql_injection_patterns(line)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_no_json_value_crashes_the_json_parsers(value):
    line = json.dumps(value)
    parse_security_line(line)
    parse_error_line(line)


@given(st.sampled_from(["timestamp", "time", "ts"]), st.integers(-(10**12), 10**12))
def test_numeric_times_of_any_size_are_parsed_or_rejected(field, seconds):
    parse_error_line(json.dumps({field: seconds, "error_type": "X"}))
