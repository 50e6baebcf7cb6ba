"""Run metrics pushed to a real Pushgateway, and the shipped Prometheus rules under promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import requests

from karen_ops.alerting.metrics import push_run_metrics

RULES = Path(__file__).resolve().parents[1] / "karen_ops" / "alerting" / "rules"


def _backup_job(verified: bool, fail: bool) -> dg.Definitions:
    @dg.asset(name="postgres_backup")
    def postgres_backup():
        if fail:
            raise RuntimeError("pg_dump exited with 1")
        return dg.MaterializeResult(metadata={"size_bytes": dg.MetadataValue.int(123456)})

    @dg.asset(name="backup_verification", deps=[postgres_backup])
    def backup_verification():
        return dg.MaterializeResult(metadata={"verified": verified})

    job = dg.define_asset_job("nightly_backup")
    return dg.Definitions(assets=[postgres_backup, backup_verification], jobs=[job])


def _run(instance, *, verified=True, fail=False) -> dg.DagsterRun:
    job = _backup_job(verified, fail).resolve_job_def("nightly_backup")
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    return instance.get_run_by_id(result.run_id)


def _samples(gateway: str) -> dict[str, float]:
    """Every karen_ops sample of the nightly_backup group, keyed by name and asset label."""
    found = {}
    for line in requests.get(f"{gateway}/metrics", timeout=5).text.splitlines():
        if line.startswith("karen_ops_") and 'dagster_job="nightly_backup"' in line:
            name = line.split("{", 1)[0]
            if 'asset="' in line:
                name += "/" + line.split('asset="', 1)[1].split('"', 1)[0]
            found[name] = float(line.rsplit(" ", 1)[1])
    return found


def test_successful_backup_run_pushes_last_success_size_and_verification(pushgateway):
    with dg.DagsterInstance.ephemeral() as instance:
        run = _run(instance)
        assert push_run_metrics(instance, run, pushgateway)
        ended = instance.get_run_record_by_id(run.run_id).end_time

    samples = _samples(pushgateway)
    assert samples["karen_ops_backup_size_bytes"] == 123456
    assert samples["karen_ops_backup_verified"] == 1
    assert samples["karen_ops_run_failed"] == 0
    assert samples["karen_ops_run_last_success_timestamp_seconds"] == pytest.approx(ended)
    assert set(samples) >= {
        "karen_ops_asset_last_success_timestamp_seconds/postgres_backup",
        "karen_ops_asset_last_success_timestamp_seconds/backup_verification",
        "karen_ops_backup_last_verified_timestamp_seconds",
        "karen_ops_run_duration_seconds",
    }


def test_failed_run_marks_failure_and_keeps_the_last_success(pushgateway):
    with dg.DagsterInstance.ephemeral() as instance:
        good = _run(instance)
        push_run_metrics(instance, good, pushgateway)
        last_success = _samples(pushgateway)["karen_ops_run_last_success_timestamp_seconds"]

        bad = _run(instance, fail=True)
        assert bad.status == dg.DagsterRunStatus.FAILURE
        push_run_metrics(instance, bad, pushgateway)

    samples = _samples(pushgateway)
    assert samples["karen_ops_run_failed"] == 1
    assert samples["karen_ops_run_last_success_timestamp_seconds"] == last_success


def test_unreachable_pushgateway_is_logged_not_raised(caplog):
    with dg.DagsterInstance.ephemeral() as instance:
        run = _run(instance)
        assert push_run_metrics(instance, run, "http://127.0.0.1:1") is False
    assert "could not push metrics of run" in caplog.text


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed: apt-get install -y prometheus")
    return path


def test_promtool_accepts_the_shipped_rules():
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES / "karen-ops.rules.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def test_promtool_rule_test_fires_the_stale_backup_rule_after_26_hours():
    result = subprocess.run(
        [_promtool(), "test", "rules", "karen-ops.rules.test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
