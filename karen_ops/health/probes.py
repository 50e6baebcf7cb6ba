"""Running probes side by side under one deadline, so a hanging component delays nothing else.

A probe is a plain function that returns a :class:`Probe` or raises; it should also set its
own socket timeouts, so that its thread ends soon after the deadline instead of lingering.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class Verdict(enum.Enum):
    """How a probe ended."""

    HEALTHY = "healthy"  # answered, and the answer is within every threshold
    WARNING = "warning"  # answered, but a threshold that can wait is crossed
    FAILED = "failed"  # answered wrongly, or an error or threshold that cannot wait
    TIMED_OUT = "timed out"  # no answer before the deadline


@dataclass(frozen=True)
class Probe:
    """The result of one probe: its verdict, why, and the numbers that decided it."""

    verdict: Verdict
    detail: str
    metadata: dict[str, object] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.HEALTHY


def run_concurrently(
    probes: Mapping[K, Callable[[], Probe]],
    timeout_seconds: float,
    label: Callable[[K], str] = str,
) -> dict[K, Probe]:
    """Run every probe in its own thread; those unfinished after the timeout are TIMED_OUT.

    ``label`` names a probe's target in messages.
    """
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=max(1, len(probes)), thread_name_prefix="probe")
    futures = {name: pool.submit(_guarded, label(name), probe) for name, probe in probes.items()}
    wait(futures.values(), timeout=timeout_seconds)
    # Never wait for a hanging probe: its thread ends when its own socket timeout fires.
    pool.shutdown(wait=False, cancel_futures=True)

    results = {}
    for name, future in futures.items():
        if future.done():
            results[name] = future.result()
        else:
            results[name] = Probe(
                Verdict.TIMED_OUT,
                f"{label(name)} gave no answer within {timeout_seconds:g} seconds",
                {"timeout_seconds": timeout_seconds},
            )
    log.info(
        "probes finished count=%d failing=%d seconds=%.2f",
        len(results),
        sum(1 for r in results.values() if not r.passed),
        time.monotonic() - started,
    )
    return results


def _guarded(name: str, probe: Callable[[], Probe]) -> Probe:
    # Any error is a failing check of that component, never a crash of the whole run.
    try:
        return probe()
    except Exception as exc:
        log.warning("probe failed name=%s error=%s", name, type(exc).__name__)
        return Probe(Verdict.FAILED, f"{name} could not be probed: {exc}")


def elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
