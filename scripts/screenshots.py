"""Screenshots of the Dagster UI for the README, taken with headless Chromium.

Uses a running UI (``--url``), or starts ``dagster-webserver`` on the instance in
``--dagster-home`` with the repository's workspace.yaml. The demo's instance has a backup to
show::

    karen-ops demo
    python scripts/screenshots.py --dagster-home .karen-ops/dagster

Pages whose asset has never been materialized are left out, with a note. The script marks
the UI's welcome dialog as seen in the instance, as clicking it away would.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPOSITORY = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1440,900",
    # The UI is a single-page app: give its queries time to answer before the capture.
    "--virtual-time-budget=25000",
]
# (file name, path in the UI, asset that must have a materialization, or None)
PAGES = [
    ("asset-graph.png", "/locations/karen_ops.definitions/asset-groups/backups", None),
    ("backup-metadata.png", "/assets/postgres_backup", "postgres_backup"),
    ("capacity-report.png", "/assets/capacity_report", "capacity_report"),
]
HTTP_TIMEOUT = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running Dagster UI, e.g. http://127.0.0.1:3000")
    parser.add_argument("--dagster-home", help="start a webserver on this instance instead")
    parser.add_argument("--out", default=str(REPOSITORY / "docs" / "screenshots"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    if not args.url and not args.dagster_home:
        parser.error("give --url of a running UI or --dagster-home to start one")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    webserver = None
    url = args.url
    if url is None:
        url, webserver = _start_webserver(Path(args.dagster_home).resolve())
    try:
        _wait_ready(url)
        # The UI greets a new browser profile with a community dialog; the instance remembers
        # once it has been seen, so the captures show the pages rather than the dialog.
        _graphql(url, "mutation { setNuxSeen }")
        for name, path, asset in PAGES:
            if asset is not None and not _materialized(url, asset):
                print(f"skipped {name}: {asset} has no materialization in this instance")
                continue
            _capture(args.chromium, url + path, out / name)
            print(f"wrote {out / name} ({(out / name).stat().st_size // 1024} KiB)")
    finally:
        if webserver is not None:
            webserver.terminate()
            webserver.wait(timeout=20)
    return 0


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


def _capture(chromium: str, page: str, target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="karen-ops-chromium-") as profile:
        subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             f"--screenshot={target}", page],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
