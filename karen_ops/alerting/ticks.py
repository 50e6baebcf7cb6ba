"""One alerting tick: open the state (Redis, else the cursor), observe, deliver, report.

When Redis cannot be reached the tick keeps the alert records in its cursor, delivers what
it saw at once (no one else can group it later), and one sensor raises an alert about the
outage itself. When Redis is back, the cursor's records move into it, resolutions seen
meanwhile of alerts Redis holds are applied there, and the outage resolves.

A channel that is misconfigured is left out with an error in the log; the others deliver.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from karen_ops.alerting.channels import Channel
from karen_ops.alerting.metrics import push_delivery_failures
from karen_ops.alerting.model import Alert, Status
from karen_ops.alerting.notifier import FlushReport, Notifier
from karen_ops.alerting.resource import AlertingResource
from karen_ops.alerting.routing import AlertingConfig, load_alerting_config
from karen_ops.alerting.sources import state_outage_alert
from karen_ops.alerting.state import AlertRecord, AlertStore, MemoryAlertStore, RedisAlertStore
from karen_ops.errors import StateUnavailable
from karen_ops.resources.redis import RedisResource


@dataclass
class TickCursor:
    """A sensor's cursor: how far it has read, the alert state while Redis is away, and how
    many deliveries each channel has refused."""

    after_id: int | None = None
    fallback: dict | None = None
    failures: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> TickCursor:
        return cls(**json.loads(text)) if text else cls()

    def dump(self) -> str:
        fields = {"after_id": self.after_id, "fallback": self.fallback, "failures": self.failures}
        return json.dumps(fields, sort_keys=True)


@dataclass
class TickOutcome:
    report: FlushReport
    state_outage: str | None
    observed: list[Alert] = field(default_factory=list)


def redis_store(redis: RedisResource, config: AlertingConfig) -> RedisAlertStore:
    """The Redis store, checked with a PING so an outage shows before anything is written."""
    store = RedisAlertStore(
        redis.client(),
        prefix=f"{redis.prefix()}alerts:",
        ttl_seconds=int(config.state_ttl_hours * 3600),
        where=redis.describe(),
    )
    store.ping()
    return store


def run_tick(
    cursor: TickCursor,
    alerting: AlertingResource,
    redis: RedisResource,
    alerts: list[Alert],
    logger,
    *,
    sensor: str,
    report_outage: bool = False,
    clock: Callable[[], float] = time.time,
) -> TickOutcome:
    config = load_alerting_config()
    outage: str | None = None
    store: AlertStore
    try:
        store = redis_store(redis, config)
    except StateUnavailable as exc:
        outage = str(exc)
        logger.warning("alert state unavailable, keeping it in the sensor cursor: %s", exc)
        store = MemoryAlertStore.from_dict(cursor.fallback)
    else:
        if cursor.fallback:
            _move_into(MemoryAlertStore.from_dict(cursor.fallback), store)

    notifier = Notifier(
        config,
        _usable_channels(alerting, logger),
        store,
        clock=clock,
        logger=logger,
        defer_unknown_resolutions=outage is not None,
    )
    if report_outage:
        outage_alert = state_outage_alert(redis.describe(), outage or "", clock())
        if outage:
            alerts = [*alerts, outage_alert]
        else:
            alerts = [*alerts, outage_alert.resolved(clock(), cause="Redis answers again")]
    notifier.observe(alerts)

    report = notifier.flush(immediate=outage is not None)
    cursor.fallback = store.to_dict() if isinstance(store, MemoryAlertStore) else None
    _count_failures(cursor, report, alerting, sensor, logger)
    return TickOutcome(report, outage, alerts)


def _count_failures(
    cursor: TickCursor, report: FlushReport, alerting: AlertingResource, sensor: str, logger
) -> None:
    if not report.failed:
        return
    for channel, _ in report.failed:
        cursor.failures[channel] = cursor.failures.get(channel, 0) + 1
    push_delivery_failures(alerting.pushgateway(), sensor, cursor.failures, logger)


def _usable_channels(alerting: AlertingResource, logger) -> dict[str, Channel]:
    channels, problems = alerting.usable_channels()
    for name, problem in sorted(problems.items()):
        logger.error("alert channel %s left out: %s", name, problem)
    return channels


def _move_into(source: MemoryAlertStore, target: RedisAlertStore) -> None:
    known = target.alerts()
    for fingerprint, record in source.alerts().items():
        if record.deferred:
            _apply_deferred(record, known.get(fingerprint), target)
        elif fingerprint not in known:
            target.put_alert(record)
    for key, group in source.groups().items():
        target.put_group(key, group)


def _apply_deferred(
    resolution: AlertRecord, held: AlertRecord | None, target: RedisAlertStore
) -> None:
    """Resolve the alert Redis holds; a resolution of nothing announced needs no notice."""
    if held is None or held.alert.status is not Status.FIRING:
        return
    if not held.sent:
        target.delete_alert(held.alert.fingerprint)
        return
    ended = resolution.alert.ends_at or resolution.alert.starts_at
    target.put_alert(AlertRecord(held.alert.resolved(ended, resolution.alert.cause), held.sent))


def skip_reason(outcome: TickOutcome) -> dg.SkipReason:
    sent = ", ".join(sorted({channel for channel, _ in outcome.report.sent})) or "nothing"
    failed = ", ".join(sorted({channel for channel, _ in outcome.report.failed}))
    text = f"sent to {sent}"
    if failed:
        text += f"; failed on {failed}, tried again next tick"
    if outcome.report.deferred:
        text += f"; {outcome.report.deferred} group(s) out of time, sent next tick"
    if outage := outcome.state_outage:
        text += f"; alert state kept in the cursor: {outage}"
    return dg.SkipReason(text)
