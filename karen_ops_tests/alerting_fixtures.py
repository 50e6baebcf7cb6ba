"""Real local receivers for alert tests: HTTP webhooks, an SMTP server with STARTTLS and
authentication, Alertmanager, Pushgateway and a private Redis, each on an OS-chosen port."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

SMTP_USER = "alerts"
SMTP_PASSWORD = "smtp-Secret-42"  # noqa: S105 - a test server's own password


@dataclass
class Received:
    path: str
    body: bytes
    at: float

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server that records every POST and answers with scripted statuses first."""

    url: str = ""
    posts: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    always: int = 200


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.posts.append(Received(self.path, body, time.monotonic()))
            status, headers = receiver.script.pop(0) if receiver.script else (receiver.always, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    return Handler


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    """A receiver listening on a free local port until the block ends."""
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook/T0KEN-secret"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator:
    with ExitStack() as receivers:
        yield lambda: receivers.enter_context(http_receiver())


@dataclass
class SmtpInbox:
    url: str
    cafile: str
    messages: list = field(default_factory=list)


@pytest.fixture
def smtp_inbox(tmp_path: Path) -> Iterator[SmtpInbox]:
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: cannot make the SMTP test server's certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            inbox.messages.append(envelope)
            return "250 OK"

    def authenticate(server, session, envelope, mechanism, data):
        ok = data.login == SMTP_USER.encode() and data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticate,
    )
    controller.start()
    inbox = SmtpInbox(
        url=f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{port}?cafile={cert}", cafile=str(cert)
    )
    yield inbox
    controller.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready at {url}")


def _binary(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/bin")
    if path is None:
        pytest.skip(f"{name} is not installed: apt-get install -y {package}")
    return path


@contextmanager
def _process(args: list[str], ready_url: str, what: str) -> Iterator[None]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(ready_url, process, what)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = _binary("prometheus-alertmanager", "prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: nobody\n  group_by: [alertname]\nreceivers:\n  - name: nobody\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with _process(args, f"{url}/-/ready", "alertmanager"):
        yield url


@pytest.fixture
def pushgateway() -> Iterator[str]:
    binary = _binary("prometheus-pushgateway", "prometheus-pushgateway")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Debian's build persists to /var/lib/prometheus by default, which would carry one
    # test's metrics into the next; an empty file name keeps them in memory.
    args = [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
    with _process(args, f"{url}/-/ready", "pushgateway"):
        yield url


@dataclass
class RedisServer:
    url: str
    args: list[str]
    process: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop the server; with ``keep_data`` it writes its data first and reloads it on start."""
        import redis

        if keep_data:
            redis.Redis.from_url(self.url).save()
        self.process.terminate()
        self.process.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, so it can be stopped without touching the shared one."""
    binary = _binary("redis-server", "redis-server")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
            "no", "--dir", str(tmp_path)]  # fmt: skip
    server = RedisServer(f"redis://127.0.0.1:{port}/0", args)
    server.start()
    yield server
    if server.running:
        server.stop()


def make_alert(name: str = "BackupRunFailed", severity: str = "critical", **labels: str):
    """A firing alert as the sensors build them, with a password-bearing URL in its details."""
    from karen_ops.alerting.model import Alert, Severity, make_labels

    return Alert(
        labels=make_labels(name, Severity(severity), **labels),
        summary=f"{name} {' '.join(f'{k}={v}' for k, v in sorted(labels.items()))}".strip(),
        impact="last night's backup is missing",
        details="could not connect to database postgresql://backup:pg-Secret-7@db:5432/karen",
        link="http://dagster.example/runs/abc",
        starts_at=1_800_000_000.0,
    )


class Clock:
    """A settable clock for the notifier's timers."""

    def __init__(self, now: float = 1_800_000_100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now
