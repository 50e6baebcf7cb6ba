"""Host probes: disk use per mount point and memory use of the machine running the probes."""

from __future__ import annotations

import shutil

import psutil

from karen_ops.health.probes import Probe, Verdict


def probe_disk(paths: list[str], limit_percent: float) -> Probe:
    metadata: dict[str, object] = {"limit_percent": limit_percent}
    full = []
    for path in paths:
        usage = shutil.disk_usage(path)
        percent = round(usage.used / usage.total * 100, 1) if usage.total else 0.0
        metadata[f"disk_percent {path}"] = percent
        if percent > limit_percent:
            full.append(f"{path} at {percent}% ({usage.free:,} bytes free)")
    if full:
        return Probe(
            Verdict.FAILED,
            f"disk use over {limit_percent:g}%: {'; '.join(full)}; free space or grow the volume",
            metadata,
        )
    return Probe(Verdict.HEALTHY, f"every disk under {limit_percent:g}%", metadata)


def probe_memory(limit_percent: float) -> Probe:
    memory = psutil.virtual_memory()
    metadata = {
        "memory_percent": memory.percent,
        "available_bytes": memory.available,
        "limit_percent": limit_percent,
    }
    if memory.percent > limit_percent:
        return Probe(
            Verdict.FAILED,
            f"memory use {memory.percent}% is over {limit_percent:g}% "
            f"({memory.available:,} bytes available)",
            metadata,
        )
    return Probe(Verdict.HEALTHY, f"memory use {memory.percent}%", metadata)
