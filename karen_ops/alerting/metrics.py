"""Run metrics pushed to a Prometheus Pushgateway after every run (the batch-job convention).

One group per Dagster job (``job="karen_ops", dagster_job=<name>``), pushed with POST so a
failed run replaces only the failure metrics and the last success time survives it:

- ``karen_ops_run_last_finish_timestamp_seconds``: when a run of the job last finished;
- ``karen_ops_run_duration_seconds``: how long that run took;
- ``karen_ops_run_failed``: 1 if that run failed, else 0;
- ``karen_ops_run_last_success_timestamp_seconds``: when a run last succeeded;
- ``karen_ops_asset_last_success_timestamp_seconds{asset}``: per asset it materialized;
- ``karen_ops_backup_size_bytes``: stored size of the backup a run took;
- ``karen_ops_backup_verified``: 1 if the run's verification restored and compared, else 0;
- ``karen_ops_backup_last_verified_timestamp_seconds``: when a backup last verified.

The delivering sensors push one more group (``dagster_sensor=<name>``):

- ``karen_ops_alert_delivery_failures_total{channel}``: deliveries a channel refused since the
  sensor's cursor began; each failed delivery is tried again on the next tick.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import dagster as dg

from karen_ops.alerting.channels.http import TIMEOUT_SECONDS, public_target

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)

PUSH_JOB = "karen_ops"


def push_run_metrics(
    instance: dg.DagsterInstance, run: dg.DagsterRun, gateway: str | None, logger=log
) -> bool:
    """Push the run's metrics; a Pushgateway that is down is logged, never raised."""
    if not gateway:
        return False
    from prometheus_client import pushadd_to_gateway  # on use: loading need not pay for it

    registry = run_metrics(instance, run)
    try:
        pushadd_to_gateway(
            gateway,
            job=PUSH_JOB,
            grouping_key={"dagster_job": run.job_name},
            registry=registry,
            timeout=TIMEOUT_SECONDS,
        )
    except OSError as exc:
        logger.warning(
            "could not push metrics of run %s to %s: %s; check KAREN_PUSHGATEWAY_URL",
            run.run_id,
            public_target(gateway),
            exc,
        )
        return False
    return True


def push_delivery_failures(
    gateway: str | None, sensor: str, failures: dict[str, int], logger=log
) -> bool:
    """Push a sensor's failed-delivery counts; a Pushgateway that is down is logged."""
    if not gateway:
        return False
    from prometheus_client import CollectorRegistry, Counter, pushadd_to_gateway

    registry = CollectorRegistry()
    counter = Counter(
        "karen_ops_alert_delivery_failures",
        "Alert deliveries a channel refused.",
        ["channel"],
        registry=registry,
    )
    for channel, count in sorted(failures.items()):
        counter.labels(channel=channel).inc(count)
    try:
        pushadd_to_gateway(
            gateway,
            job=PUSH_JOB,
            grouping_key={"dagster_sensor": sensor},
            registry=registry,
            timeout=TIMEOUT_SECONDS,
        )
    except OSError as exc:
        logger.warning(
            "could not push alert delivery failures to %s: %s; check KAREN_PUSHGATEWAY_URL",
            public_target(gateway),
            exc,
        )
        return False
    return True


def run_metrics(instance: dg.DagsterInstance, run: dg.DagsterRun) -> CollectorRegistry:
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    record = instance.get_run_record_by_id(run.run_id)
    stats = instance.get_run_stats(run.run_id)
    finished = (record.end_time if record else None) or stats.end_time or 0.0
    started = (record.start_time if record else None) or stats.start_time or finished
    failed = run.status == dg.DagsterRunStatus.FAILURE

    _gauge(registry, "karen_ops_run_last_finish_timestamp_seconds", "Last run end.", finished)
    _gauge(registry, "karen_ops_run_duration_seconds", "Last run duration.", finished - started)
    _gauge(registry, "karen_ops_run_failed", "1 if the last run failed.", 1.0 if failed else 0.0)
    if failed:
        return registry

    _gauge(registry, "karen_ops_run_last_success_timestamp_seconds", "Last success.", finished)
    assets = Gauge(
        "karen_ops_asset_last_success_timestamp_seconds",
        "When each asset was last materialized.",
        ["asset"],
        registry=registry,
    )
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.asset_materialization
        if materialization is None:
            continue
        asset = materialization.asset_key.to_user_string()
        assets.labels(asset=asset).set(entry.timestamp)
        _backup_metrics(registry, asset, materialization.metadata, entry.timestamp)
    return registry


def _backup_metrics(registry, asset: str, metadata, at: float) -> None:
    if asset == "postgres_backup" and "size_bytes" in metadata:
        size = float(metadata["size_bytes"].value)
        _gauge(registry, "karen_ops_backup_size_bytes", "Stored size of the last backup.", size)
    if asset == "backup_verification" and "verified" in metadata:
        verified = bool(metadata["verified"].value)
        _gauge(registry, "karen_ops_backup_verified", "1 if the last backup verified.", verified)
        if verified:
            _gauge(
                registry,
                "karen_ops_backup_last_verified_timestamp_seconds",
                "When a backup last verified.",
                at,
            )


def _gauge(registry: CollectorRegistry, name: str, text: str, value: float) -> None:
    from prometheus_client import Gauge

    Gauge(name, text, registry=registry).set(float(value))
