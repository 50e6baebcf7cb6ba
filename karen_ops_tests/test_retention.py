"""Retention over prepared stores: exactly what the policy says, never the last good backup."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from karen_ops.backups.retention import Action, RetentionConfig, plan_retention
from karen_ops.backups.retention_asset import backup_retention
from karen_ops.cli import main
from karen_ops.errors import StoreError
from karen_ops.resources.store import BackupStoreResource
from karen_ops.resources.store.catalog import list_backups, mark_verified, pin, read_catalog
from karen_ops.resources.store.file import FileStore

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
GFS_ONLY = {"postgres": 0}


def _backup(store, created: datetime, *, name="karen", kind="postgres", folder_id=None) -> str:
    backup_id = folder_id or created.strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(2).hex()
    folder = f"{kind}/{name}/{created:%Y-%m-%d}/{backup_id}/"
    store.put_bytes(folder + "data.zst", b"backup bytes")
    manifest = {
        "kind": kind,
        "backup_id": backup_id,
        "created_at": created.isoformat(),
        "size_bytes": 12,
        "database": name,
    }
    store.put_bytes(folder + "manifest.json", json.dumps(manifest).encode())
    return folder


def _daily_backups(store, first: date, last: date) -> None:
    day = first
    while day <= last:
        _backup(store, datetime(day.year, day.month, day.day, 12, tzinfo=UTC))
        day += timedelta(days=1)


def _kept_days(decisions) -> set[str]:
    return {f"{d.entry.created_at:%Y-%m-%d}" for d in decisions if d.action is Action.KEEP}


def test_grandfather_father_son_keeps_exactly_its_restore_points(tmp_path):
    store = FileStore(tmp_path)
    _daily_backups(store, date(2026, 9, 1), date(2026, 12, 3))

    decisions = plan_retention(list_backups(store), RetentionConfig(max_age_days=GFS_ONLY), NOW)

    daily = {f"2026-11-{d}" for d in (27, 28, 29, 30)} | {"2026-12-01", "2026-12-02", "2026-12-03"}
    weekly = {"2026-11-22", "2026-11-15"}  # plus 2026-12-03 and 2026-11-29, already daily
    monthly = {"2026-10-31", "2026-09-30"}  # plus 2026-12-03 and 2026-11-30
    assert _kept_days(decisions) == daily | weekly | monthly
    assert len(decisions) == 94


def test_age_rule_keeps_everything_younger_than_the_kind_allows(tmp_path):
    store = FileStore(tmp_path)
    _daily_backups(store, date(2026, 10, 1), date(2026, 12, 3))
    config = RetentionConfig(daily=0, weekly=0, monthly=0, max_age_days={"postgres": 30})

    kept = _kept_days(plan_retention(list_backups(store), config, NOW))

    assert min(kept) == "2026-11-05"  # 29 days and 0 hours before NOW
    assert len(kept) == 29


def test_creation_time_decides_not_the_object_name(tmp_path):
    store = FileStore(tmp_path)
    # The older backup's name sorts last.
    _backup(store, NOW - timedelta(days=90), folder_id="zzzz-oldest-by-time")
    _backup(store, NOW - timedelta(days=1), folder_id="aaaa-newest-by-time")
    config = RetentionConfig(daily=1, weekly=0, monthly=0, max_age_days=GFS_ONLY)

    decisions = plan_retention(list_backups(store), config, NOW)

    actions = {d.entry.backup_id: d.action for d in decisions}
    assert actions == {"aaaa-newest-by-time": Action.KEEP, "zzzz-oldest-by-time": Action.DELETE}


def test_newest_verified_and_pinned_backups_are_never_deleted(tmp_path):
    store = FileStore(tmp_path)
    verified = _backup(store, NOW - timedelta(days=200))
    pinned = _backup(store, NOW - timedelta(days=150))
    unverified_newer = _backup(store, NOW - timedelta(days=100))
    mark_verified(store, verified, {})
    pin(store, pinned, "pre-deploy", NOW)
    config = RetentionConfig(daily=0, weekly=0, monthly=0, max_age_days=GFS_ONLY)

    decisions = {d.entry.folder: d for d in plan_retention(list_backups(store), config, NOW)}

    assert decisions[verified].reasons == ["newest verified backup"]
    assert decisions[pinned].reasons == ["pinned: pre-deploy"]
    assert decisions[unverified_newer].action is Action.DELETE


def _run(store, **config):
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [backup_retention],
            resources={"backup_store": BackupStoreResource(url=store.url)},
            run_config={"ops": {"backup_retention": {"config": config}}},
            instance=instance,
            raise_on_error=False,
        )
        records = instance.all_logs(result.run_id)
    return result, records


def _recent_backups(store, days: int, verified: bool) -> list[str]:
    now = datetime.now(UTC)
    folders = [_backup(store, now - timedelta(days=100 + n)) for n in range(days)]
    for folder in folders if verified else []:
        mark_verified(store, folder, {})
    return folders


def test_plan_is_recorded_before_deleting_and_dry_run_deletes_nothing(tmp_path):
    store = FileStore(tmp_path)
    _recent_backups(store, 5, verified=False)
    policy = {"daily": 2, "weekly": 0, "monthly": 0, "max_age_days": GFS_ONLY}

    dry, _ = _run(store, dry_run=True, **policy)
    assert dry.success
    assert len(list_backups(store)) == 5

    result, records = _run(store, **policy)

    assert result.success
    assert len(list_backups(store)) == 2
    kinds = [
        r.dagster_event.event_type_value if r.dagster_event else r.user_message for r in records
    ]
    observed = kinds.index("ASSET_OBSERVATION")
    first_delete = next(i for i, k in enumerate(kinds) if str(k).startswith("deleted backup"))
    assert observed < first_delete
    metadata = result.asset_materializations_for_node("backup_retention")[0].metadata
    assert metadata["delete"].value == 3
    assert "| delete | no rule keeps it |" in metadata["plan"].value


def test_plan_leaving_too_few_verified_restore_points_is_refused(tmp_path):
    store = FileStore(tmp_path)
    _recent_backups(store, 5, verified=True)

    result, _ = _run(
        store, daily=1, weekly=0, monthly=0, max_age_days=GFS_ONLY, min_verified_restore_points=3
    )

    assert not result.success
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed
    assert check.description == (
        "karen would keep 1 of 5 verified backups (minimum 3); nothing was deleted"
    )
    assert len(list_backups(store)) == 5


def test_unfinished_uploads_older_than_a_day_are_removed(tmp_path):
    store = FileStore(tmp_path)
    _recent_backups(store, 1, verified=True)
    stale_folder = "postgres/karen/2026-11-01/20261101T020000Z-beef/"
    store.put_bytes(stale_folder + "database.dump.zst", b"no manifest was ever written")
    fresh_folder = datetime.now(UTC).strftime("postgres/karen/x/%Y%m%dT%H%M%SZ-cafe/")
    store.put_bytes(fresh_folder + "database.dump.zst", b"a backup still running")
    partial = store.upload("postgres/karen/2026-11-02/x/database.dump.zst")
    partial.write(b"half")
    old = (datetime.now(UTC) - timedelta(days=3)).timestamp()
    for path in tmp_path.rglob(".*partial*"):
        os.utime(path, (old, old))

    result, _ = _run(store)

    assert result.success
    metadata = result.asset_materializations_for_node("backup_retention")[0].metadata
    assert metadata["leftovers_removed"].value == 2
    assert not list(store.list_keys(stale_folder))
    assert list(store.list_keys(fresh_folder))
    assert store.incomplete_uploads() == []


def test_security_logs_are_kept_a_year_and_other_logs_a_month(tmp_path):
    store = FileStore(tmp_path)
    for kind in ("logs", "security_logs"):
        for age in (20, 200, 400):
            _backup(store, NOW - timedelta(days=age), name="web-1", kind=kind)
    config = RetentionConfig(daily=0, weekly=0, monthly=0)

    decisions = plan_retention(list_backups(store), config, NOW)

    kept = sorted(
        (d.entry.kind, (NOW - d.entry.created_at).days)
        for d in decisions
        if d.action is Action.KEEP
    )
    assert kept == [("logs", 20), ("security_logs", 20), ("security_logs", 200)]


def test_base_backups_are_left_to_their_own_retention(tmp_path):
    store = FileStore(tmp_path)
    base = _backup(store, datetime.now(UTC) - timedelta(days=400), kind="base")

    result, _ = _run(store, daily=0, weekly=0, monthly=0, max_age_days=GFS_ONLY)

    assert result.success
    assert [e.folder for e in list_backups(store)] == [base]


DAMAGED_MANIFESTS = [b"{", b"[]", json.dumps({"backup_id": "x", "created_at": 5}).encode()]


def _damaged_backup(store, name: str, body: bytes) -> str:
    """A backup of ``name`` whose manifest cannot be read; returns the manifest's key."""
    key = f"postgres/{name}/2026-11-01/20261101T020000Z-dead/manifest.json"
    store.put_bytes(key.replace("manifest.json", "data.zst"), b"backup bytes")
    store.put_bytes(key, body)
    return key


@pytest.mark.parametrize("body", DAMAGED_MANIFESTS)
def test_unreadable_manifest_holds_back_retention_of_its_own_database_only(tmp_path, body):
    store = FileStore(tmp_path)
    _recent_backups(store, 5, verified=False)
    crm = [_backup(store, datetime.now(UTC) - timedelta(days=100 + n), name="crm") for n in (1, 2)]
    damaged = _damaged_backup(store, "crm", body)

    result, _ = _run(store, daily=1, weekly=0, monthly=0, max_age_days=GFS_ONLY)

    assert not result.success
    assert [e.name for e in list_backups(store)] == ["crm", "crm", "karen"]
    assert {e.folder for e in read_catalog(store, "postgres/crm/").entries} == set(crm)
    assert list(store.list_keys(damaged.rpartition("/")[0]))
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data.user_failure_data.description.startswith(
        f"nothing under postgres/crm/ was deleted: manifest {store.location(damaged)} is "
        "unreadable ("
    )
    assert failure.step_failure_data.user_failure_data.description.endswith(
        "); move the folder aside or delete it"
    )
    metadata = result.asset_materializations_for_node("backup_retention")[0].metadata
    assert metadata["delete"].value == 4
    assert metadata["held_back"].value.startswith("nothing under postgres/crm/ was deleted")


def _leftovers(store, name: str) -> tuple[str, str]:
    """An old folder without a manifest and an old unfinished upload, both of ``name``."""
    orphan = f"postgres/{name}/2026-11-01/20261101T030000Z-beef/"
    store.put_bytes(orphan + "database.dump.zst", b"no manifest was ever written")
    upload = f"postgres/{name}/2026-11-02/20261102T030000Z-cafe/database.dump.zst"
    store.upload(upload).write(b"half")
    old = (datetime.now(UTC) - timedelta(days=3)).timestamp()
    for path in store.root.rglob(".*partial*"):
        os.utime(path, (old, old))
    return orphan, upload


def test_unreadable_manifest_keeps_the_leftovers_of_its_own_database_too(tmp_path):
    store = FileStore(tmp_path)
    _recent_backups(store, 1, verified=True)
    damaged = _damaged_backup(store, "crm", b"{")
    crm_orphan, crm_upload = _leftovers(store, "crm")
    karen_orphan, _ = _leftovers(store, "karen")

    result, _ = _run(store)

    assert not result.success
    assert list(store.list_keys(damaged.rpartition("/")[0]))
    assert list(store.list_keys(crm_orphan))
    assert [u.key for u in store.incomplete_uploads()] == [crm_upload]
    assert not list(store.list_keys(karen_orphan))
    metadata = result.asset_materializations_for_node("backup_retention")[0].metadata
    assert metadata["leftovers_removed"].value == 2
    assert "postgres/crm/" not in metadata["leftovers"].value
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data.user_failure_data.description.startswith(
        "nothing under postgres/crm/ was deleted: manifest "
    )


def test_listing_goes_on_past_an_unreadable_manifest_of_another_database(tmp_path, caplog):
    store = FileStore(tmp_path)
    kept = _backup(store, NOW - timedelta(days=1))
    damaged = _damaged_backup(store, "crm", b"{")

    assert [e.folder for e in list_backups(store)] == [kept]
    assert [e.folder for e in list_backups(store, "postgres/karen/")] == [kept]
    warning = f"manifest {store.location(damaged)} is unreadable ("
    assert any(warning in m and "move the folder aside" in m for m in caplog.messages)
    with pytest.raises(StoreError, match="move the folder aside or delete it"):
        list_backups(store, "postgres/crm/")


def test_backups_command_and_unpin_work_past_another_database_damaged(
    tmp_path, monkeypatch, capsys, caplog
):
    store = FileStore(tmp_path)
    pinned = _backup(store, NOW - timedelta(days=1))
    pin(store, pinned, "pre-deploy", NOW)
    damaged = _damaged_backup(store, "crm", b"[]")
    monkeypatch.setenv("KAREN_BACKUP_URL", store.url)
    monkeypatch.delenv("KAREN_BACKUP_ENCRYPTION_KEY", raising=False)

    assert main(["backups"]) == 0
    assert main(["unpin", list_backups(store)[0].backup_id]) == 0

    out, _ = capsys.readouterr()
    assert "karen" in out and "pre-deploy" in out
    assert any(f"manifest {store.location(damaged)} is unreadable" in m for m in caplog.messages)
    assert list_backups(store)[0].pin_label is None
