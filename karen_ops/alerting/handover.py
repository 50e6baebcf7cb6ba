"""Run alerts that found Redis away, handed to the sensor that keeps state in its cursor.

A run-status sensor has no cursor of its own to hold an alert it could neither store nor
deliver, and failing its tick would only ask Dagster to offer the run again. Instead it tags
the run; ``asset_check_alerts`` picks tagged runs up on its next tick, builds their alerts
again from the instance, and keeps them (in Redis, or in its cursor while Redis is away)
until every channel has taken them.
"""

from __future__ import annotations

import time

import dagster as dg

from karen_ops.alerting.model import Alert
from karen_ops.alerting.resource import AlertingResource
from karen_ops.alerting.routing import AlertingConfig
from karen_ops.alerting.sources import failed_steps, run_failure_alert, run_recovery_alert

ALERT_TAG = "karen-ops/alert"
PENDING = "pending"
TAKEN = "taken"

# Tagged runs read per tick; more wait for the next one.
BATCH = 100


def hand_over(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    instance.add_run_tags(run.run_id, {ALERT_TAG: PENDING})


def pending_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    filters = dg.RunsFilter(tags={ALERT_TAG: PENDING})
    return list(reversed(instance.get_runs(filters=filters, limit=BATCH)))


def mark_taken(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> None:
    for run in runs:
        instance.add_run_tags(run.run_id, {ALERT_TAG: TAKEN})


def run_alert(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    alerting: AlertingResource,
    config: AlertingConfig,
) -> Alert:
    """The alert the run sensors would have raised: a failure, or a recovery."""
    link = alerting.run_link(run.run_id)
    if run.status is dg.DagsterRunStatus.SUCCESS:
        return run_recovery_alert(run, link, time.time(), config)
    failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    message = failures[-1].message if failures else ""
    steps = failed_steps(instance, run.run_id)
    return run_failure_alert(run, steps, message, link, time.time(), config)
