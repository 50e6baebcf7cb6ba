"""SQL-injection patterns for request URIs.

Each pattern needs SQL syntax around a keyword (a quote before a tautology, UNION followed by
SELECT, a stacked statement after a semicolon, a timing function with parentheses), so an
ordinary path that merely contains a word like "select" or "update" does not match.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

# Inline comments (/**/) stand in for spaces in many attacks.
_GAP = r"(?:\s|/\*.*?\*/)+"

SQL_INJECTION = {
    "union_select": re.compile(rf"\bunion{_GAP}(?:all{_GAP}|distinct{_GAP})?select\b"),
    "quoted_tautology": re.compile(
        r"['\"`]\s*\)?\s*(?:or|and)\s+['\"`]?(\w+)['\"`]?\s*=\s*['\"`]?\1"
    ),
    "stacked_statement": re.compile(
        rf";(?:{_GAP})?(?:drop|truncate|alter|create|insert|delete|update|exec|shutdown)"
        rf"{_GAP}(?:table|database|into|from|set|\w+\s+set|master|$)"
    ),
    "time_delay": re.compile(r"\b(?:sleep|pg_sleep|benchmark)\s*\(\s*\d|\bwaitfor\s+delay\b"),
    "quote_then_comment": re.compile(r"['\"`]\s*\)?\s*(?:--|#|/\*)"),
    "schema_probe": re.compile(r"\binformation_schema\b|\bpg_catalog\.|\bpg_shadow\b"),
    "error_based": re.compile(r"\b(?:extractvalue|updatexml)\s*\(|\bconvert\s*\(\s*int\s*,"),
}


def decode_uri(uri: str) -> str:
    """The URI as the application would see it: percent-decoding applied twice (attacks
    double-encode to pass filters), plus signs as spaces, lower case."""
    decoded = uri
    for _ in range(2):
        decoded = unquote_plus(decoded, errors="replace")
    return decoded.lower()


def sql_injection_patterns(uri: str) -> list[str]:
    """Names of the patterns the decoded URI matches; empty for ordinary requests."""
    decoded = decode_uri(uri)
    return [name for name, pattern in SQL_INJECTION.items() if pattern.search(decoded)]
