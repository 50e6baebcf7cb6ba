"""The sensors that raise alerts, for every job and asset check in the code location.

- ``run_failure_alerts``: a failed run becomes an alert (job, partition, failed steps, the
  error's first lines, a link to the run).
- ``run_success_resolutions``: a later successful run of the same job and partition resolves
  it; both run sensors also push the run's metrics to the Pushgateway.
- ``asset_check_alerts``: reads check evaluations, so non-blocking WARN and ERROR checks that
  do not fail their run still alert, and a passing evaluation resolves; every tick it also
  delivers whatever is due (grouped notices, repeats, retries of failed deliveries), including
  the run alerts the run sensors handed over because Redis was away.
- ``stale_backup_alert``: the newest verified backup older than the limit is critical.
"""

from __future__ import annotations

import time

import dagster as dg

from karen_ops.alerting.handover import (
    ALERT_TAG,
    PENDING,
    hand_over,
    mark_taken,
    pending_runs,
    run_alert,
)
from karen_ops.alerting.metrics import push_run_metrics
from karen_ops.alerting.model import Alert
from karen_ops.alerting.resource import AlertingResource
from karen_ops.alerting.routing import load_alerting_config
from karen_ops.alerting.sources import (
    CHECK_HISTORY,
    check_alerts,
    failed_steps,
    run_failure_alert,
    run_recovery_alert,
    stale_backup_alert,
)
from karen_ops.alerting.ticks import TickCursor, run_tick, skip_reason, store_alert
from karen_ops.resources.redis import RedisResource

# Alerts go out within one interval of what caused them.
INTERVAL_SECONDS = 30
# Staleness changes by the hour; looking every five minutes is plenty.
STALE_INTERVAL_SECONDS = 300


@dg.run_failure_sensor(
    name="run_failure_alerts",
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Raises an alert for every failed run of any job in this code location.",
)
def run_failure_alerts(
    context: dg.RunFailureSensorContext, alerting: AlertingResource, redis: RedisResource
) -> None:
    run = context.dagster_run
    now = time.time()
    alert = run_failure_alert(
        run,
        failed_steps(context.instance, run.run_id),
        context.failure_event.message or "",
        alerting.run_link(run.run_id),
        now,
        load_alerting_config(),
    )
    push_run_metrics(context.instance, run, alerting.pushgateway(), context.log)
    _store_or_hand_over(context, alerting, redis, alert)


@dg.run_status_sensor(
    name="run_success_resolutions",
    run_status=dg.DagsterRunStatus.SUCCESS,
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Resolves the failed-run alert of a job and partition that succeeded again, "
    "and pushes every finished run's metrics.",
)
def run_success_resolutions(
    context: dg.RunStatusSensorContext, alerting: AlertingResource, redis: RedisResource
) -> None:
    run = context.dagster_run
    resolution = run_recovery_alert(
        run, alerting.run_link(run.run_id), time.time(), load_alerting_config()
    )
    push_run_metrics(context.instance, run, alerting.pushgateway(), context.log)
    _store_or_hand_over(context, alerting, redis, resolution)


def _store_or_hand_over(
    context: dg.RunStatusSensorContext,
    alerting: AlertingResource,
    redis: RedisResource,
    alert: Alert,
) -> None:
    """Grouping and delivery happen in asset_check_alerts: store the alert in Redis for it,
    or, with Redis away, tag the run so that sensor builds the alert again and keeps it."""
    outage = store_alert(alerting, redis, alert, context.log)
    if outage:
        hand_over(context.instance, context.dagster_run)
        context.log.warning(
            f"alert for run {context.dagster_run.run_id} handed to asset_check_alerts "
            f"(tag {ALERT_TAG}={PENDING}): {outage}"
        )


@dg.sensor(
    name="asset_check_alerts",
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts on failed asset checks, blocking or not, resolves them when they "
    "pass, and delivers every alert that is due.",
)
def asset_check_alerts(
    context: dg.SensorEvaluationContext, alerting: AlertingResource, redis: RedisResource
) -> dg.SensorResult:
    cursor = TickCursor.parse(context.cursor)
    storage = context.instance.event_log_storage
    records = []
    for key in sorted(context.repository_def.asset_graph.asset_check_keys, key=str):
        history = storage.get_asset_check_execution_history(key, limit=CHECK_HISTORY)
        records += [r for r in history if cursor.after_id is None or r.id > cursor.after_id]
    alerts = list(check_alerts(records, alerting.asset_link))
    handed_over = pending_runs(context.instance)
    config = load_alerting_config()
    alerts += [run_alert(context.instance, run, alerting, config) for run in handed_over]

    outcome = run_tick(cursor, alerting, redis, alerts, context.log, sensor="asset_check_alerts")
    # The alerts now live in Redis or in the cursor returned below, which retry them.
    mark_taken(context.instance, handed_over)
    if records:
        cursor.after_id = max(r.id for r in records)
    return dg.SensorResult(skip_reason=skip_reason(outcome), cursor=cursor.dump())


@dg.sensor(
    name="stale_backup_alert",
    minimum_interval_seconds=STALE_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Critical alert when the newest verified backup_verification is older than "
    "the limit (26 hours by default), which also catches a stopped scheduler.",
)
def stale_backup_alert_sensor(
    context: dg.SensorEvaluationContext, alerting: AlertingResource, redis: RedisResource
) -> dg.SensorResult:
    cursor = TickCursor.parse(context.cursor)
    alert = stale_backup_alert(
        context.instance,
        load_alerting_config(),
        time.time(),
        alerting.asset_link("backup_verification"),
    )
    outcome = run_tick(cursor, alerting, redis, [alert], context.log, sensor="stale_backup_alert")
    return dg.SensorResult(skip_reason=skip_reason(outcome), cursor=cursor.dump())


SENSORS = [
    run_failure_alerts,
    run_success_resolutions,
    asset_check_alerts,
    stale_backup_alert_sensor,
]
