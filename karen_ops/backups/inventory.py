"""Exact counts of what a database holds: rows per table, sequence values, large objects.

The backup counts inside the snapshot that pg_dump dumps; the verification counts the scratch
restore the same way, so the two inventories compare exactly.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from karen_ops.backups.manifest import Inventory

# Ordinary tables whose data pg_dump writes: not catalogs, not temporary tables, and not
# tables that belong to an extension (pg_dump leaves their data to the extension).
_TABLES = """
SELECT n.nspname, c.relname, has_table_privilege(c.oid, 'SELECT')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema'
  AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""

_SEQUENCES = """
SELECT schemaname, sequencename, last_value
FROM pg_sequences
WHERE schemaname <> 'information_schema' AND schemaname NOT LIKE 'pg\\_%'
ORDER BY 1, 2
"""

_LARGE_OBJECTS = "SELECT count(*) FROM pg_largeobject_metadata"


def take_inventory(conn: psycopg.Connection) -> Inventory:
    """Count everything in the connection's current transaction (and so its snapshot)."""
    with conn.cursor() as cur:
        tables = cur.execute(_TABLES).fetchall()
        row_counts = {
            f"{schema}.{table}": _count_rows(cur, schema, table) for schema, table, _ in tables
        }

        sequences = {
            f"{schema}.{name}": last_value
            for schema, name, last_value in cur.execute(_SEQUENCES).fetchall()
        }
        large_objects = cur.execute(_LARGE_OBJECTS).fetchone()[0]
    return Inventory(row_counts=row_counts, sequences=sequences, large_objects=large_objects)


def unreadable_tables(conn: psycopg.Connection) -> list[str]:
    """Tables whose data the connected role may not read, and so cannot dump."""
    rows = conn.execute(_TABLES).fetchall()
    return [f"{schema}.{table}" for schema, table, readable in rows if not readable]


def _count_rows(cur: psycopg.Cursor, schema: str, table: str) -> int:
    # ONLY: a parent's count must not include its inheritance children, as pg_dump's doesn't.
    query = sql.SQL("SELECT count(*) FROM ONLY {}.{}").format(
        sql.Identifier(schema), sql.Identifier(table)
    )
    return cur.execute(query).fetchone()[0]
