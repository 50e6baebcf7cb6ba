"""Exact comparison of a restored database's inventory with the manifest's."""

from __future__ import annotations

from dataclasses import dataclass

from karen_ops.backups.manifest import Inventory


@dataclass(frozen=True)
class Mismatch:
    """One object whose restored value differs from the manifest; None means absent."""

    name: str
    expected: int | None
    restored: int | None

    def __str__(self) -> str:
        expected = "absent" if self.expected is None else self.expected
        restored = "absent" if self.restored is None else self.restored
        return f"{self.name}: manifest {expected}, restored {restored}"


def row_count_mismatches(expected: Inventory, restored: Inventory) -> list[Mismatch]:
    """Tables whose restored row count is not exactly the manifest's, or that appear or vanish."""
    names = sorted(set(expected.row_counts) | set(restored.row_counts))
    return [
        Mismatch(name, expected.row_counts.get(name), restored.row_counts.get(name))
        for name in names
        if expected.row_counts.get(name) != restored.row_counts.get(name)
    ]


def sequence_mismatches(expected: Inventory, restored: Inventory) -> list[Mismatch]:
    """Sequences missing after the restore, or restored behind their value at the snapshot.

    Sequences live outside transactions: pg_dump reads them a moment after the snapshot, so a
    busy database may restore a sequence ahead of the manifest, never behind it.
    """
    mismatches = []
    for name in sorted(set(expected.sequences) | set(restored.sequences)):
        want, got = expected.sequences.get(name), restored.sequences.get(name)
        missing = name not in restored.sequences or name not in expected.sequences
        if missing or _behind(want, got):
            mismatches.append(Mismatch(name, want, got))
    return mismatches


def _behind(expected: int | None, restored: int | None) -> bool:
    """A sequence that had been used must come back at least as far as it was."""
    return expected is not None and (restored is None or restored < expected)
