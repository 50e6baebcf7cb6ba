"""Fixtures: real PostgreSQL servers of two major versions, test databases, a file store.

With ``KAREN_TEST_FORBID_SKIPS=1`` (as in CI) any skipped test fails the session, so a
missing server or tool can never pass unnoticed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from karen_ops.backups.partitions import daily_partitions
from karen_ops.partitions import last_complete_partition
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.store.file import FileStore

# Fixtures of the real servers each domain's tests start, shared by every test module.
from karen_ops_tests.alerting_fixtures import (  # noqa: F401
    alertmanager,
    private_redis,
    pushgateway,
    receiver_factory,
    smtp_inbox,
)
from karen_ops_tests.pitr_fixtures import find_server_user
from karen_ops_tests.s3_fixtures import s3_bucket, s3_env, s3_server, s3_store  # noqa: F401
from karen_ops_tests.servers import (
    Server,
    embedded_server_conninfo,
    load_chinook,
    private_server_conninfo,
)

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("KAREN_TEST_FORBID_SKIPS") == "1" and _skipped:
        print(f"\nKAREN_TEST_FORBID_SKIPS=1 and {len(_skipped)} test(s) were skipped:")
        for nodeid in _skipped:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[Server]:
    with embedded_server_conninfo("embedded") as maintenance:
        yield Server("embedded", maintenance)


@pytest.fixture(scope="session")
def service_server() -> Iterator[Server]:
    """The server at KAREN_TEST_DATABASE_URL; unset, one the tests start themselves.

    That is a private server of the machine's PostgreSQL 15 when it is installed, so two major
    versions are still covered, else a second embedded server. Never the embedded server
    itself: tests that move data between the two, or count servers, need two of them.
    """
    url = os.environ.get("KAREN_TEST_DATABASE_URL")
    if url:
        yield Server("service", ConnInfo.parse(url, setting="KAREN_TEST_DATABASE_URL"))
        return
    older = find_server_user("15")
    started = private_server_conninfo(older) if older else embedded_server_conninfo("service")
    with started as maintenance:
        yield Server("service", maintenance)


@pytest.fixture(params=["service", "embedded"])
def server(request: pytest.FixtureRequest) -> Server:
    """Each PostgreSQL server in reach, one test run per major version."""
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture
def chinook(server: Server) -> Iterator[ConnInfo]:
    with server.database("chinook") as target:
        load_chinook(target, server.major)
        yield target


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "backups")


@pytest.fixture
def yesterday() -> str:
    return last_complete_partition(daily_partitions("UTC"), datetime.now(UTC))


def stored_files(store: FileStore) -> list[Path]:
    """Every file under the store's root, partial uploads included."""
    return sorted(p for p in store.root.rglob("*") if p.is_file()) if store.root.exists() else []


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}
