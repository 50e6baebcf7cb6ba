"""SHA-256 of the critical files against a baseline kept in the Dagster instance.

The baseline is the metadata entry ``baseline`` of the newest ``file_integrity`` event. Every
materialization carries the baseline in force (the first one records what it found) beside
what it ``observed``; only ``karen-ops integrity accept`` changes it, with an observation
whose baseline is what the newest materialization observed. The
instance is where asset history already lives, so every accept is on the asset's timeline
with its time and reason, and it is shared by every run worker and the command line alike.

A missing or unreadable critical file is a finding on every run, never part of a baseline:
a file the scan cannot read is a file it cannot watch (``/etc/sudoers`` is readable by root
alone), fixed by restoring the file, granting read access, or removing it from
``security.critical_files``, not by accepting it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import dagster as dg

from karen_ops.errors import KarenOpsError

ASSET = dg.AssetKey("file_integrity")
MISSING = "missing"
UNREADABLE = "unreadable"
_UNVERIFIED = (MISSING, UNREADABLE)
_CHUNK = 1024 * 1024

# Where the watched list is set, named in every hint about a missing file.
_WATCHED_LIST = "security.critical_files in $KAREN_OPS_CONFIG or on the security_settings resource"


class IntegrityError(KarenOpsError):
    """The file-integrity baseline could not be read or accepted."""


@dataclass(frozen=True)
class Comparison:
    changed: list[str]
    missing: list[str]
    unreadable: list[str]
    added: list[str]  # configured files that the baseline does not know yet

    @property
    def clean(self) -> bool:
        return not (self.changed or self.missing or self.unreadable or self.added)


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
    hashed = present(current)
    return Comparison(
        changed=sorted(p for p, h in hashed.items() if p in known and h != known[p]),
        missing=sorted(p for p, h in current.items() if h == MISSING),
        unreadable=sorted(p for p, h in current.items() if h == UNREADABLE),
        added=sorted(p for p in hashed if p not in known),
    )


def present(hashes: dict[str, str]) -> dict[str, str]:
    """The hashes of the files that were read: what a baseline may hold."""
    return {path: digest for path, digest in hashes.items() if digest not in _UNVERIFIED}


def describe(result: Comparison, listed: int) -> str | None:
    """What the check reports: the first ``listed`` problems, then how to fix each kind."""
    problems = (
        [f"changed: {p}" for p in result.changed]
        + [f"missing: {p}" for p in result.missing]
        + [f"unreadable: {p}" for p in result.unreadable]
        + [f"not in baseline: {p}" for p in result.added]
    )
    if not problems:
        return None
    hints = []
    if result.changed or result.added:
        hints.append("if the change is expected, run `karen-ops integrity accept`")
    if result.missing:
        hints.append(f"restore the missing file(s), or remove them from {_WATCHED_LIST}")
    if result.unreadable:
        hints.append(
            "let the user that runs file_integrity read the unreadable file(s) (a group with "
            f"read access, say), or remove them from {_WATCHED_LIST}"
        )
    return "; ".join(problems[:listed] + hints)


def stored_baseline(instance: dg.DagsterInstance) -> dict[str, str] | None:
    """The newest baseline recorded for file_integrity, or None before the first run."""
    newest = _newest_with(instance, "baseline")
    return json.loads(newest[1]) if newest else None


@dataclass(frozen=True)
class Acceptance:
    baseline: dict[str, str]  # the hashes now accepted
    missing: list[str]  # critical files that were missing, left out and still flagged
    unreadable: list[str] = field(default_factory=list)  # likewise, for files not readable


def accept_latest(
    instance: dg.DagsterInstance, reason: str, allow_missing: bool = False
) -> Acceptance:
    """Make the hashes the newest file_integrity run saw the baseline.

    Refused while that run found critical files missing or unreadable, unless
    ``allow_missing``: an operator accepting changes should learn that files are gone or out of
    sight rather than pass over it.
    """
    newest = _newest_with(instance, "observed")
    if newest is None:
        raise IntegrityError(
            "could not accept file changes: file_integrity was never materialized in this "
            "Dagster instance; run it first (check DAGSTER_HOME points at the right instance)"
        )
    observed = json.loads(newest[1])
    missing = sorted(path for path, digest in observed.items() if digest == MISSING)
    unreadable = sorted(path for path, digest in observed.items() if digest == UNREADABLE)
    if (missing or unreadable) and not allow_missing:
        raise _refusal(missing, unreadable)
    baseline = present(observed)
    instance.report_runless_asset_event(
        dg.AssetObservation(
            asset_key=ASSET,
            metadata={
                "baseline": json.dumps(baseline, sort_keys=True),
                "reason": reason,
                "missing_files": ", ".join(missing) or "none",
                "unreadable_files": ", ".join(unreadable) or "none",
            },
            description="file-integrity baseline accepted by an operator",
        )
    )
    return Acceptance(baseline, missing, unreadable)


def _refusal(missing: list[str], unreadable: list[str]) -> IntegrityError:
    kinds = " or ".join(kind for kind, paths in _kinds(missing, unreadable) if paths)
    remedy = "restore them" + (" or let file_integrity read them" if unreadable else "")
    return IntegrityError(
        f"could not accept file changes: {len(missing) + len(unreadable)} critical file(s) are "
        f"{kinds}: {', '.join(sorted(missing + unreadable))}; {remedy}, or remove them from "
        f"{_WATCHED_LIST}, then run file_integrity again; to accept the files that exist now "
        f"and keep the {kinds} ones flagged, pass --allow-missing"
    )


def _kinds(missing: list[str], unreadable: list[str]) -> list[tuple[str, list[str]]]:
    return [("missing", missing), ("unreadable", unreadable)]


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
