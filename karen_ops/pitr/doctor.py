"""Is the server set up for continuous archiving? The report karen-ops doctor prints.

Each item names a setting, what the server has, what archiving needs, and whether it is met;
``settings_to_add`` turns the unmet ones into the exact statements to run.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

_QUERY = """
SELECT current_setting('wal_level'), current_setting('archive_mode'),
       current_setting('archive_command'), current_setting('max_wal_senders')::int,
       r.rolreplication OR r.rolsuper, current_user
FROM pg_roles r WHERE r.rolname = current_user
"""


@dataclass(frozen=True)
class ArchivingItem:
    setting: str
    current: str
    wanted: str
    ok: bool
    fix: str  # a statement to run, or what to do


def archiving_report(conn: psycopg.Connection, karen_ops: str = "karen-ops") -> list[ArchivingItem]:
    """What archiving through ``karen-ops wal-push`` needs, and what the server has."""
    wal_level, mode, command, senders, replication, user = conn.execute(_QUERY).fetchone()
    wanted_command = f"{karen_ops} wal-push %p"
    return [
        ArchivingItem(
            "wal_level",
            wal_level,
            "replica or logical",
            wal_level != "minimal",
            "ALTER SYSTEM SET wal_level = 'replica';  -- needs a restart",
        ),
        ArchivingItem(
            "archive_mode",
            mode,
            "on",
            mode in ("on", "always"),
            "ALTER SYSTEM SET archive_mode = 'on';  -- needs a restart",
        ),
        ArchivingItem(
            "archive_command",
            command or "(empty)",
            wanted_command,
            "wal-push" in (command or ""),
            f"ALTER SYSTEM SET archive_command = '{wanted_command}'; SELECT pg_reload_conf();",
        ),
        ArchivingItem(
            "max_wal_senders",
            str(senders),
            "at least 2 (pg_basebackup)",
            senders >= 2,
            "ALTER SYSTEM SET max_wal_senders = 10;  -- needs a restart",
        ),
        ArchivingItem(
            "replication rights",
            f"{user}: {'yes' if replication else 'no'}",
            "REPLICATION (pg_basebackup)",
            bool(replication),
            f"ALTER ROLE \"{user}\" REPLICATION;  -- and a pg_hba.conf line for 'replication'",
        ),
    ]


def settings_to_add(items: list[ArchivingItem]) -> list[str]:
    """The statements that fix every unmet item, in order."""
    return [item.fix for item in items if not item.ok]


def format_report(items: list[ArchivingItem]) -> str:
    lines = [
        f"{'ok' if i.ok else 'MISSING':<8} {i.setting:<20} {i.current}  (needs {i.wanted})"
        for i in items
    ]
    fixes = settings_to_add(items)
    if fixes:
        lines += ["", "Run on the server (as a superuser), then restart if noted:", *fixes]
    return "\n".join(lines)
