"""Running the backup assets in-process against real servers and a real store."""

from __future__ import annotations

import dagster as dg
from psycopg.conninfo import make_conninfo

from karen_ops.backups.assets import build_backup_assets
from karen_ops.backups.manifest import Manifest, list_manifests
from karen_ops.backups.partitions import daily_partitions
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.postgres import PostgresResource
from karen_ops.resources.store import BackupStore, BackupStoreResource


def materialize_day(
    source: ConnInfo,
    store: BackupStore,
    day: str,
    *,
    only: str | None = None,
    verify_server: ConnInfo | None = None,
    instance: dg.DagsterInstance | None = None,
    store_resource: BackupStoreResource | None = None,
    **postgres_settings: object,
) -> dg.ExecuteInProcessResult:
    postgres = PostgresResource(
        # The full URL, password included, exactly as an operator would configure it.
        database_url=make_conninfo(**source.params),
        verify_database_url=make_conninfo(**verify_server.params) if verify_server else None,
        **postgres_settings,
    )
    return dg.materialize(
        build_backup_assets(daily_partitions("UTC")),
        partition_key=day,
        resources={
            "postgres": postgres,
            "backup_store": store_resource or BackupStoreResource(url=store.url),
        },
        selection=[only] if only else None,
        raise_on_error=False,
        instance=instance,
    )


def only_manifest(store: BackupStore, database: str, day: str) -> Manifest:
    manifests = list_manifests(store, database, day)
    assert len(manifests) == 1, manifests
    return manifests[0]


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "expected a failed step"
    error = failures[0].step_failure_data.error
    return f"{error.message} {failures[0].step_failure_data.user_failure_data}"
