"""Alerts built from what the Dagster instance recorded: failed and recovered runs, asset
check evaluations, and the age of the newest verified backup."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

from karen_ops.alerting.messages import redact, shorten
from karen_ops.alerting.model import Alert, IncidentLevel, Severity, make_labels, severity_of_check
from karen_ops.alerting.routing import AlertingConfig
from karen_ops.partitions import PARTITION_TAG

RUN_FAILED = "DagsterRunFailed"
RUN_REFUSED = "DagsterRunRefused"
CHECK_FAILED = "AssetCheckFailed"
BACKUP_STALE = "VerifiedBackupStale"
STATE_UNAVAILABLE = "AlertStateUnavailable"

VERIFICATION = dg.AssetKey("backup_verification")
# The job Dagster files runs of hand-picked assets under ("__ASSET_JOB", with a suffix in
# code locations that have several partitions definitions).
HIDDEN_ASSET_JOB = "__ASSET_JOB"

# Check executions read per check and tick; more than this between two ticks is a backlog
# whose oldest part no longer matters, as each check's newest result decides its state.
CHECK_HISTORY = 50


@dataclass(frozen=True)
class FailedStep:
    step: str
    error: str  # the root cause, as the step's failure event recorded it
    refused: bool = False  # karen-ops declined the request before any work


def run_failure_alert(
    run: dg.DagsterRun, steps: list[FailedStep], message: str, link: str, at: float,
    config: AlertingConfig,
) -> Alert:  # fmt: skip
    partition = run.tags.get(PARTITION_TAG)
    where = f" for partition {partition}" if partition else ""
    details = [f"run {run.run_id}"]
    details += [f"step {step.step} failed: {shorten(step.error)}" for step in steps]
    if not steps:
        details.append(message.strip() or "the run failed before any step ran")
    return Alert(
        labels=_run_labels(run, config),
        summary=f"{what_ran(run)} failed{where}"
        + (f" at step {', '.join(s.step for s in steps)}" if steps else ""),
        impact=_run_impact(run),
        details=redact("\n".join(details)),
        link=link,
        starts_at=at,
    )


def run_refusal_alert(run: dg.DagsterRun, steps: list[FailedStep], link: str, at: float) -> Alert:
    """A run whose every failed step karen-ops refused before doing any work, such as a backup
    of a partition too old to be taken now: a warning for whoever launched it.

    It is a one-off notice rather than an alert that waits for a resolution: the refusal is
    over when it is announced, and the success that resolves a failed run never comes, as the
    same request is refused every time. A refusal is also no failure of the job or partition,
    so it goes under its own alert name and leaves their failed-run alerts alone."""
    partition = run.tags.get(PARTITION_TAG)
    where = f" for partition {partition}" if partition else ""
    how, who = launched_by(run)
    details = [f"run {run.run_id}, launched {who}"]
    details += [f"step {step.step} refused: {shorten(step.error)}" for step in steps]
    assets = picked_assets(run)
    return Alert(
        labels=make_labels(
            RUN_REFUSED,
            Severity.WARNING,
            job=run.job_name,
            assets=",".join(assets) or None,
            partition=partition,
            launched_by=how,
        ),
        summary=f"{what_ran(run)} was refused{where}",
        impact="the request was refused before any work began: nothing was changed and "
        "nothing was lost; launch it again as the reason below says",
        details="\n".join(details),
        link=link,
        level=IncidentLevel.P3,
        starts_at=at,
        one_off=True,
    )


def launched_by(run: dg.DagsterRun) -> tuple[str, str]:
    """How a run was launched, as a label value routes can match and in words."""
    tags = run.tags
    if name := tags.get("dagster/schedule_name"):
        return "schedule", f"by schedule {name}"
    if name := tags.get("dagster/sensor_name"):
        return "sensor", f"by sensor {name}"
    if backfill := tags.get("dagster/backfill"):
        return "backfill", f"by backfill {backfill}"
    if user := tags.get("dagster/user"):
        return "hand", f"by {user}"
    return "hand", "by hand (command line, UI or API)"


def run_recovery_alert(run: dg.DagsterRun, link: str, at: float, config: AlertingConfig) -> Alert:
    """The resolution of a failed-run alert: a later run of the same job (or the same hand-picked
    assets) and partition passed."""
    alert = Alert(
        labels=_run_labels(run, config),
        summary=f"{what_ran(run)} succeeded again",
        impact="",
        link=link,
        starts_at=at,
    )
    return alert.resolved(at, cause=f"run {run.run_id} succeeded")


def what_ran(run: dg.DagsterRun) -> str:
    """The job by name; for a run of hand-picked assets (``dagster asset materialize``, the UI's
    Materialize button, a backfill from an asset's page), which Dagster files under one hidden
    job, the assets."""
    assets = picked_assets(run)
    return f"materialization of {', '.join(assets)}" if assets else f"job {run.job_name}"


def picked_assets(run: dg.DagsterRun) -> list[str]:
    """The assets of a run of Dagster's hidden asset job; [] for a run of a named job."""
    if not run.job_name.startswith(HIDDEN_ASSET_JOB) or not run.asset_selection:
        return []
    return sorted(key.to_user_string() for key in run.asset_selection)


def _run_labels(run: dg.DagsterRun, config: AlertingConfig) -> dict[str, str]:
    """What identifies a run alert: the job, or the hand-picked assets, and the partition, so
    that only a later success of the same work resolves it."""
    assets = picked_assets(run)
    critical = run.job_name in config.critical_jobs or bool(
        set(assets) & set(config.critical_assets)
    )
    return make_labels(
        RUN_FAILED,
        Severity.CRITICAL if critical else Severity.WARNING,
        job=run.job_name,
        assets=",".join(assets) or None,
        partition=run.tags.get(PARTITION_TAG),
    )


def check_alerts(records: Iterable[AssetCheckExecutionRecord], link_for_asset) -> Iterable[Alert]:
    """A firing alert per failed evaluation, a resolution per passed one, oldest first."""
    for record in sorted(records, key=lambda r: r.id):
        if record.status not in (
            AssetCheckExecutionRecordStatus.FAILED,
            AssetCheckExecutionRecordStatus.SUCCEEDED,
        ):
            continue
        evaluation = _evaluation(record)
        check_severity = evaluation.severity.value if evaluation else "ERROR"
        severity = severity_of_check(check_severity)
        asset = record.key.asset_key.to_user_string()
        labels = make_labels(
            CHECK_FAILED,
            severity,
            asset=asset,
            check=record.key.name,
            partition=record.partition,
        )
        where = f" for partition {record.partition}" if record.partition else ""
        link = link_for_asset(asset)
        alert = Alert(
            labels=labels,
            summary=f"check {record.key.name} on {asset} failed{where} ({check_severity})",
            impact=_check_impact(check_severity, evaluation),
            details=_check_details(record, evaluation, link),
            link=link,
            starts_at=record.create_timestamp,
        )
        if record.status is AssetCheckExecutionRecordStatus.SUCCEEDED:
            alert = alert.resolved(record.create_timestamp, cause=f"run {record.run_id} passed")
        yield alert


def stale_backup_alert(
    instance: dg.DagsterInstance, config: AlertingConfig, now: float, link: str
) -> Alert:
    """Firing when the newest verified backup is older than the limit (or there is none)."""
    newest = newest_verified_backup(instance)
    limit = config.stale_backup_hours * 3600
    labels = make_labels(BACKUP_STALE, Severity.CRITICAL, asset=VERIFICATION.to_user_string())
    if newest is None:
        summary = "no verified backup of the AI Karen database exists"
        started = now
    else:
        age_hours = (now - newest.timestamp) / 3600
        summary = (
            f"the newest verified backup (partition {newest.partition_key or 'none'}) is "
            f"{age_hours:.1f} hours old, over the {config.stale_backup_hours:g}-hour limit"
        )
        started = newest.timestamp + limit
    alert = Alert(
        labels=labels,
        summary=summary,
        impact="a restore today would lose more than a day of chats and accounts; check that "
        "the nightly_backup schedule and the Dagster daemon are running",
        level=IncidentLevel.P0,
        link=link,
        starts_at=started,
    )
    if newest is not None and now - newest.timestamp <= limit:
        return alert.resolved(now, cause=f"partition {newest.partition_key} verified")
    return alert


def newest_verified_backup(instance: dg.DagsterInstance):
    """The newest backup_verification materialization whose metadata says it verified."""
    result = instance.fetch_materializations(VERIFICATION, limit=20)
    for record in result.records:
        materialization = record.asset_materialization
        verified = materialization.metadata.get("verified") if materialization else None
        if verified is not None and getattr(verified, "value", verified) is True:
            return record
    return None


def state_outage_alert(where: str, reason: str, at: float) -> Alert:
    return Alert(
        labels=make_labels(STATE_UNAVAILABLE, Severity.WARNING, store=where),
        summary=f"alert state in {where} cannot be reached",
        impact="alerts still go out, but without grouping across ticks or repeat timers; "
        "a failed run seen while it lasts is announced on its own",
        details=redact(reason),
        starts_at=at,
    )


def _evaluation(record: AssetCheckExecutionRecord):
    event = record.event.dagster_event if record.event else None
    return event.event_specific_data if event else None


def _check_details(record: AssetCheckExecutionRecord, evaluation, link: str) -> str:
    """The check's own description; for a failure without one, which would tell nobody
    anything, where to look instead."""
    description = evaluation.description if evaluation else None
    if description or record.status is not AssetCheckExecutionRecordStatus.FAILED:
        return redact(description or "")
    asset = record.key.asset_key.to_user_string()
    return (
        f"check {record.key.name} on {asset} failed; its result carries no description, see {link}"
    )


def _check_impact(check_severity: str, evaluation) -> str:
    if check_severity == "ERROR":
        return "the asset cannot be trusted until this is fixed"
    return "degraded but usable; fix within working hours"


_BACKUP_MISSING = (
    "last night's backup or its verification is missing: a restore would have to fall back to "
    "an older backup"
)
_JOB_IMPACTS = {
    "nightly_backup": _BACKUP_MISSING,
    "weekly_maintenance": "dead tuples and bloat keep growing until maintenance succeeds",
}
_ASSET_IMPACTS = {"postgres_backup": _BACKUP_MISSING, "backup_verification": _BACKUP_MISSING}


def _run_impact(run: dg.DagsterRun) -> str:
    assets = picked_assets(run)
    if not assets:
        return _JOB_IMPACTS.get(run.job_name, f"the work of job {run.job_name} did not happen")
    known = [_ASSET_IMPACTS[asset] for asset in assets if asset in _ASSET_IMPACTS]
    return known[0] if known else f"{', '.join(assets)} did not materialize"
