"""The sensors that raise alerts, for every job and asset check in the code location.

- ``run_failure_alerts``: reads finished runs from the event log (see ``runs``); a failed run
  becomes an alert (job, partition, failed steps, each step's root cause, a link to the run),
  a later success of the same job and partition resolves it, a run karen-ops refused is a
  one-off warning to whoever launched it, and every finished run's metrics
  go to the Pushgateway. It alone reports an outage of the alert state, so an outage is
  announced once.
- ``asset_check_alerts``: reads check evaluations, so non-blocking WARN and ERROR checks that
  do not fail their run still alert, and a passing evaluation resolves.

Every tick also delivers whatever is due in the shared state: grouped notices, repeats, and
retries of deliveries a channel refused.
- ``stale_backup_alert``: the newest verified backup older than the limit is critical.
"""

from __future__ import annotations

import time

import dagster as dg

from karen_ops.alerting.metrics import push_run_metrics
from karen_ops.alerting.resource import AlertingResource
from karen_ops.alerting.routing import load_alerting_config
from karen_ops.alerting.runs import finished_runs, run_alert
from karen_ops.alerting.sources import CHECK_HISTORY, check_alerts, stale_backup_alert
from karen_ops.alerting.ticks import TickCursor, run_tick, skip_reason
from karen_ops.resources.redis import RedisResource

RUN_SENSOR = "run_failure_alerts"

# Alerts go out within one interval of what caused them.
INTERVAL_SECONDS = 30
# Staleness changes by the hour; looking every five minutes is plenty.
STALE_INTERVAL_SECONDS = 300


@dg.sensor(
    name=RUN_SENSOR,
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Raises an alert for every failed run, however it was launched (schedule, UI, "
    "backfill or command line), resolves it when the same job and partition succeeds again, "
    "pushes every finished run's metrics, and reports an outage of the alert state in Redis.",
)
def run_failure_alerts(
    context: dg.SensorEvaluationContext, alerting: AlertingResource, redis: RedisResource
) -> dg.SensorResult:
    cursor = TickCursor.parse(context.cursor)
    finished = finished_runs(context.instance, cursor.after_id, time.time())
    config = load_alerting_config()
    alerts = [run_alert(context.instance, entry, alerting, config) for entry in finished]
    for entry in finished:
        push_run_metrics(context.instance, entry.run, alerting.pushgateway(), context.log)

    outcome = run_tick(
        cursor, alerting, redis, alerts, context.log, sensor=RUN_SENSOR, report_outage=True
    )
    if finished:
        cursor.after_id = finished[-1].storage_id
    return dg.SensorResult(skip_reason=skip_reason(outcome), cursor=cursor.dump())


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

    outcome = run_tick(cursor, alerting, redis, alerts, context.log, sensor="asset_check_alerts")
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
    asset_check_alerts,
    stale_backup_alert_sensor,
]
