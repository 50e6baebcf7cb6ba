"""file_integrity: a changed critical file stays flagged across runs until it is accepted."""

from __future__ import annotations

import argparse

import dagster as dg
import pytest

from karen_ops.security import commands
from karen_ops.security.definitions import build_definitions
from karen_ops.security.integrity import IntegrityError
from karen_ops.security.settings import SecuritySettingsResource
from karen_ops.settings import ScheduleSettings


def _materialize(instance, files):
    defs = build_definitions(ScheduleSettings())
    assets = [a for a in defs.assets if a.key.to_user_string() == "file_integrity"]
    return dg.materialize(
        assets,
        partition_key="2026-11-20",
        resources={"security_settings": SecuritySettingsResource(critical_files=files)},
        instance=instance,
    )


def _run(instance, files):
    return _materialize(instance, files).get_asset_check_evaluations()[0]


def _accept(home, dagster_home, monkeypatch, capsys, *flags):
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    parser = argparse.ArgumentParser(prog="karen-ops")
    commands.add_commands(parser.add_subparsers(required=True))
    args = parser.parse_args(["integrity", "accept", "--reason", "nginx upgrade", *flags])
    code = args.command(home, args)
    return code, capsys.readouterr().out


def test_changed_file_stays_flagged_until_accepted(tmp_path, monkeypatch, capsys):
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    nginx, env = tmp_path / "nginx.conf", tmp_path / ".env"
    nginx.write_text("worker_processes 2;\n")
    env.write_text("SECRET=1\n")
    files = [str(nginx), str(env)]

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        first = _run(instance, files)
        nginx.write_text("worker_processes 4;\n")
        second = _run(instance, files)
        third = _run(instance, files)
    code, out = _accept(tmp_path, dagster_home, monkeypatch, capsys)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        fourth = _run(instance, files)
        env.unlink()
        fifth = _run(instance, files)

    assert first.passed
    for flagged in (second, third):
        assert not flagged.passed
        assert flagged.severity == dg.AssetCheckSeverity.ERROR
        assert flagged.metadata["changed_files"].value == str(nginx)
        assert flagged.description == (
            f"changed: {nginx}; if the change is expected, run `karen-ops integrity accept`"
        )
    assert code == 0
    assert out.startswith("accepted 2 file hash(es) as the file_integrity baseline")
    assert fourth.passed
    assert not fifth.passed
    assert fifth.metadata["missing_files"].value == str(env)
    assert fifth.description == (
        f"missing: {env}; restore the missing file(s), or remove them from "
        "security.critical_files in $KAREN_OPS_CONFIG or on the security_settings resource"
    )


def test_accept_before_any_run_says_what_to_do(tmp_path, monkeypatch, capsys):

    (tmp_path / "dagster").mkdir()
    with pytest.raises(IntegrityError, match="file_integrity was never materialized"):
        _accept(tmp_path, tmp_path / "dagster", monkeypatch, capsys)


def _watched(tmp_path):
    """Four critical files of which only the first exists, as on a host without nginx."""
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    absent = [tmp_path / "nginx.conf", tmp_path / "sshd_config", tmp_path / "sudoers"]
    return passwd, absent


def test_missing_critical_files_fail_the_first_run_naming_them(tmp_path):
    passwd, absent = _watched(tmp_path)
    files = [str(passwd), *map(str, absent)]

    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(instance, files)
        again = _run(instance, files)
    check = result.get_asset_check_evaluations()[0]
    metadata = result.asset_materializations_for_node("file_integrity")[0].metadata

    assert metadata["missing"].value == 3
    assert metadata["baseline_recorded_now"].value is True
    for evaluation in (check, again):
        assert not evaluation.passed
        assert evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert evaluation.metadata["missing_files"].value == ", ".join(map(str, absent))
        assert evaluation.description == (
            f"missing: {absent[0]}; missing: {absent[1]}; missing: {absent[2]}; restore the "
            "missing file(s), or remove them from security.critical_files in $KAREN_OPS_CONFIG "
            "or on the security_settings resource"
        )


def test_accept_refuses_missing_files_unless_allowed_and_they_stay_flagged(
    tmp_path, monkeypatch, capsys
):

    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    passwd, absent = _watched(tmp_path)
    files = [str(passwd), *map(str, absent)]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        _run(instance, files)
        passwd.write_text("root:x:0:0:root:/root:/bin/sh\n")
        _run(instance, files)

    with pytest.raises(IntegrityError) as refused:
        _accept(tmp_path, dagster_home, monkeypatch, capsys)
    code, out = _accept(tmp_path, dagster_home, monkeypatch, capsys, "--allow-missing")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        after_accept = _run(instance, files)
        absent[0].write_text("worker_processes 2;\n")
        restored = _run(instance, files)

    assert str(refused.value) == (
        f"could not accept file changes: 3 critical file(s) are missing: {absent[0]}, "
        f"{absent[1]}, {absent[2]}; restore them, or remove them from security.critical_files "
        "in $KAREN_OPS_CONFIG or on the security_settings resource, then run file_integrity "
        "again; to accept the files that exist now and keep the missing ones flagged, pass "
        "--allow-missing"
    )
    assert code == 0
    assert out.startswith("accepted 1 file hash(es) as the file_integrity baseline\n")
    assert out.endswith(
        "still missing, flagged until fixed or removed from security.critical_files:\n"
        + "".join(f"  {path}\n" for path in absent)
    )
    assert not after_accept.passed
    assert after_accept.metadata["changed_files"].value == "none"
    assert after_accept.metadata["missing_files"].value == ", ".join(map(str, absent))
    assert restored.metadata["new_files"].value == str(absent[0])
    assert restored.metadata["missing_files"].value == f"{absent[1]}, {absent[2]}"


def test_a_file_the_scan_cannot_read_is_flagged_not_taken_into_the_baseline(
    tmp_path, monkeypatch, capsys
):
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    # Opening a folder fails as a root-only file does for a scan that is not run as root.
    unreadable = tmp_path / "sudoers"
    unreadable.mkdir()
    files = [str(passwd), str(unreadable)]

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        first = _materialize(instance, files)
    check = first.get_asset_check_evaluations()[0]
    baseline = first.asset_materializations_for_node("file_integrity")[0].metadata["baseline"]
    with pytest.raises(IntegrityError) as refused:
        _accept(tmp_path, dagster_home, monkeypatch, capsys)

    assert not check.passed
    assert check.metadata["unreadable_files"].value == str(unreadable)
    assert check.description == (
        f"unreadable: {unreadable}; let the user that runs file_integrity read the unreadable "
        "file(s) (a group with read access, say), or remove them from security.critical_files "
        "in $KAREN_OPS_CONFIG or on the security_settings resource"
    )
    assert str(unreadable) not in baseline.value
    assert str(refused.value).startswith(
        f"could not accept file changes: 1 critical file(s) are unreadable: {unreadable}; "
        "restore them or let file_integrity read them, or remove them from"
    )
