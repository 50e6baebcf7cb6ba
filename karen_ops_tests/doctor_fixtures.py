"""Helpers for the doctor's tests: a Redis that demands a password, a clean environment."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from karen_ops_tests.alerting_fixtures import free_port

REDIS_PASSWORD = "redis-Secret-9"  # noqa: S105 - a test server's own password


@dataclass(frozen=True)
class AuthRedis:
    port: int

    @property
    def url(self) -> str:
        return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{self.port}/0"


@contextmanager
def auth_redis_server(tmp_path: Path) -> Iterator[AuthRedis]:
    """A Redis of the test's own that refuses clients without its password."""
    binary = "/usr/bin/redis-server"
    if not os.access(binary, os.X_OK):
        pytest.skip("redis-server is not installed: apt-get install -y redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(tmp_path), "--requirepass", REDIS_PASSWORD],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, password=REDIS_PASSWORD, socket_connect_timeout=1)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield AuthRedis(port)
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


def clean_environment(monkeypatch: pytest.MonkeyPatch, home: Path, **values: str) -> None:
    """Only ``values`` of the karen-ops and Dagster settings, and a karen-ops home of its own."""
    for name in list(os.environ):
        if name.startswith(("KAREN_", "DAGSTER_", "AWS_")) and not name.startswith("KAREN_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KAREN_OPS_HOME", str(home))
    for name, value in values.items():
        monkeypatch.setenv(name, value)
