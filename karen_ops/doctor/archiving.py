"""WAL archiving of the source server, for point-in-time recovery: optional, so it warns."""

from __future__ import annotations

import psycopg

from karen_ops import settings
from karen_ops.doctor.model import Finding, ok, skip, warn
from karen_ops.errors import KarenOpsError
from karen_ops.pitr.doctor import archiving_report
from karen_ops.resources.postgres import PostgresResource, connect


def archiving_checks(postgres: PostgresResource) -> list[Finding]:
    item = "wal archiving"
    if not (postgres.database_url or settings.env(settings.DATABASE_URL)):
        return [skip(item, f"needs {settings.DATABASE_URL}")]
    try:
        with connect(postgres.source(), setting=settings.DATABASE_URL) as conn:
            items = archiving_report(conn)
    except (KarenOpsError, psycopg.Error) as exc:
        return [skip(item, f"not checked: {exc}")]
    return [
        ok(f"wal {i.setting}", i.current)
        if i.ok
        else warn(f"wal {i.setting}", f"{i.current}, wanted {i.wanted}", i.fix)
        for i in items
    ]
