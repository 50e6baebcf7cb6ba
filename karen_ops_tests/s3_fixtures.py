"""A real S3 API on localhost: moto's server mode, in a thread of the test process."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest

from karen_ops.resources.store.s3 import S3Store, s3_client


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_server: str) -> str:
    """Credentials through the standard AWS variables, as boto3 finds them in production."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "karen-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "karen-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_server


@pytest.fixture
def s3_bucket(s3_env: str, request: pytest.FixtureRequest) -> str:
    client = s3_client(s3_env)
    readable = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"karen-{readable}-{secrets.token_hex(4)}"
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_store(s3_env: str, s3_bucket: str) -> S3Store:
    return S3Store(s3_client(s3_env), s3_bucket, "backups/prod")
