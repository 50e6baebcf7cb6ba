"""Maintenance against real servers: bloat removed and measured, locks and windows respected."""

from __future__ import annotations

import logging
import time

import dagster as dg
import psycopg
import pytest

from karen_ops.maintenance.assets import postgres_reindex, postgres_vacuum, table_health
from karen_ops.maintenance.reindex import reindex_indexes
from karen_ops.maintenance.settings import MaintenanceConfig
from karen_ops.maintenance.statements import Outcome, run_one
from karen_ops.maintenance.vacuum import vacuum_statement, vacuum_tables
from karen_ops.resources.postgres import PostgresResource

log = logging.getLogger(__name__)


def _execute(db, *statements):
    with psycopg.connect(**db.psycopg_kwargs(), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _bloated_table(db, name: str, rows: int = 20000) -> None:
    # Autovacuum is off for the table so that the dead tuples wait for karen-ops.
    _execute(
        db,
        f"CREATE TABLE {name} (id int PRIMARY KEY, note text) WITH (autovacuum_enabled = off)",
        f"INSERT INTO {name} SELECT g, 'row ' || g FROM generate_series(1, {rows}) g",
        f"UPDATE {name} SET note = note || ' updated'",
        f"UPDATE {name} SET note = note || ' again'",
    )


def _materialize(db, *assets, run_config=None):
    return dg.materialize(
        list(assets),
        resources={"postgres": PostgresResource(database_url=db.public_dsn())},
        run_config=run_config,
        raise_on_error=False,
    )


def _autocommit(db):
    return psycopg.connect(**db.psycopg_kwargs(), autocommit=True)


def test_bloated_table_is_vacuumed_to_near_zero_dead_tuples_with_evidence(server):
    with server.database() as db:
        _bloated_table(db, "chat_cache")
        time.sleep(0.5)  # cumulative statistics are flushed about every second

        result = _materialize(db, table_health, postgres_vacuum, postgres_reindex)

    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["dead_tuples_within_threshold"].passed
    assert (
        "public.chat_cache: 40,000 dead of 60,000"
        in checks["dead_tuples_within_threshold"].description
    )
    vacuum = result.asset_materializations_for_node("postgres_vacuum")[0].metadata
    steps = vacuum["steps"].value
    assert vacuum["vacuumed"].value >= 1
    assert vacuum["dead_tuples_removed"].value >= 39000
    row = next(line for line in steps.splitlines() if line.startswith("| public.chat_cache "))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2] == "done"
    assert int(cells[3].replace(",", "")) >= 39000  # dead before
    assert int(cells[4].replace(",", "")) < 100  # dead after


def test_locked_table_is_skipped_after_the_lock_timeout_while_others_complete(server):
    with server.database() as db:
        _bloated_table(db, "locked_one")
        _bloated_table(db, "free_one")
        time.sleep(0.5)
        config = MaintenanceConfig(lock_timeout_seconds=0.5)

        with _autocommit(db) as holder, _autocommit(db) as conn:
            holder.execute("BEGIN")
            holder.execute("LOCK TABLE locked_one IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            report = vacuum_tables(conn, config, log)
            elapsed = time.monotonic() - started
            holder.execute("ROLLBACK")

    outcomes = {step.target: step for step in report.steps}
    assert outcomes["public.locked_one"].outcome is Outcome.SKIPPED_LOCK
    assert "lock timeout" in outcomes["public.locked_one"].reason
    assert outcomes["public.free_one"].outcome is Outcome.DONE
    assert outcomes["public.free_one"].after.dead_tuples < 100
    assert elapsed < 5


def test_spent_time_budget_starts_no_new_table(service_server):
    with service_server.database() as db:
        for name in ("first_t", "second_t", "third_t"):
            _bloated_table(db, name, rows=3000 + len(name))
        time.sleep(0.5)
        ticks = iter(range(0, 1000, 10))  # each look at the clock is ten seconds later
        config = MaintenanceConfig(time_budget_seconds=15)

        with _autocommit(db) as conn:
            report = vacuum_tables(conn, config, log, clock=lambda: next(ticks))

    assert [step.outcome for step in report.steps] == [
        Outcome.DONE,
        Outcome.SKIPPED_WINDOW,
        Outcome.SKIPPED_WINDOW,
    ]


def test_old_idle_in_transaction_session_is_named(service_server):
    with service_server.database() as db:
        _bloated_table(db, "held_back", rows=2000)
        with _autocommit(db) as holder, _autocommit(db) as conn:
            holder.execute("BEGIN")
            holder.execute("SELECT txid_current()")
            time.sleep(1.2)
            report = vacuum_tables(conn, MaintenanceConfig(old_transaction_seconds=1), log)
            pid = holder.info.backend_pid
            holder.execute("ROLLBACK")

    named = [str(h) for h in report.holding_back]
    assert any(text.startswith(f"pid {pid} (user ") for text in named), named
    assert any("idle in transaction" in text for text in named)


def test_invalid_index_fails_its_error_check_and_is_reported(server):
    with server.database() as db:
        _execute(db, "CREATE TABLE dupes (v int)", "INSERT INTO dupes VALUES (1), (1), (2)")
        with pytest.raises(psycopg.errors.UniqueViolation), _autocommit(db) as conn:
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY dupes_v_key ON dupes (v)")

        result = _materialize(db, table_health)

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    invalid = checks["no_invalid_indexes"]
    assert not invalid.passed
    assert invalid.severity == dg.AssetCheckSeverity.ERROR
    assert "public.dupes_v_key on public.dupes" in invalid.description
    assert checks["xid_age_within_limit"].passed


def test_interrupted_concurrent_rebuild_leaves_an_index_that_is_found(server):
    with server.database() as db:
        _execute(
            db,
            "CREATE TABLE big (id int, pad text)",
            "INSERT INTO big SELECT g, repeat('x', 50) FROM generate_series(1, 50000) g",
            "CREATE INDEX big_id_idx ON big (id)",
            "DELETE FROM big WHERE id % 10 <> 0",
            "VACUUM big",
        )
        config = MaintenanceConfig(
            reindex_min_bytes=0, lock_timeout_seconds=0.5, drop_leftover_invalid_indexes=False
        )
        with _autocommit(db) as writer, _autocommit(db) as conn:
            # An open writing transaction makes REINDEX CONCURRENTLY wait, then time out.
            writer.execute("BEGIN")
            writer.execute("UPDATE big SET pad = 'y' WHERE id = 10")
            interrupted = reindex_indexes(conn, config, log)
            writer.execute("ROLLBACK")
            finished = reindex_indexes(
                conn, config.model_copy(update={"drop_leftover_invalid_indexes": True}), log
            )

    assert interrupted.steps[0].target == "public.big_id_idx"
    assert interrupted.steps[0].outcome is Outcome.SKIPPED_LOCK
    assert interrupted.leftovers == ["public.big_id_idx_ccnew"]
    assert finished.dropped == ["public.big_id_idx_ccnew"]
    rebuilt = next(s for s in finished.steps if s.target == "public.big_id_idx")
    assert rebuilt.outcome is Outcome.DONE
    assert rebuilt.reclaimed_bytes > 0


def test_maintenance_statements_refuse_a_transaction_block(service_server):
    with (
        service_server.database() as db,
        psycopg.connect(**db.psycopg_kwargs()) as conn,
        pytest.raises(ValueError, match="autocommit"),
    ):
        run_one(conn, vacuum_statement("public.x", full=False))


def test_vacuum_full_only_for_tables_configured_for_it(service_server):
    with service_server.database() as db:
        _bloated_table(db, "rewrite_me", rows=3000)
        _bloated_table(db, "leave_me", rows=3000)
        time.sleep(0.5)
        config = MaintenanceConfig(vacuum_full_tables=["public.rewrite_me"])
        with _autocommit(db) as conn:
            report = vacuum_tables(conn, config, log)

    statements = {step.target: step.statement for step in report.steps}
    assert statements == {
        "public.rewrite_me": "VACUUM (FULL, ANALYZE)",
        "public.leave_me": "VACUUM (ANALYZE)",
    }
    full = next(s for s in report.steps if s.target == "public.rewrite_me")
    assert full.reclaimed_bytes > 0


def test_large_unused_index_warns_but_unique_ones_do_not(service_server):
    with service_server.database() as db:
        _execute(
            db,
            "CREATE TABLE events (id int PRIMARY KEY, kind text, code text UNIQUE)",
            "INSERT INTO events SELECT g, 'k' || (g % 7), 'c' || g FROM generate_series(1, 5000) g",
            "CREATE INDEX events_kind_idx ON events (kind)",
            "ANALYZE events",
        )
        config = {"ops": {"table_health": {"config": {"unused_index_min_bytes": 8192}}}}

        result = _materialize(db, table_health, run_config=config)

    unused = {c.check_name: c for c in result.get_asset_check_evaluations()}[
        "no_large_unused_indexes"
    ]
    assert not unused.passed
    assert unused.severity == dg.AssetCheckSeverity.WARN
    assert "public.events_kind_idx" in unused.description
    assert "events_pkey" not in unused.description
    assert "events_code_key" not in unused.description


def test_transaction_id_age_past_the_limit_is_an_error(service_server):
    with service_server.database() as db:
        _execute(db, "CREATE TABLE ledger (id int)", "INSERT INTO ledger VALUES (1)")
        config = {"ops": {"table_health": {"config": {"xid_age_limit": 0}}}}

        result = _materialize(db, table_health, run_config=config)

    xid = {c.check_name: c for c in result.get_asset_check_evaluations()}["xid_age_within_limit"]
    assert not xid.passed
    assert xid.severity == dg.AssetCheckSeverity.ERROR
    assert "public.ledger: transaction-ID age" in xid.description


def test_exclusion_and_pre_12_indexes_are_skipped_with_the_reason():
    from karen_ops.maintenance.reindex import _why_not_concurrently
    from karen_ops.maintenance.stats import IndexStats

    booking = IndexStats(
        "public", "rooms", "rooms_during_excl", 1 << 20, 0, False, False, False, "gist", True, None
    )

    assert "exclusion-constraint" in _why_not_concurrently(booking, concurrent=True)
    assert "older than PostgreSQL 12" in _why_not_concurrently(booking, concurrent=False)
