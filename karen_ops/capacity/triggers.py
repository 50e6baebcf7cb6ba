"""The runbook's scaling triggers, each judged met, not met, or not enough data.

Only what was observed decides. Daily snapshots are single samples: they can show that use was
not sustained (one sample below the line is enough), or that storage or connections are over
their limit when sampled, but never that CPU stayed above 70% for a whole hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from karen_ops.capacity.history import Series

# "Sustained" needs most of the week observed: five of its seven daily snapshots.
SUSTAINED_MIN_SAMPLES = 5


class TriggerState(Enum):
    MET = "met"  # the observations show the condition
    NOT_MET = "not met"  # the observations rule the condition out
    NOT_ENOUGH_DATA = "not enough data"  # nothing observed could decide it


@dataclass(frozen=True)
class Trigger:
    scaling: str  # "horizontal" or "vertical"
    rule: str
    state: TriggerState
    evidence: str


def evaluate_triggers(week: dict[str, Series], disk_threshold: float) -> list[Trigger]:
    """Judge every trigger from the week's snapshot series (cpu, memory, connections, disk)."""
    cpu, memory = week["cpu_percent"], week["memory_used_percent"]
    return [
        _needs_fine_samples("horizontal", "CPU over 70% for an hour", cpu),
        _needs_fine_samples("horizontal", "memory over 80% for 30 minutes", memory),
        Trigger(
            "horizontal",
            "response time over 2 s for 15 minutes",
            TriggerState.NOT_ENOUGH_DATA,
            "no response times are recorded by the capacity snapshots",
        ),
        _any_sample_over(
            "horizontal", "connections over 80% of the pool", week["connections_percent"], 80.0
        ),
        _sustained("vertical", "sustained CPU or memory use over 80%", [cpu, memory], 80.0),
        _latest_over(
            "vertical",
            f"storage over {disk_threshold:g}%",
            week["disk_used_percent"],
            disk_threshold,
        ),
    ]


def _needs_fine_samples(scaling: str, rule: str, series: Series) -> Trigger:
    samples = len(series.observed())
    return Trigger(
        scaling,
        rule,
        TriggerState.NOT_ENOUGH_DATA,
        f"{samples} daily sample(s) this week; a duration of minutes needs samples minutes apart",
    )


def _any_sample_over(scaling: str, rule: str, series: Series, limit: float) -> Trigger:
    observed = series.observed()
    if not observed:
        return Trigger(scaling, rule, TriggerState.NOT_ENOUGH_DATA, "no snapshot this week")
    day, peak = max(observed, key=lambda point: point[1])
    state = TriggerState.MET if peak > limit else TriggerState.NOT_MET
    return Trigger(scaling, rule, state, f"highest {peak:.1f}% on {day}, {len(observed)} samples")


def _latest_over(scaling: str, rule: str, series: Series, limit: float) -> Trigger:
    observed = series.observed()
    if not observed:
        return Trigger(scaling, rule, TriggerState.NOT_ENOUGH_DATA, "no snapshot this week")
    day, latest = observed[-1]
    state = TriggerState.MET if latest > limit else TriggerState.NOT_MET
    return Trigger(scaling, rule, state, f"{latest:.1f}% on {day}")


def _sustained(scaling: str, rule: str, candidates: list[Series], limit: float) -> Trigger:
    evidence = []
    undecided = False
    for series in candidates:
        observed = series.observed()
        below = [(day, value) for day, value in observed if value <= limit]
        if not below and len(observed) >= SUSTAINED_MIN_SAMPLES:
            return Trigger(
                scaling,
                rule,
                TriggerState.MET,
                f"{series.name} above {limit:g}% in all {len(observed)} samples",
            )
        if below:
            day, value = below[0]
            evidence.append(f"{series.name} {value:.1f}% on {day}")
        else:
            undecided = True
            evidence.append(
                f"{series.name}: {len(observed)} daily sample(s), {SUSTAINED_MIN_SAMPLES} needed"
            )
    state = TriggerState.NOT_ENOUGH_DATA if undecided else TriggerState.NOT_MET
    return Trigger(scaling, rule, state, "; ".join(evidence))
