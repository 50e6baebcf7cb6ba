"""The embedded PostgreSQL server that serves the demo and machines without a server.

It runs the PostgreSQL 16 binaries shipped by the ``pgserver`` package from a data folder under
the karen-ops home, listens on a Unix socket only, and keeps running after the process that
started it exits, so the demo, the Dagster UI and later runs all find the same server.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import warnings
from pathlib import Path
from types import ModuleType

from karen_ops.errors import ConfigurationError

log = logging.getLogger(__name__)


def embedded_server_url(data_dir: Path) -> str:
    """Start (or find running) the embedded server in ``data_dir``; return its libpq URL."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, as on servers and in CI.
        warnings.simplefilter("ignore")
        pgserver = _import_pgserver()
        server = pgserver.get_server(data_dir, cleanup_mode=None)
    url = server.get_uri()
    log.info("embedded PostgreSQL ready data_dir=%s", data_dir)
    return url


def stop_embedded_server(data_dir: Path) -> bool:
    """Stop the embedded server in ``data_dir`` if it runs; True when one was stopped."""
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        # SIGINT is PostgreSQL's "fast" shutdown: sessions end, the data stays consistent.
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return False
    for _ in range(100):
        if not pid_file.exists():
            break
        time.sleep(0.1)
    log.info("embedded PostgreSQL stopped data_dir=%s", data_dir)
    return True


def _import_pgserver() -> ModuleType:
    try:
        import pgserver
    except ImportError as exc:
        raise ConfigurationError(
            "no database is configured and the embedded PostgreSQL (pgserver) is not installed; "
            "set KAREN_DATABASE_URL or install karen-ops with its dependencies"
        ) from exc
    return pgserver
