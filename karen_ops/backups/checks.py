"""The asset checks a verification answers, each one property with its deciding numbers."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from karen_ops.backups.compare import Mismatch, row_count_mismatches, sequence_mismatches
from karen_ops.backups.manifest import Inventory
from karen_ops.backups.verify import Verification

VERIFICATION = dg.AssetKey("backup_verification")

# Shown in the UI for each check; blocking, since a failure means the backup is not trustworthy.
CHECK_DESCRIPTIONS = {
    "checksum_matches": "The stored archive's SHA-256 and size equal the manifest's.",
    "restore_succeeded": "pg_restore restored the archive into a fresh scratch database.",
    "row_counts_match": "Every table's exact row count after the restore equals the manifest's.",
    "sequence_values_match": "Every sequence is restored at or past its value at the snapshot.",
    "large_object_count_matches": "The restored database holds as many large objects.",
}

CHECK_SPECS = [
    dg.AssetCheckSpec(name, asset=VERIFICATION, description=text, blocking=True)
    for name, text in CHECK_DESCRIPTIONS.items()
]

_LISTED = 20


def check_results(result: Verification) -> list[dg.AssetCheckResult]:
    return [
        _checksum(result),
        _restore(result),
        _mismatch_check(
            "row_counts_match", result, row_count_mismatches, lambda i: len(i.row_counts)
        ),
        _mismatch_check(
            "sequence_values_match", result, sequence_mismatches, lambda i: len(i.sequences)
        ),
        _large_objects(result),
    ]


def _checksum(result: Verification) -> dg.AssetCheckResult:
    manifest = result.manifest
    description = None
    if result.fetch_error:
        description = f"the archive could not be read: {result.fetch_error}"
    elif not result.checksum_ok:
        description = (
            f"stored archive has sha256 {result.sha256} and {result.stored_bytes} bytes; "
            f"the manifest says {manifest.sha256} and {manifest.size_bytes} bytes"
        )
    return dg.AssetCheckResult(
        check_name="checksum_matches",
        passed=result.checksum_ok,
        description=description,
        metadata={
            "expected_sha256": manifest.sha256,
            "actual_sha256": result.sha256,
            "expected_bytes": manifest.size_bytes,
            "actual_bytes": result.stored_bytes,
        },
    )


def _restore(result: Verification) -> dg.AssetCheckResult:
    metadata = {"pg_restore": result.pg_restore_version or "not run"}
    if "restore" in result.seconds:
        metadata["restore_seconds"] = result.seconds["restore"]
    return dg.AssetCheckResult(
        check_name="restore_succeeded",
        passed=result.restore_ok,
        description=result.restore_error,
        metadata=metadata,
    )


def _mismatch_check(
    name: str,
    result: Verification,
    compare: Callable[[Inventory, Inventory], list[Mismatch]],
    compared: Callable[[Inventory], int],
) -> dg.AssetCheckResult:
    if result.restored is None:
        return _not_compared(name, result)
    expected = result.manifest.inventory
    mismatches = compare(expected, result.restored)
    listed = "; ".join(str(m) for m in mismatches[:_LISTED])
    if len(mismatches) > _LISTED:
        listed += f"; and {len(mismatches) - _LISTED} more"
    return dg.AssetCheckResult(
        check_name=name,
        passed=not mismatches,
        description=f"{len(mismatches)} differ: {listed}" if mismatches else None,
        metadata={
            "compared": compared(expected),
            "mismatched": len(mismatches),
            "mismatches": listed or "none",
            "rows_expected": expected.total_rows,
            "rows_restored": result.restored.total_rows,
        },
    )


def _large_objects(result: Verification) -> dg.AssetCheckResult:
    if result.restored is None:
        return _not_compared("large_object_count_matches", result)
    expected = result.manifest.inventory.large_objects
    restored = result.restored.large_objects
    return dg.AssetCheckResult(
        check_name="large_object_count_matches",
        passed=expected == restored,
        description=None
        if expected == restored
        else (f"manifest {expected} large objects, restored {restored}"),
        metadata={"expected": expected, "restored": restored},
    )


def _not_compared(name: str, result: Verification) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=False,
        description=f"not compared: the restore did not succeed ({result.restore_error})",
    )
