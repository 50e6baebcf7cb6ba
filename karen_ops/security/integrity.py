"""SHA-256 of the critical files against a baseline kept in the Dagster instance.

The baseline is the metadata entry ``baseline`` of the newest ``file_integrity`` event. Every
materialization carries the baseline in force (the first one records what it found) beside
what it ``observed``; only ``karen-ops integrity accept`` changes it, with an observation
whose baseline is what the newest materialization observed. The
instance is where asset history already lives, so every accept is on the asset's timeline
with its time and reason, and it is shared by every run worker and the command line alike.

A missing critical file is a finding on every run, never part of a baseline: its absence
is fixed by restoring the file or by removing it from ``security.critical_files``, not by
accepting it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import dagster as dg

from karen_ops.errors import KarenOpsError

ASSET = dg.AssetKey("file_integrity")
MISSING = "missing"
UNREADABLE = "unreadable"
_CHUNK = 1024 * 1024

# Where the watched list is set, named in every hint about a missing file.
_WATCHED_LIST = "security.critical_files in $KAREN_OPS_CONFIG or on the security_settings resource"


class IntegrityError(KarenOpsError):
    """The file-integrity baseline could not be read or accepted."""


@dataclass(frozen=True)
class Comparison:
    changed: list[str]
    missing: list[str]
    added: list[str]  # configured files that the baseline does not know yet

    @property
    def clean(self) -> bool:
        return not (self.changed or self.missing or self.added)


def hash_files(paths: list[str]) -> dict[str, str]:
    """Each path's SHA-256, or ``missing`` / ``unreadable``."""
    hashes = {}
    for path in paths:
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            hashes[path] = MISSING
            continue
        except OSError:
            hashes[path] = UNREADABLE
            continue
        hashes[path] = digest.hexdigest()
    return hashes


def compare(baseline: dict[str, str], current: dict[str, str]) -> Comparison:
    # Baselines recorded before missing files were left out may still hold them.
    known = present(baseline)
    return Comparison(
        changed=sorted(
            p for p, h in current.items() if p in known and h != known[p] and h != MISSING
        ),
        missing=sorted(p for p, h in current.items() if h == MISSING),
        added=sorted(p for p, h in current.items() if p not in known and h != MISSING),
    )


def present(hashes: dict[str, str]) -> dict[str, str]:
    """The hashes without the missing files: what a baseline may hold."""
    return {path: digest for path, digest in hashes.items() if digest != MISSING}


def describe(result: Comparison, listed: int) -> str | None:
    """What the check reports: the first ``listed`` problems, then how to fix each kind."""
    problems = (
        [f"changed: {p}" for p in result.changed]
        + [f"missing: {p}" for p in result.missing]
        + [f"not in baseline: {p}" for p in result.added]
    )
    if not problems:
        return None
    hints = []
    if result.changed or result.added:
        hints.append("if the change is expected, run `karen-ops integrity accept`")
    if result.missing:
        hints.append(f"restore the missing file(s), or remove them from {_WATCHED_LIST}")
    return "; ".join(problems[:listed] + hints)


def stored_baseline(instance: dg.DagsterInstance) -> dict[str, str] | None:
    """The newest baseline recorded for file_integrity, or None before the first run."""
    newest = _newest_with(instance, "baseline")
    return json.loads(newest[1]) if newest else None


@dataclass(frozen=True)
class Acceptance:
    baseline: dict[str, str]  # the hashes now accepted
    missing: list[str]  # critical files that were missing, left out and still flagged


def accept_latest(
    instance: dg.DagsterInstance, reason: str, allow_missing: bool = False
) -> Acceptance:
    """Make the hashes the newest file_integrity run saw the baseline.

    Refused while that run found critical files missing, unless ``allow_missing``: an
    operator accepting changes should learn that files are gone rather than pass over it.
    """
    newest = _newest_with(instance, "observed")
    if newest is None:
        raise IntegrityError(
            "could not accept file changes: file_integrity was never materialized in this "
            "Dagster instance; run it first (check DAGSTER_HOME points at the right instance)"
        )
    observed = json.loads(newest[1])
    missing = sorted(path for path, digest in observed.items() if digest == MISSING)
    if missing and not allow_missing:
        raise IntegrityError(
            f"could not accept file changes: {len(missing)} critical file(s) are missing: "
            f"{', '.join(missing)}; restore them, or remove them from {_WATCHED_LIST}, then run "
            "file_integrity again; to accept the files that exist now and keep the missing ones "
            "flagged, pass --allow-missing"
        )
    baseline = present(observed)
    instance.report_runless_asset_event(
        dg.AssetObservation(
            asset_key=ASSET,
            metadata={
                "baseline": json.dumps(baseline, sort_keys=True),
                "reason": reason,
                "missing_files": ", ".join(missing) or "none",
            },
            description="file-integrity baseline accepted by an operator",
        )
    )
    return Acceptance(baseline, missing)


def _newest_with(instance: dg.DagsterInstance, entry: str) -> tuple[int, str] | None:
    candidates = []
    for fetch in (instance.fetch_materializations, instance.fetch_observations):
        for record in fetch(ASSET, limit=1).records:
            metadata = _metadata(record)
            if entry in metadata:
                candidates.append((record.storage_id, metadata[entry].value))
    return max(candidates) if candidates else None


def _metadata(record: object) -> dict:
    event = record.event_log_entry.dagster_event  # type: ignore[attr-defined]
    data = event.event_specific_data
    inner = getattr(data, "materialization", None) or getattr(data, "asset_observation", None)
    return dict(inner.metadata) if inner is not None else {}
