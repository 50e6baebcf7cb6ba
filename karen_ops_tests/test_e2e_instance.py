"""End to end: dagster-webserver and dagster-daemon as processes, driven through GraphQL.

Each storage (SQLite under a temporary DAGSTER_HOME, and PostgreSQL from
deploy/dagster.postgres.yaml) gets its own webserver and daemon with the repository's
workspace.yaml, a synthetic AI Karen database and a backup folder. A run of nightly_backup
launched through the API must succeed, and the daemon's schedule tick must launch one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import requests
from psycopg import sql

from karen_ops.demo.synthetic import load_synthetic_database
from karen_ops.resources.conninfo import ConnInfo
from karen_ops_tests.alerting_fixtures import Receiver, free_port, http_receiver
from karen_ops_tests.doctor_fixtures import auth_redis_server
from karen_ops_tests.servers import Server

REPOSITORY = Path(__file__).resolve().parents[1]
HTTP_TIMEOUT = 10
# Loading the code location twice (webserver and daemon) takes a while on two cores.
STARTUP_SECONDS = 90
RUN_SECONDS = 120
# A schedule on "* * * * *" ticks within a minute of the daemon starting; allow a second one.
TICK_SECONDS = 130
# The run alert sensor looks every 30 seconds; the daemon may be busy with a schedule tick.
ALERT_SECONDS = 120
# dagster-postgres speaks psycopg2; SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3.
PG_SCHEME = "postgresql+psycopg2"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass
class Dagster:
    """A running webserver and daemon, and what they were started with."""

    url: str
    home: Path
    backups: Path
    processes: list[subprocess.Popen]
    logs: list[Path]
    environment: dict[str, str]
    alerts: Receiver

    def graphql(self, query: str, **variables: object) -> dict:
        response = requests.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            timeout=HTTP_TIMEOUT,
        )
        if response.status_code != 200:
            raise AssertionError(
                f"HTTP {response.status_code}: {response.text[:2000]}\n{self.log_tail()}"
            )
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.logs)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def dagster(request, tmp_path_factory, service_server: Server) -> Iterator[Dagster]:
    storage = request.param
    root = tmp_path_factory.mktemp(f"e2e-{storage}")
    home, backups = root / "dagster", root / "backups"
    home.mkdir()
    settings_file = root / "karen-ops.yaml"
    # Every minute instead of 02:00, so the daemon ticks during the test; every alert to the
    # test's webhook.
    settings_file.write_text(
        'schedules:\n  nightly_backup_cron: "* * * * *"\n'
        "alerting:\n  routes:\n    - {name: all, channels: [webhook]}\n"
    )

    with (
        service_server.database("dagster_e2e_karen") as source,
        service_server.database("dagster_e2e_instance") as instance_db,
        auth_redis_server(root) as redis_server,
        http_receiver() as alerts,
    ):
        with psycopg.connect(**source.psycopg_kwargs()) as conn:
            load_synthetic_database(conn, users=100)
        environment = _environment(
            DAGSTER_HOME=str(home),
            KAREN_OPS_HOME=str(root / "karen-ops"),
            KAREN_OPS_CONFIG=str(settings_file),
            KAREN_DATABASE_URL=source.public_dsn(),
            KAREN_BACKUP_URL=backups.as_uri(),
            KAREN_REDIS_URL=redis_server.url,
            KAREN_ALERT_WEBHOOK_URL=alerts.url,
        )
        if storage == "postgres":
            shutil.copy(REPOSITORY / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
            environment["DAGSTER_PG_URL"] = _url(instance_db)
        else:
            shutil.copy(REPOSITORY / "dagster.yaml", home / "dagster.yaml")

        port = free_port()
        workspace = str(REPOSITORY / "workspace.yaml")
        bin_dir = Path(sys.executable).parent
        commands = {
            "webserver": [str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p",
                          str(port), "-w", workspace],
            "daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", workspace],
        }  # fmt: skip
        running = Dagster(f"http://127.0.0.1:{port}", home, backups, [], [], environment, alerts)
        # Create the instance's tables once, before two processes race to create them.
        subprocess.run(
            [str(bin_dir / "dagster"), "instance", "migrate"],
            env=environment, cwd=root, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        try:
            for name, command in commands.items():
                log = root / f"{name}.log"
                running.logs.append(log)
                with log.open("w") as out:
                    running.processes.append(
                        subprocess.Popen(
                            command,
                            env=environment,
                            cwd=root,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
            _wait_loaded(running)
            yield running
        finally:
            for process in running.processes:
                _stop(process)
            # Runs the daemon started may still hold connections to the test databases.
            _terminate_sessions(service_server, source.dbname, instance_db.dbname)


def test_nightly_backup_launched_through_graphql_succeeds(dagster: Dagster):
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    location, repository = _repository(dagster)
    partition, tags = _partition_tags(dagster, location, repository, "nightly_backup", yesterday)

    launched = dagster.graphql(
        LAUNCH_RUN,
        params={
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": repository,
                "jobName": "nightly_backup",
            },
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    status = _wait_run(dagster, run_id, RUN_SECONDS)

    assert status == "SUCCESS", _run_messages(dagster, run_id) + dagster.log_tail()
    # The scheduled run of the same day may have added a second backup by now.
    manifests = sorted(dagster.backups.rglob("manifest.json"))
    assert manifests and {m.parent.parent.name for m in manifests} == {yesterday}, manifests
    assert yesterday in partition


def test_schedule_tick_launches_a_nightly_backup_run(dagster: Dagster):
    location, repository = _repository(dagster)
    schedules = dagster.graphql(
        SCHEDULES, selector={"repositoryLocationName": location, "repositoryName": repository}
    )["schedulesOrError"]["results"]
    nightly = next(s for s in schedules if s["pipelineName"] == "nightly_backup")
    assert nightly["cronSchedule"] == "* * * * *"
    assert nightly["scheduleState"]["status"] == "RUNNING"

    deadline = time.monotonic() + TICK_SECONDS
    runs: list[dict] = []
    while time.monotonic() < deadline and not runs:
        runs = dagster.graphql(RUNS_BY_TAG, key="dagster/schedule_name", value=nightly["name"])[
            "runsOrError"
        ]["results"]
        time.sleep(2)

    assert runs, f"no run from {nightly['name']} within {TICK_SECONDS}s\n{dagster.log_tail()}"
    assert runs[0]["jobName"] == "nightly_backup"
    assert {"key": "karen-ops/database", "value": "primary"} in runs[0]["tags"]


def test_a_refused_command_line_run_reaches_the_webhook_through_the_daemon(dagster: Dagster):
    # Too old to back up: the run fails at once, outside any schedule, sensor or UI, and as a
    # refusal rather than a failed backup it is a warning for whoever asked, not a page.
    old = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    command = [
        str(Path(sys.executable).parent / "dagster"), "asset", "materialize",
        "-m", "karen_ops.definitions", "--select", "postgres_backup", "--partition", old,
    ]  # fmt: skip
    completed = subprocess.run(
        command, env=dagster.environment, capture_output=True, text=True, timeout=180
    )
    assert completed.returncode != 0, completed.stdout[-2000:]

    deadline = time.monotonic() + ALERT_SECONDS
    while time.monotonic() < deadline and not _run_alerts(dagster.alerts, old):
        time.sleep(2)

    [alert] = _run_alerts(dagster.alerts, old)
    assert alert["labels"]["alertname"] == "DagsterRunRefused"
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["launched_by"] == "hand"
    assert alert["annotations"]["summary"] == (
        f"materialization of postgres_backup was refused for partition {old}"
    )
    assert f"cannot back up partition {old}" in alert["annotations"]["description"]
    assert alert["generatorURL"].startswith("http://127.0.0.1:3030/runs/")


def _run_alerts(receiver: Receiver, partition: str) -> list[dict]:
    return [
        alert
        for post in list(receiver.posts)
        for alert in post.json()["alerts"]
        if alert["labels"]["alertname"] in ("DagsterRunFailed", "DagsterRunRefused")
        and alert["labels"].get("partition") == partition
    ]


def test_capacity_report_backfill_over_four_weeks_runs_as_one_run(dagster: Dagster):
    node = dagster.graphql(ASSET_NODE, path=["capacity_report"])["assetNodeOrError"]
    if node["__typename"] != "AssetNode":
        pytest.skip("capacity_report is not in the code location (karen_ops.definitions)")
    # Without a single-run policy Dagster launches one run per week instead.
    assert node["backfillPolicy"] is not None, "capacity_report has no backfill policy"
    assert node["backfillPolicy"]["policyType"] == "SINGLE_RUN"
    keys = node["partitionKeysByDimension"][0]["partitionKeys"]
    weeks = keys[-4:]

    launched = dagster.graphql(
        LAUNCH_BACKFILL,
        params={"partitionNames": weeks, "assetSelection": [{"path": ["capacity_report"]}]},
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    deadline = time.monotonic() + RUN_SECONDS
    backfill: dict = {}
    while time.monotonic() < deadline:
        backfill = dagster.graphql(BACKFILL, id=launched["backfillId"])["partitionBackfillOrError"]
        runs = backfill["runs"]
        if (
            runs
            and all(r["status"] in FINISHED for r in runs)
            and backfill["status"] != "REQUESTED"
        ):
            break
        time.sleep(2)

    assert len(backfill["runs"]) == 1, backfill
    run = backfill["runs"][0]
    assert run["status"] == "SUCCESS", _run_messages(dagster, run["runId"])
    assert backfill["numPartitions"] == 4


def _environment(**values: str) -> dict[str, str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("KAREN_", "DAGSTER_", "AWS_"))
    }
    return {**inherited, **values}


def _url(conninfo: ConnInfo) -> str:
    """A SQLAlchemy-style URL for dagster-postgres, socket folders as a host parameter."""
    params = conninfo.params
    user = quote(params.get("user", "postgres"), safe="")
    password = f":{quote(conninfo.password, safe='')}" if conninfo.password else ""
    host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
    if host.startswith("/"):
        return f"{PG_SCHEME}://{user}{password}@/{conninfo.dbname}?host={quote(host)}&port={port}"
    return f"{PG_SCHEME}://{user}{password}@{host}:{port}/{conninfo.dbname}"


def _wait_loaded(dagster: Dagster) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        for process in dagster.processes:
            assert process.poll() is None, f"exited early\n{dagster.log_tail()}"
        try:
            data = dagster.graphql(WORKSPACE)
        except (requests.RequestException, AssertionError):
            time.sleep(1)
            continue
        entries = data["workspaceOrError"]["locationEntries"]
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [e["locationOrLoadError"] for e in entries]
            assert all(e["__typename"] == "RepositoryLocation" for e in errors), errors
            return
        time.sleep(1)
    raise AssertionError(f"code location not loaded in {STARTUP_SECONDS}s\n{dagster.log_tail()}")


def _repository(dagster: Dagster) -> tuple[str, str]:
    nodes = dagster.graphql(REPOSITORIES)["repositoriesOrError"]["nodes"]
    assert len(nodes) == 1, nodes
    return nodes[0]["location"]["name"], nodes[0]["name"]


def _partition_tags(
    dagster: Dagster, location: str, repository: str, job: str, day: str
) -> tuple[str, dict[str, str]]:
    """The partition of ``job`` for ``day`` and the tags Dagster gives its runs."""
    selector = {"repositoryLocationName": location, "repositoryName": repository}
    sets = dagster.graphql(PARTITION_SETS, selector=selector, job=job)["partitionSetsOrError"]
    partition_set = sets["results"][0]["name"]
    names = dagster.graphql(PARTITION_NAMES, selector=selector, name=partition_set)
    candidates = [
        p["name"]
        for p in names["partitionSetOrError"]["partitionsOrError"]["results"]
        if day in p["name"]
    ]
    assert len(candidates) == 1, candidates
    tags = dagster.graphql(
        PARTITION_TAGS, selector=selector, name=partition_set, partition=candidates[0]
    )["partitionSetOrError"]["partition"]["tagsOrError"]["results"]
    return candidates[0], {tag["key"]: tag["value"] for tag in tags}


def _wait_run(dagster: Dagster, run_id: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    status = "UNKNOWN"
    while time.monotonic() < deadline:
        status = dagster.graphql(RUN_STATUS, id=run_id)["runOrError"]["status"]
        if status in FINISHED:
            return status
        time.sleep(1)
    return status


def _run_messages(dagster: Dagster, run_id: str) -> str:
    events = dagster.graphql(RUN_LOGS, id=run_id)["logsForRun"].get("events", [])
    return "\n".join(e.get("message") or "" for e in events[-30:])


def _stop(process: subprocess.Popen) -> None:
    """Stop one process we started and everything it started (code servers, run workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        # Children that outlived their parent are still in the process group.
        os.killpg(process.pid, signal.SIGKILL)


def _terminate_sessions(server: Server, *databases: str) -> None:
    with psycopg.connect(**server.maintenance.psycopg_kwargs(), autocommit=True) as conn:
        for name in databases:
            conn.execute(
                sql.SQL(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}"
                ).format(sql.Literal(name))
            )


WORKSPACE = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
REPOSITORIES = """
{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }
"""
PARTITION_SETS = """
query($selector: RepositorySelector!, $job: String!) {
  partitionSetsOrError(repositorySelector: $selector, pipelineName: $job) {
    ... on PartitionSets { results { name } } } }
"""
PARTITION_NAMES = """
query($selector: RepositorySelector!, $name: String!) {
  partitionSetOrError(repositorySelector: $selector, partitionSetName: $name) {
    ... on PartitionSet { partitionsOrError { ... on Partitions { results { name } } } } } }
"""
PARTITION_TAGS = """
query($selector: RepositorySelector!, $name: String!, $partition: String!) {
  partitionSetOrError(repositorySelector: $selector, partitionSetName: $name) {
    ... on PartitionSet { partition(partitionName: $partition) {
      tagsOrError { ... on PartitionTags { results { key value } } } } } } }
"""
LAUNCH_RUN = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message } ... on InvalidSubsetError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }
"""
RUN_STATUS = """
query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }
"""
RUN_LOGS = """
query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection {
  events { ... on MessageEvent { message } } } } }
"""
SCHEDULES = """
query($selector: RepositorySelector!) { schedulesOrError(repositorySelector: $selector) {
  ... on Schedules { results { name pipelineName cronSchedule scheduleState { status } } } } }
"""
RUNS_BY_TAG = """
query($key: String!, $value: String!) {
  runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
    ... on Runs { results { runId jobName status tags { key value } } } } }
"""
ASSET_NODE = """
query($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { __typename
  ... on AssetNode { backfillPolicy { policyType }
    partitionKeysByDimension { name partitionKeys } } } }
"""
LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }
"""
BACKFILL = """
query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status numPartitions runs(limit: 10) { runId status } } } }
"""
