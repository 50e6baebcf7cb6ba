"""file_integrity: a changed critical file stays flagged across runs until it is accepted."""

from __future__ import annotations

import argparse

import dagster as dg
import pytest

from karen_ops.security import commands
from karen_ops.security.definitions import build_definitions
from karen_ops.security.settings import SecuritySettingsResource
from karen_ops.settings import ScheduleSettings


def _run(instance, files):
    defs = build_definitions(ScheduleSettings())
    assets = [a for a in defs.assets if a.key.to_user_string() == "file_integrity"]
    result = dg.materialize(
        assets,
        partition_key="2026-11-20",
        resources={"security_settings": SecuritySettingsResource(critical_files=files)},
        instance=instance,
    )
    return result.get_asset_check_evaluations()[0]


def _accept(home, dagster_home, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    parser = argparse.ArgumentParser(prog="karen-ops")
    commands.add_commands(parser.add_subparsers(required=True))
    args = parser.parse_args(["integrity", "accept", "--reason", "nginx upgrade"])
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


def test_accept_before_any_run_says_what_to_do(tmp_path, monkeypatch, capsys):
    from karen_ops.security.integrity import IntegrityError

    (tmp_path / "dagster").mkdir()
    with pytest.raises(IntegrityError, match="file_integrity was never materialized"):
        _accept(tmp_path, tmp_path / "dagster", monkeypatch, capsys)
