"""wal_retention: base backups by count, age, pins and the newest verified one; WAL cut at the
oldest kept base backup's start, never a file that recovering the newest verified one needs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from karen_ops.pitr import walstore
from karen_ops.pitr.basebackup import BaseBackupRequest, take_base_backup
from karen_ops.pitr.basemanifest import BaseManifest, list_base_backups
from karen_ops.pitr.continuity import check_continuity
from karen_ops.pitr.resource import PitrResource
from karen_ops.pitr.retention import (
    Action,
    BaseBackup,
    WalRetentionConfig,
    plan_wal_retention,
)
from karen_ops.pitr.retention_asset import wal_retention
from karen_ops.pitr.walnames import segment_name
from karen_ops.resources.store import BackupStoreResource
from karen_ops.resources.store.catalog import CatalogEntry, mark_verified
from karen_ops.resources.store.file import FileStore

pytest_plugins = ["karen_ops_tests.pitr_fixtures"]
log = logging.getLogger(__name__)

MiB = 1024 * 1024
NOW = datetime(2026, 12, 20, 3, 0, tzinfo=UTC)


def base_backup(age_days: int, start_segno: int, *, verified=False, pin=None) -> BaseBackup:
    created = NOW - timedelta(days=age_days)
    backup_id = f"{created:%Y%m%dT%H%M%SZ}-0000"
    folder = f"base/c/{created:%Y-%m-%d}/{backup_id}/"
    start = segment_name(1, start_segno, MiB)
    manifest = BaseManifest(
        backup_id=backup_id,
        name="c",
        created_at=created.isoformat(),
        finished_at=created.isoformat(),
        duration_seconds=1.0,
        server_version="15.8",
        pg_basebackup_version="15.8",
        archive_key=folder + "base.tar.zst",
        compression="zstd:3",
        encryption="none",
        size_bytes=100,
        tar_bytes=200,
        sha256="0" * 64,
        timeline=1,
        start_lsn=f"0/{start_segno * MiB + 0x28:X}",
        end_lsn=f"0/{start_segno * MiB + 0x200:X}",
        start_wal_file=start,
        wal_segment_bytes=MiB,
    )
    entry = CatalogEntry("base", "c", backup_id, created, folder, 100, verified, pin)
    return BaseBackup(entry, manifest)


def archive_names() -> set[str]:
    names = {segment_name(1, segno, MiB) for segno in range(1, 46)}
    names |= {segment_name(2, segno, MiB) for segno in range(29, 46)}
    names |= {"00000002.history", "000000010000000000000002.00000028.backup"}
    names.add("00000001000000000000001D.partial")  # segno 29: the branch of timeline 2
    return names


def ten_daily_backups(*, pin_oldest: bool) -> list[BaseBackup]:
    """One a day, aged 0 to 9 days; the 8-day-old one is the only verified one."""
    return [
        base_backup(
            age,
            (10 - age) * 4,
            verified=age == 8,
            pin="before upgrade" if pin_oldest and age == 9 else None,
        )
        for age in range(10)
    ]


def test_plan_keeps_newest_count_young_pinned_and_newest_verified_and_cuts_wal_at_the_pin() -> None:
    config = WalRetentionConfig(keep_count=3, max_age_days=4.5)
    plan = plan_wal_retention(ten_daily_backups(pin_oldest=True), archive_names(), config, NOW)

    reasons = {
        (NOW - d.backup.entry.created_at).days: (d.action, d.reasons) for d in plan.decisions
    }
    assert reasons[0] == (Action.KEEP, ["newest 3", "younger than 4.5 days"])
    assert reasons[4] == (Action.KEEP, ["younger than 4.5 days"])
    assert reasons[8] == (Action.KEEP, ["newest verified base backup"])
    assert reasons[9] == (Action.KEEP, ["pinned: before upgrade"])
    assert sorted(age for age, (action, _) in reasons.items() if action is Action.DELETE) == [
        5,
        6,
        7,
    ]
    # The pinned backup starts in segment 4: everything before it goes, on every timeline.
    assert plan.cutoff_segment == "000000010000000000000004"
    assert plan.wal_deleted == [
        "000000010000000000000001",
        "000000010000000000000002",
        "000000010000000000000002.00000028.backup",
        "000000010000000000000003",
    ]


def test_plan_without_pins_cuts_wal_at_the_newest_verified_backup_and_keeps_history() -> None:
    config = WalRetentionConfig(keep_count=3, max_age_days=4.5)
    names = archive_names()
    plan = plan_wal_retention(ten_daily_backups(pin_oldest=False), names, config, NOW)

    assert [d.action for d in plan.decisions].count(Action.DELETE) == 4
    assert plan.cutoff_segment == "000000010000000000000008"
    assert plan.wal_deleted[0] == "000000010000000000000001"
    assert plan.wal_deleted[-1] == "000000010000000000000007"
    assert len(plan.wal_deleted) == 8  # segments 1 to 7 and the .backup file
    kept = names - set(plan.wal_deleted)
    assert {"00000002.history", "00000001000000000000001D.partial"} <= kept
    assert plan.wal_kept == len(kept)


def test_plan_follows_the_clock_and_the_default_policy_of_seven_or_thirty_days() -> None:
    backups = ten_daily_backups(pin_oldest=False)
    config = WalRetentionConfig()
    assert (config.keep_count, config.max_age_days) == (7, 30)
    assert plan_wal_retention(backups, archive_names(), config, NOW).deleting == []

    later = NOW + timedelta(days=25)  # ages now 25 to 34 days: the newest 7 and 29 and under
    plan = plan_wal_retention(backups, archive_names(), config, later)
    deleted = sorted((NOW - d.backup.entry.created_at).days for d in plan.deleting)
    assert deleted == [7, 9]  # 8 is the newest verified
    assert plan.cutoff_segment == "000000010000000000000008"


def test_plan_with_no_base_backup_deletes_no_wal() -> None:
    plan = plan_wal_retention([], archive_names(), WalRetentionConfig(), NOW)
    assert (plan.cutoff_segment, plan.wal_deleted) == (None, [])


def test_wal_retention_on_a_real_archive_dry_run_then_deletes_before_the_newest_verified(
    server_folder: Path, private_server_factory
) -> None:
    env = {"KAREN_BACKUP_URL": server_folder.as_uri(), "KAREN_PITR_CLUSTER": "karen-test"}
    server = private_server_factory(env)
    store = FileStore(server_folder)
    request = BaseBackupRequest(
        server.conninfo(), store, "karen-test", bin_dir=str(server.user.bin_dir)
    )
    server.execute("CREATE TABLE notes (id int)")
    bases = []
    for _ in range(3):
        server.execute("INSERT INTO notes SELECT g FROM generate_series(1, 2000) g")
        server.switch_and_wait()
        bases.append(take_base_backup(request, log))
        server.switch_and_wait()
    first, middle, newest = bases
    mark_verified(store, middle.folder, {"pg_verifybackup": "test"})
    before = walstore.archived_names(store, "karen-test")
    middle_start = middle.start_wal_file
    assert min(before) < first.start_wal_file < middle_start

    resources = {
        "backup_store": BackupStoreResource(url=server_folder.as_uri()),
        "pitr": PitrResource(cluster="karen-test"),
    }

    def run(dry_run: bool) -> dg.ExecuteInProcessResult:
        config = {"keep_count": 1, "max_age_days": 0, "dry_run": dry_run}
        return dg.materialize(
            [wal_retention],
            resources=resources,
            run_config={"ops": {"wal_retention": {"config": config}}},
        )

    expected_gone = sorted(n for n in before if n < middle_start)
    dry = run(dry_run=True)
    observation = dry.get_asset_observation_events()[0].event_specific_data.asset_observation
    assert observation.metadata["base_backups_to_delete"].value == 1
    assert observation.metadata["wal_files_to_delete"].value == len(expected_gone)
    assert observation.metadata["wal_cutoff_segment"].value == middle_start
    plan_text = observation.metadata["plan"].value
    assert f"| {first.backup_id} |" in plan_text and "| delete | no rule keeps it |" in plan_text
    assert walstore.archived_names(store, "karen-test") == before

    real = run(dry_run=False)
    metadata = real.asset_materializations_for_node("wal_retention")[0].metadata
    assert metadata["wal_files_deleted"].value == len(expected_gone) > 0
    assert [m.backup_id for m, _ in list_base_backups(store, "karen-test")] == [
        middle.backup_id,
        newest.backup_id,
    ]
    assert not (server_folder / first.folder).exists() or not any(
        (server_folder / first.folder).iterdir()
    )
    after = walstore.archived_names(store, "karen-test")
    assert after == before - set(expected_gone)
    assert min(after) == middle_start
    continuity = check_continuity(
        store,
        "karen-test",
        start_timeline=middle.timeline,
        start_lsn=middle.start_lsn,
        target_timeline=1,
        segment_bytes=middle.wal_segment_bytes,
    )
    assert continuity.continuous and continuity.first_segment == middle_start
