"""Delete finished Dagster runs (and their event logs) older than a number of days.

Dagster 1.13 prunes schedule and sensor ticks itself (``retention:`` in dagster.yaml) but never
runs, so a five-minute ``health_check`` adds about 100,000 runs a year. Run this daily against
the instance in $DAGSTER_HOME (deploy/systemd/karen-ops-prune-runs.timer does)::

    python scripts/prune_runs.py --job health_check=14 --default-days 180

Runs still queued or in progress are never touched. Deleting a run also deletes its
materialization events, so keep backup jobs for at least as long as their backups are kept:
the UI's history of a backup is its only record outside the store's manifests.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES, RunsFilter

log = logging.getLogger("karen_ops.prune_runs")

# Deleting in pages keeps each storage transaction short on a large instance.
PAGE = 200


def prune_runs(
    instance: dg.DagsterInstance,
    *,
    days_by_job: dict[str, int],
    default_days: int | None,
    now: datetime | None = None,
) -> dict[str, int]:
    """Delete finished runs past their job's age; return how many were deleted per job."""
    now = now or datetime.now(UTC)
    deleted: dict[str, int] = {}
    jobs = set(days_by_job)
    if default_days is not None:
        jobs |= {record.dagster_run.job_name for record in instance.get_run_records()}
    for job in sorted(jobs):
        days = days_by_job.get(job, default_days)
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        runs_filter = RunsFilter(
            job_name=job, statuses=list(FINISHED_STATUSES), updated_before=cutoff
        )
        count = 0
        while records := instance.get_run_records(filters=runs_filter, limit=PAGE):
            for record in records:
                instance.delete_run(record.dagster_run.run_id)
                count += 1
        if count:
            deleted[job] = count
        log.info("pruned job=%s older_than_days=%d runs=%d", job, days, count)
    return deleted


def _job_days(text: str) -> tuple[str, int]:
    job, _, days = text.partition("=")
    if not job or not days.isdigit():
        raise argparse.ArgumentTypeError(f"expected JOB=DAYS, e.g. health_check=14, not {text!r}")
    return job, int(days)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--job", type=_job_days, action="append", default=[], metavar="JOB=DAYS",
        help="keep finished runs of JOB for DAYS days (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--default-days", type=int, help="keep finished runs of every other job this long"
    )
    args = parser.parse_args(argv)
    if not args.job and args.default_days is None:
        parser.error("name at least one --job JOB=DAYS or --default-days DAYS")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    with dg.DagsterInstance.get() as instance:
        deleted = prune_runs(instance, days_by_job=dict(args.job), default_days=args.default_days)
    print(f"deleted {sum(deleted.values())} finished run(s): {deleted or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
