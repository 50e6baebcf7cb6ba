"""Turning observed alerts into notifications: dedup by fingerprint, group per route, wait,
repeat, resolve, and retry what a channel did not accept.

``observe`` records what the sensors saw; ``flush`` sends every group that is due. An alert
is announced once per delivery (``route/channel``) for each status it reaches; a delivery
that failed leaves its alerts pending, so the next flush tries again instead of losing them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from karen_ops.alerting.channels import Channel
from karen_ops.alerting.messages import Notification
from karen_ops.alerting.model import Alert, Status
from karen_ops.alerting.routing import AlertingConfig, Route
from karen_ops.alerting.state import AlertRecord, AlertStore, GroupRecord
from karen_ops.errors import DeliveryError

log = logging.getLogger(__name__)

# How long one flush may spend sending. Dagster gives a sensor evaluation 60 seconds by default
# (DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS) and the tick also reads its sources, so half of that is
# left for delivery; groups not started in time wait for the next tick.
FLUSH_BUDGET_SECONDS = 30.0
# The share of the budget one send may use: a channel that hangs for its whole share is not
# tried again in the same flush, so it leaves time for the channels that answer.
SEND_SHARE = 1 / 3


@dataclass
class FlushReport:
    """What one flush did: notifications sent and deliveries that failed, by channel."""

    sent: list[tuple[str, Notification]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    # Due groups left pending for the next tick because the time budget ran out.
    deferred: int = 0


@dataclass
class _Budget:
    """The monotonic deadline of one flush, and the channels that used up their share of it."""

    deadline: float
    send_seconds: float
    slow_channels: set[str] = field(default_factory=set)

    @classmethod
    def starting_now(cls, seconds: float) -> _Budget:
        return cls(time.monotonic() + seconds, seconds * SEND_SHARE)

    def allows(self, channel: str) -> bool:
        return channel not in self.slow_channels and time.monotonic() < self.deadline

    def send_deadline(self) -> float:
        return min(self.deadline, time.monotonic() + self.send_seconds)


@dataclass
class _Delivery:
    route: Route
    channel: str
    group_key: str
    records: list[AlertRecord] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.route.name}/{self.channel}"

    @property
    def state_key(self) -> str:
        return f"{self.channel}|{self.group_key}"


class Notifier:
    def __init__(
        self,
        config: AlertingConfig,
        channels: Mapping[str, Channel],
        store: AlertStore,
        *,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | logging.LoggerAdapter = log,
        defer_unknown_resolutions: bool = False,
        budget_seconds: float = FLUSH_BUDGET_SECONDS,
    ):
        self.config = config
        self.channels = channels
        self.store = store
        self.clock = clock
        self.log = logger
        # Set while the store stands in for Redis: a resolution it cannot match may belong to
        # an alert Redis holds, so it is kept for later instead of dropped.
        self.defer_unknown_resolutions = defer_unknown_resolutions
        self.budget_seconds = budget_seconds

    def observe(self, alerts: Iterable[Alert]) -> None:
        """Record firing alerts and resolutions; a resolution of nothing announced is dropped,
        or deferred when the store stands in for Redis."""
        records = self.store.alerts()
        for alert in alerts:
            known = records.get(alert.fingerprint)
            if alert.status is Status.FIRING:
                if known is None or known.alert.status is Status.RESOLVED:
                    record = AlertRecord(alert)
                else:
                    # Same alert still firing: keep when it started and who has heard of it.
                    record = AlertRecord(
                        replace(alert, starts_at=known.alert.starts_at), known.sent
                    )
            else:
                if known is None and self.defer_unknown_resolutions:
                    record = AlertRecord(alert, deferred=True)
                    self.store.put_alert(record)
                    records[alert.fingerprint] = record
                    continue
                if known is None or known.alert.status is Status.RESOLVED:
                    continue
                if not known.sent:
                    # Fired and recovered before anyone was told: nobody needs either notice.
                    self.store.delete_alert(alert.fingerprint)
                    records.pop(alert.fingerprint)
                    continue
                ended = alert.ends_at or self.clock()
                record = AlertRecord(known.alert.resolved(ended, alert.cause), known.sent)
            self.store.put_alert(record)
            records[alert.fingerprint] = record

    def flush(self, *, immediate: bool = False) -> FlushReport:
        """Send every due group within the time budget; ``immediate`` ignores the wait and
        interval timers. Groups the budget leaves no time for stay pending for the next flush."""
        report = FlushReport()
        budget = _Budget.starting_now(self.budget_seconds)
        with self.store.locked():
            records = self.store.alerts()
            groups = self.store.groups()
            deliveries = self._deliveries(records.values())
            for delivery in deliveries:
                group = groups.get(delivery.state_key) or GroupRecord()
                self._deliver(delivery, group, immediate, report, budget)
            self._forget_resolved(records.values())
            self._forget_sent_notices(deliveries)
        if report.deferred:
            self.log.warning(
                "alert delivery out of time budget=%.0fs deferred_groups=%d slow_channels=%s; "
                "they are sent next tick",
                self.budget_seconds,
                report.deferred,
                ",".join(sorted(budget.slow_channels)) or "none",
            )
        return report

    def _deliveries(self, records: Iterable[AlertRecord]) -> list[_Delivery]:
        deliveries: dict[tuple[str, str, str], _Delivery] = {}
        for record in records:
            if record.deferred:
                continue
            for route in self.config.routes_for(record.alert):
                for channel in route.channels:
                    if channel not in self.channels:
                        continue
                    group_key = route.group_key(record.alert)
                    key = (route.name, channel, group_key)
                    delivery = deliveries.setdefault(key, _Delivery(route, channel, group_key))
                    delivery.records.append(record)
        return list(deliveries.values())

    def _deliver(
        self,
        delivery: _Delivery,
        group: GroupRecord,
        immediate: bool,
        report: FlushReport,
        budget: _Budget,
    ) -> None:
        now = self.clock()
        route = delivery.route
        pending = [r for r in delivery.records if r.sent.get(delivery.id) != r.alert.status.value]
        firing = [r for r in delivery.records if r.alert.status is Status.FIRING]

        if pending and group.last_sent_at is None and group.first_pending_at is None:
            group.first_pending_at = now
        if pending:
            since = group.first_pending_at if group.last_sent_at is None else group.last_sent_at
            wait = (
                route.group_wait_seconds
                if group.last_sent_at is None
                else route.group_interval_seconds
            )
            due = immediate or group.failed or now - since >= wait
        else:
            repeat_from = group.last_sent_at
            # A one-off notice still held for a delivery that failed is not repeated elsewhere.
            due = any(not r.alert.one_off for r in firing) and (
                repeat_from is not None and now - repeat_from >= route.repeat_interval_seconds
            )
        if not due:
            self.store.put_group(delivery.state_key, group)
            return

        resolved_now = [r for r in pending if r.alert.status is Status.RESOLVED]
        notification = Notification(
            route=route.name,
            group_key=delivery.group_key,
            firing=tuple(sorted((r.alert for r in firing), key=lambda a: a.starts_at)),
            resolved=tuple(r.alert for r in resolved_now),
        )
        if not notification.alerts:
            return
        if not budget.allows(delivery.channel):
            # Nothing is marked sent and the timers stay due, so the next flush picks it up.
            self.store.put_group(delivery.state_key, group)
            report.deferred += 1
            return
        deadline = budget.send_deadline()
        try:
            self.channels[delivery.channel].send(notification, deadline=deadline)
        except DeliveryError as exc:
            if time.monotonic() >= deadline:
                budget.slow_channels.add(delivery.channel)
            group.failed = True
            self.store.put_group(delivery.state_key, group)
            report.failed.append((delivery.channel, str(exc)))
            self.log.warning(
                "alert delivery failed channel=%s route=%s group=%s alerts=%d: %s; "
                "trying again next tick",
                delivery.channel,
                route.name,
                delivery.group_key,
                len(notification.alerts),
                exc,
            )
            return

        for record in delivery.records:
            record.sent[delivery.id] = record.alert.status.value
            self.store.put_alert(record)
        self.store.put_group(delivery.state_key, GroupRecord(last_sent_at=now))
        report.sent.append((delivery.channel, notification))
        self.log.info(
            "alert notification sent channel=%s route=%s group=%s firing=%d resolved=%d",
            delivery.channel,
            route.name,
            delivery.group_key,
            len(notification.firing),
            len(notification.resolved),
        )

    def _forget_resolved(self, records: Iterable[AlertRecord]) -> None:
        """Drop resolved alerts once every delivery that heard them fire heard them resolve."""
        for record in records:
            if record.alert.status is not Status.RESOLVED or record.deferred:
                continue
            if all(status == Status.RESOLVED.value for status in record.sent.values()):
                self.store.delete_alert(record.alert.fingerprint)

    def _forget_sent_notices(self, deliveries: list[_Delivery]) -> None:
        """Drop one-off notices once every delivery that takes them has sent them; one that
        a channel refused stays, to be tried again next flush."""
        takers: dict[str, set[str]] = {}
        notices: dict[str, AlertRecord] = {}
        for delivery in deliveries:
            for record in delivery.records:
                if record.alert.one_off and record.alert.status is Status.FIRING:
                    takers.setdefault(record.alert.fingerprint, set()).add(delivery.id)
                    notices[record.alert.fingerprint] = record
        for fingerprint, record in notices.items():
            if all(record.sent.get(d) == Status.FIRING.value for d in takers[fingerprint]):
                self.store.delete_alert(fingerprint)
