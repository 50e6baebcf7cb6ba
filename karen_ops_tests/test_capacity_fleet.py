"""The capacity snapshot with a fleet: every database observed, an unreachable one a gap."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg
import pytest

from karen_ops.capacity.history import recorded_series
from karen_ops.capacity.partitions import daily_partitions
from karen_ops.partitions import last_complete_partition
from karen_ops.resources.conninfo import ConnInfo
from karen_ops_tests.capacity_fixtures import capacity_assets, capacity_resources
from karen_ops_tests.fleet_fixtures import (
    FLEET_PASSWORD,
    UNREACHABLE,
    configure_fleet,
    database_size,
    everything_recorded,
    fleet_databases,
)


@pytest.fixture
def fleet(service_server) -> Iterator[dict[str, ConnInfo]]:
    # Different sizes, so a figure recorded under the wrong name cannot pass.
    rows = {"production": 20_000, "staging": 5_000, "tenant_acme": 100}
    with fleet_databases(service_server, rows) as targets:
        yield targets


def _snapshot(primary: ConnInfo, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    day = last_complete_partition(daily_partitions("UTC"), datetime.now(UTC))
    return dg.materialize(
        capacity_assets(),
        selection=["capacity_snapshot"],
        partition_key=day,
        resources=capacity_resources(primary),
        instance=instance,
        raise_on_error=False,
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    [materialization] = result.asset_materializations_for_node("capacity_snapshot")
    return {key: value.value for key, value in materialization.metadata.items()}


def test_snapshot_records_the_size_of_every_fleet_database(fleet, tmp_path, monkeypatch):
    configure_fleet(tmp_path, monkeypatch, fleet)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _snapshot(fleet["production"], instance)
        day = date.fromisoformat(result.dagster_run.tags["dagster/partition"])
        recorded = recorded_series(instance, "capacity_snapshot", [day], ["database_size_bytes"])

    assert result.success
    metadata = _metadata(result)
    sizes = {name: database_size(target) for name, target in fleet.items()}
    for name, size in sizes.items():
        assert metadata[f"fleet {name} size_bytes"] == size, name
        assert metadata[f"fleet {name} connections"] >= 0
        assert f"| {name} ({fleet[name].dbname}) | " in metadata["fleet"]
        assert f"### {name}\n" in metadata["fleet_largest_relations"]
    assert metadata["fleet_databases"] == 3
    assert metadata["fleet_observed"] == 3
    assert metadata["fleet_size_bytes"] == sum(sizes.values())
    assert "fleet_unreachable" not in metadata
    # The report's series stays the application's database, not the fleet's total.
    assert metadata["database_size_bytes"] == sizes["production"]
    assert recorded["database_size_bytes"].values == [float(sizes["production"])]


def test_unreachable_fleet_database_is_a_gap_and_the_others_are_recorded(
    fleet, tmp_path, monkeypatch, caplog
):
    configure_fleet(tmp_path, monkeypatch, {**fleet, "tenant_acme": UNREACHABLE})
    caplog.set_level(logging.DEBUG)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _snapshot(fleet["production"], instance)
        recorded = everything_recorded(instance, result.run_id)
        warnings = [
            entry.user_message
            for entry in instance.all_logs(result.run_id)
            if entry.level == logging.WARNING
        ]

    assert result.success
    metadata = _metadata(result)
    for name in ("production", "staging"):
        assert metadata[f"fleet {name} size_bytes"] == database_size(fleet[name])
    assert "fleet tenant_acme size_bytes" not in metadata
    assert "fleet tenant_acme connections" not in metadata
    assert metadata["fleet tenant_acme unreachable"].startswith(
        "could not connect to database karen_acme_unreachable on 127.0.0.1:1: "
    )
    assert metadata["fleet tenant_acme unreachable"].endswith("; check KAREN_TEST_ACME_URL")
    assert "| tenant_acme | 127.0.0.1:1 | unreachable: could not connect" in metadata["fleet"]
    assert metadata["fleet_unreachable"] == "tenant_acme"
    assert metadata["fleet_observed"] == 2
    # A total without one database would read as the fleet shrinking.
    assert "fleet_size_bytes" not in metadata
    assert [w for w in warnings if "fleet database" in w] == [
        "capacity snapshot continues without fleet database tenant_acme: "
        + metadata["fleet tenant_acme unreachable"]
    ]
    assert FLEET_PASSWORD not in recorded
    assert FLEET_PASSWORD not in caplog.text
    assert FLEET_PASSWORD not in repr(metadata)


def test_snapshot_without_a_fleet_records_no_fleet_figures(fleet, monkeypatch):
    monkeypatch.delenv("KAREN_OPS_CONFIG", raising=False)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _snapshot(fleet["staging"], instance)

    assert result.success
    metadata = _metadata(result)
    assert metadata["database_size_bytes"] == database_size(fleet["staging"])
    assert not [key for key in metadata if key.startswith("fleet")]
