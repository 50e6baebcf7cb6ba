"""Screenshots of the Dagster UI for the README, taken with Playwright and headless Chromium.

Uses a running UI (``--url``), or starts ``dagster-webserver`` on the instance in
``--dagster-home`` with the repository's workspace.yaml::

    pip install -e '.[screenshots]'
    karen-ops demo
    python scripts/screenshots.py --dagster-home .karen-ops/dagster

Playwright drives the system Chromium (``--chromium``); it needs no browser of its own.

What each screenshot shows, and why that view:

- ``asset-graph.png``: the global asset lineage, laid out left to right, with every group
  collapsed to one box (its name, asset count and status) except ``backups``, opened to show
  the nightly chain postgres_backup, backup_verification, backup_retention with its checks
  and partitions. So the whole code location (backups, pitr, file archives, maintenance,
  capacity, health, security) reads at 1440x900 along with one real lineage. With all groups
  open, its thirty assets shrink to unreadable boxes; one group's own page hides the others.
- ``backup-metadata.png``: the ``postgres_backup`` asset page, whose metadata table holds
  what an operator checks first (location, size, checksum, tables and rows, tool versions).
- ``capacity-report.png``: the rendered markdown of ``capacity_report`` (forecasts, scaling
  triggers and charts), opened with the "Show Markdown" link of its metadata table.

The capacity report charts what the daily capacity assets recorded over 90 days, which a
fresh demo instance has not recorded. With ``--dagster-home`` the script therefore prepares
that history on the demo's instance, in the demo's environment, as an operator would on a new
deployment: ``user_growth``, ``daily_active_users`` and ``chat_activity`` are counted from the
synthetic database's own timestamps (eighteen months, up to a day ago) in one range run over
the report's 90 days up to yesterday; ``capacity_snapshot`` observes the platform once, for
yesterday; ``capacity_report`` is materialized for the last complete week. A snapshot cannot
record days already past, so the report's database size and disk charts stay empty unless
yesterday was the week's Sunday. Nothing is prepared when the instance already holds that
week's report, or with ``--no-history``.

The script marks the UI's welcome dialog as seen in the instance, as clicking it away would.
Pages whose asset has never been materialized are left out, with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import requests

REPOSITORY = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 1440, "height": 900}
HTTP_TIMEOUT = 10
# The UI is a single-page app that keeps polling; these bound the wait for each page's data.
PAGE_TIMEOUT_MS = 60_000
# Layout and fonts settle a moment after the data arrives.
SETTLE_MS = 1_500

# The Dagster UI's localStorage keys for its navigation and asset graph settings.
NAVIGATION_COLLAPSED = "dagster-nav-collapsed"
GRAPH_DIRECTION = "asset-graph-direction"
GRAPH_EXPANDED_GROUPS = "asset-graph-open-graph-nodes-global-__GLOBAL__"
EXPANDED_GROUP = "backups"
MAX_ZOOM_OUT_STEPS = 4
# A group's name sits inside its box: names below this line leave the boxes' borders clear of
# the page header and the asset filter above the graph.
GRAPH_TOP = 140

GROWTH_ASSETS = ["user_growth", "daily_active_users", "chat_activity"]


@dataclass(frozen=True)
class HistoryPlan:
    """The partitions that give the last complete week's capacity report its 90 days."""

    growth_first_day: str
    yesterday: str
    report_week: str


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running Dagster UI, e.g. http://127.0.0.1:3030")
    parser.add_argument("--dagster-home", help="start a webserver on this instance instead")
    parser.add_argument("--out", default=str(REPOSITORY / "docs" / "screenshots"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument(
        "--no-history",
        action="store_true",
        help="do not prepare the capacity report's history on the demo instance",
    )
    args = parser.parse_args(argv)
    if not args.url and not args.dagster_home:
        parser.error("give --url of a running UI or --dagster-home to start one")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.dagster_home and not args.no_history:
        prepare_capacity_history(Path(args.dagster_home).resolve())

    webserver = None
    url = args.url
    if url is None:
        url, webserver = _start_webserver(Path(args.dagster_home).resolve())
    try:
        _wait_ready(url)
        # The UI greets a new browser profile with a community dialog; the instance remembers
        # once it has been seen, so the captures show the pages rather than the dialog.
        _graphql(url, "mutation { setNuxSeen }")
        capture_all(url, out, args.chromium)
    finally:
        if webserver is not None:
            webserver.terminate()
            webserver.wait(timeout=20)
    return 0


# Capacity history ---------------------------------------------------------------------------


def prepare_capacity_history(dagster_home: Path) -> None:
    """Record the daily capacity assets and the last complete week's report on the demo."""
    environment = _demo_environment(dagster_home)
    os.environ.update(environment)
    # Imported once the environment is set, as a run of the code location would be.
    import dagster as dg

    from karen_ops.definitions import defs

    plan = history_plan(defs, datetime.now(UTC))
    with dg.DagsterInstance.get() as instance:
        if _has_partition(instance, "capacity_report", plan.report_week):
            print(f"capacity history: the report for week {plan.report_week} exists already")
            return

    growth_range = f"{plan.growth_first_day}...{plan.yesterday}"
    print(f"capacity history: counting {', '.join(GROWTH_ASSETS)} for {growth_range}")
    _materialize(environment, GROWTH_ASSETS, "--partition-range", growth_range)
    print(f"capacity history: observing capacity_snapshot for {plan.yesterday}")
    _materialize(environment, ["capacity_snapshot"], "--partition", plan.yesterday)
    print(f"capacity history: drawing capacity_report for week {plan.report_week}")
    _materialize(environment, ["capacity_report"], "--partition", plan.report_week)


def _demo_environment(dagster_home: Path) -> dict[str, str]:
    """The settings under which ``karen-ops demo`` ran its backup into this instance."""
    from karen_ops.demo import run

    # The demo keeps its instance in <home>/dagster beside its server's data in <home>/pgdata.
    # Checked first: prepare() would start a new embedded server anywhere else.
    home = dagster_home.parent
    if dagster_home.name != "dagster" or not (home / "pgdata").is_dir():
        raise SystemExit(
            f"could not prepare the capacity history in {dagster_home}: it is not the instance "
            "of a karen-ops demo (<home>/dagster beside <home>/pgdata); run karen-ops demo, or "
            "pass --no-history"
        )
    setup = run.prepare(home, users=run.DEFAULT_USERS, instance_template=None)
    return setup.environment()


def history_plan(defs, now: datetime) -> HistoryPlan:
    """The last complete week, and the days from its report's first day up to yesterday."""
    from karen_ops.capacity.report import TRAILING_DAYS
    from karen_ops.partitions import last_complete_partition

    daily = defs.resolve_assets_def("user_growth").partitions_def
    weekly = defs.resolve_assets_def("capacity_report").partitions_def
    yesterday = last_complete_partition(daily, now)
    week = last_complete_partition(weekly, now)
    week_end = weekly.time_window_for_partition_key(week).end.date()
    first_day = week_end - timedelta(days=TRAILING_DAYS)
    # Never fewer than the 90 complete days up to yesterday, whatever the week's end.
    first_day = min(first_day, date.fromisoformat(yesterday) - timedelta(days=TRAILING_DAYS - 1))
    return HistoryPlan(first_day.isoformat(), yesterday, week)


def _has_partition(instance, asset: str, partition: str) -> bool:
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]),
        limit=1,
    )
    return bool(records.records)


def _materialize(environment: dict[str, str], assets: list[str], *partition: str) -> None:
    """One run through the ``dagster asset materialize`` command, recorded in the instance."""
    command = [
        str(Path(sys.executable).parent / "dagster"), "asset", "materialize",
        "-m", "karen_ops.definitions", "--select", ",".join(assets), *partition,
    ]  # fmt: skip
    finished = subprocess.run(
        command,
        env={**os.environ, **environment},
        cwd=environment["DAGSTER_HOME"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if finished.returncode != 0:
        sys.stderr.write(finished.stdout[-4000:] + finished.stderr[-4000:])
        raise SystemExit(f"could not materialize {', '.join(assets)} {' '.join(partition)}")


# Captures -----------------------------------------------------------------------------------


def capture_all(url: str, out: Path, chromium: str) -> None:
    # Imported here: the optional 'screenshots' extra provides it.
    from playwright.sync_api import sync_playwright

    pages: list[tuple[str, str | None, Callable]] = [
        ("asset-graph.png", None, _asset_graph),
        ("backup-metadata.png", "postgres_backup", _backup_metadata),
        ("capacity-report.png", "capacity_report", _capacity_report),
    ]
    with sync_playwright() as playwright:
        # No sandbox: the capture also runs as root in containers, where Chromium needs this.
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            for name, asset, capture in pages:
                if asset is not None and not _materialized(url, asset):
                    print(f"skipped {name}: {asset} has no materialization in this instance")
                    continue
                context = browser.new_context(viewport=VIEWPORT)
                context.set_default_timeout(PAGE_TIMEOUT_MS)
                capture(context, url, out / name)
                context.close()
                print(f"wrote {out / name} ({(out / name).stat().st_size // 1024} KiB)")
        finally:
            browser.close()


def _open(context, url: str, ui_settings: dict[str, str]):
    """A page of the UI, with the UI's own browser settings seeded as a user would leave them.

    The keys are the UI's localStorage names; a release that renames one shows its default
    view instead, which is still a correct screenshot.
    """
    settings = {NAVIGATION_COLLAPSED: "true", **ui_settings}
    context.add_init_script(
        f"for (const [key, value] of Object.entries({json.dumps(settings)})) "
        "localStorage.setItem(key, value);"
    )
    page = context.new_page()
    page.goto(url, wait_until="networkidle")
    return page


def _asset_graph(context, url: str, target: Path) -> None:
    # Collapsed groups read at full size; backups, the nightly chain, is opened as the example.
    ui_settings = {
        GRAPH_DIRECTION: json.dumps("horizontal"),
        GRAPH_EXPANDED_GROUPS: json.dumps({"expanded": f"global@global:{EXPANDED_GROUP}"}),
    }
    page = _open(context, f"{url}/asset-groups", ui_settings)
    # The asset tree beside the graph repeats the group names; the graph gets its width.
    page.locator("[aria-label=panel_show_right]").last.click()
    page.get_by_text("fetching statuses").first.wait_for(state="hidden")
    groups = _asset_groups(url)
    for _ in range(MAX_ZOOM_OUT_STEPS):
        if all(_fully_visible(page, group) for group in groups):
            break
        page.locator("[aria-label=zoom_out]").click()
        page.wait_for_timeout(SETTLE_MS)
    page.wait_for_timeout(SETTLE_MS)
    page.screenshot(path=target)


def _fully_visible(page, text: str) -> bool:
    box = page.get_by_text(text, exact=True).first.bounding_box()
    if box is None:
        return False
    return box["y"] >= GRAPH_TOP and box["y"] + box["height"] <= VIEWPORT["height"]


def _backup_metadata(context, url: str, target: Path) -> None:
    page = _open(context, f"{url}/assets/postgres_backup", {})
    # The metadata table is what the backup left as evidence; bring it to the top.
    heading = page.get_by_text("Metadata", exact=True).first
    heading.evaluate("element => element.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(SETTLE_MS)
    page.screenshot(path=target)


def _capacity_report(context, url: str, target: Path) -> None:
    page = _open(context, f"{url}/assets/capacity_report", {})
    page.get_by_text("[Show Markdown]").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    page.wait_for_timeout(SETTLE_MS)
    # The report is longer than a screen: grow the window until the whole dialog fits.
    height = int(dialog.bounding_box()["height"]) + 80
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(height, VIEWPORT["height"])})
    page.wait_for_timeout(SETTLE_MS)
    dialog.screenshot(path=target)


def _asset_groups(url: str) -> list[str]:
    data = _graphql(url, "{ assetNodes { groupName } }")
    return sorted({node["groupName"] for node in data["assetNodes"] if node["groupName"]})


# The webserver ------------------------------------------------------------------------------


def _start_webserver(home: Path) -> tuple[str, subprocess.Popen]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = Path(sys.executable).parent / "dagster-webserver"
    command = [str(binary), "-h", "127.0.0.1", "-p", str(port),
               "-w", str(REPOSITORY / "workspace.yaml")]  # fmt: skip
    environment = {**os.environ, "DAGSTER_HOME": str(home)}
    process = subprocess.Popen(
        command, env=environment, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return f"http://127.0.0.1:{port}", process


def _wait_ready(url: str, seconds: float = 90) -> None:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = _graphql(url, query)
            entries = data["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return
        except (requests.RequestException, KeyError, TypeError):
            pass
        time.sleep(1)
    raise SystemExit(f"the Dagster UI at {url} did not load its code location in {seconds}s")


def _materialized(url: str, asset: str) -> bool:
    query = """query($path: [String!]!) { assetOrError(assetKey: {path: $path}) {
      ... on Asset { assetMaterializations(limit: 1) { runId } } } }"""
    data = _graphql(url, query, path=[asset])["assetOrError"]
    return bool(data and data.get("assetMaterializations"))


def _graphql(url: str, query: str, **variables: object) -> dict:
    response = requests.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, timeout=HTTP_TIMEOUT
    )
    response.raise_for_status()
    return response.json()["data"]


if __name__ == "__main__":
    sys.exit(main())
