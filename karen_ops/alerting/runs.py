"""Finished runs, read from the instance's event log in the order they finished.

The run alerts read run outcomes from the event log with a cursor, rather than reacting to
one run at a time as a run-status sensor would, for three reasons. Every run counts, however
it was launched: schedule, UI, backfill, or ``dagster asset materialize`` on the command
line, whose runs a run-status sensor never sees. A failure and the success that resolves it
are read in the order they happened, even when both fall between two ticks. And the cursor
moves only once the tick has stored and delivered what it read, so a run is never held only
in Redis between being seen and being announced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

from karen_ops.alerting.model import Alert
from karen_ops.alerting.resource import AlertingResource
from karen_ops.alerting.routing import AlertingConfig
from karen_ops.alerting.sources import (
    FailedStep,
    run_failure_alert,
    run_recovery_alert,
    run_refusal_alert,
)
from karen_ops.failures import REFUSED

if TYPE_CHECKING:
    from dagster._utils.error import SerializableErrorInfo

# Run outcomes read per tick and kind; a longer backlog is read over the next ticks.
BATCH = 200
# A sensor without a cursor (just deployed, or reset) looks back this far, so a failure from
# just before it started is still announced without replaying the instance's whole history.
FIRST_LOOK_SECONDS = 3600

_OUTCOMES = (dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_SUCCESS)
# Where an error class comes from, as the first words of its recorded message say: karen-ops
# wrote its own errors' messages for operators; Dagster's wrappers only say which op failed.
_KAREN_OPS = "karen_ops."
_DAGSTER_WRAPPERS = "dagster._core.errors."


@dataclass(frozen=True)
class FinishedRun:
    storage_id: int
    run: dg.DagsterRun
    failed: bool
    message: str
    finished_at: float


def finished_runs(
    instance: dg.DagsterInstance, after_id: int | None, now: float
) -> list[FinishedRun]:
    """Runs that failed or succeeded after the cursor, oldest first."""
    batches = [_outcomes(instance, kind, after_id, now) for kind in _OUTCOMES]
    # A full batch may stop short of the other kind's newest record; read no further than
    # both batches reach, so no outcome is skipped and the order holds.
    reach = min((batch[-1].storage_id for batch in batches if len(batch) == BATCH), default=None)
    records = sorted((r for batch in batches for r in batch), key=lambda r: r.storage_id)
    if reach is not None:
        records = [r for r in records if r.storage_id <= reach]
    runs = _runs_by_id(instance, {r.run_id for r in records})
    return [
        FinishedRun(
            storage_id=record.storage_id,
            run=runs[record.run_id],
            failed=record.event_log_entry.dagster_event_type is dg.DagsterEventType.RUN_FAILURE,
            message=record.event_log_entry.message or "",
            finished_at=record.timestamp,
        )
        for record in records
        if record.run_id in runs  # a run deleted since it finished needs no alert
    ]


def run_alert(
    instance: dg.DagsterInstance,
    finished: FinishedRun,
    alerting: AlertingResource,
    config: AlertingConfig,
) -> Alert:
    """A failed run's alert, a one-off notice for a run karen-ops refused, or the resolution a
    successful run brings to its job and partition."""
    run, link = finished.run, alerting.run_link(finished.run.run_id)
    if not finished.failed:
        return run_recovery_alert(run, link, finished.finished_at, config)
    steps = failed_steps(instance, run.run_id)
    if steps and all(step.refused for step in steps):
        return run_refusal_alert(run, steps, link, finished.finished_at)
    return run_failure_alert(run, steps, finished.message, link, finished.finished_at, config)


def failed_steps(instance: dg.DagsterInstance, run_id: str) -> list[FailedStep]:
    """Each failed step with the root cause of its error, and whether karen-ops refused it."""
    steps = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        data = event.step_failure_data if event else None
        error = root_cause(data.error) if data and data.error else entry.message
        step = (event.step_key if event else None) or "?"
        steps.append(FailedStep(step, error, refused=_refused(data)))
    return steps


def root_cause(error: SerializableErrorInfo) -> str:
    """What explains a failed step: the outermost karen-ops error in the cause chain, whose
    message names the target, the reason and the fix; without one, the error the step's own
    code raised, under Dagster's wrapper that only names the op.

    The outermost one, because a karen-ops error raised from another adds what only the outer
    code knows (which database, which phase) around the inner message, or says less on
    purpose: a failed restore quotes pg_restore's output filtered of secrets, while the error
    it was raised from holds the unfiltered text."""
    chain = _chain(error)
    ours = [e for e in chain if _qualified_class(e).startswith(_KAREN_OPS)]
    if ours:
        return _message(ours[0])
    raised = [e for e in chain if not _qualified_class(e).startswith(_DAGSTER_WRAPPERS)]
    if not raised:
        return error.message.strip()
    found = raised[0]
    # dg.Failure is how step code fails on purpose: its description stands alone. Any other
    # class name often says most of it (KeyError: 'chat_id').
    if found.cls_name == "Failure" or not _qualified_class(found):
        return _message(found)
    return f"{found.cls_name}: {_message(found)}"


def _chain(error: SerializableErrorInfo) -> list[SerializableErrorInfo]:
    """The error and what it was raised from, outermost first; an explicit cause (``raise
    ... from``) is followed before the exception being handled, as Python's traceback does."""
    chain = []
    current: SerializableErrorInfo | None = error
    while current is not None:
        chain.append(current)
        current = current.cause or current.context
    return chain


def _qualified_class(error: SerializableErrorInfo) -> str:
    """The module and class that open the message, as ``traceback`` writes them; "" when the
    message does not open with its class."""
    head = error.message.split(":", 1)[0].strip()
    return head if error.cls_name and head.endswith(error.cls_name) else ""


def _message(error: SerializableErrorInfo) -> str:
    text = error.message.strip()
    head = _qualified_class(error)
    return text[len(head) :].removeprefix(":").strip() if head else text


def _refused(data) -> bool:
    failure = data.user_failure_data if data else None
    if failure is None or failure.metadata is None:
        return False
    marker = failure.metadata.get(REFUSED)
    return getattr(marker, "value", marker) is True


def _outcomes(
    instance: dg.DagsterInstance, kind: dg.DagsterEventType, after_id: int | None, now: float
) -> list[dg.EventLogRecord]:
    records_filter = dg.RunStatusChangeRecordsFilter(
        event_type=kind,
        after_storage_id=after_id,
        after_timestamp=None if after_id is not None else now - FIRST_LOOK_SECONDS,
    )
    result = instance.fetch_run_status_changes(records_filter, limit=BATCH, ascending=True)
    return list(result.records)


def _runs_by_id(instance: dg.DagsterInstance, run_ids: set[str]) -> dict[str, dg.DagsterRun]:
    if not run_ids:
        return {}
    runs = instance.get_runs(filters=dg.RunsFilter(run_ids=sorted(run_ids)))
    return {run.run_id: run for run in runs}
