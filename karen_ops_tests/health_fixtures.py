"""Local servers for the health tests: HTTP endpoints that behave well or badly, a TLS server
with a certificate of chosen expiry, and Redis servers with a password, plain or TLS only."""

from __future__ import annotations

import http.server
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        behaviour = self.server.behaviour  # type: ignore[attr-defined]
        if behaviour == "hang":
            self.server.release.wait(30)  # type: ignore[attr-defined]
            return
        status, headers, body = {
            "healthy": (200, {}, b'{"status": "healthy"}'),
            "unwell": (200, {}, b'{"status": "unhealthy"}'),
            "failing": (500, {}, b'{"error": "database unavailable"}'),
            "redirect": (302, {"Location": "/login?next=/api/health"}, b""),
        }[behaviour]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def http_server(behaviour: str) -> Iterator[str]:
    """A server on 127.0.0.1 answering every GET as ``behaviour``; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.behaviour = behaviour  # type: ignore[attr-defined]
    server.release = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.release.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()


def make_certificate(folder: Path, expires_in: timedelta) -> tuple[Path, Path, datetime]:
    """A self-signed certificate for localhost expiring ``expires_in`` from now."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC).replace(microsecond=0)
    not_after = now + expires_in
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now - timedelta(days=1), not_after - timedelta(days=1)))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, not_after


@contextmanager
def tls_server(cert: Path, key: Path) -> Iterator[str]:
    """A TLS server on 127.0.0.1 that completes handshakes; yields ``127.0.0.1:port``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(2)
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


REDIS_PASSWORD = "s3cret-pass"  # noqa: S105 - a throwaway password of a test server


@contextmanager
def redis_with_password(folder: Path) -> Iterator[str]:
    """A Redis server of the tests' own, requiring a password; yields its URL with it."""
    port = free_port()
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    with _redis_server(folder, ["--port", str(port)], url):
        yield url


@contextmanager
def redis_that_evicts(folder: Path) -> Iterator[str]:
    """A Redis server of the tests' own with a 2 MB limit that evicts the least used keys."""
    port = free_port()
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    limits = ["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]
    with _redis_server(folder, ["--port", str(port), *limits], url):
        yield url


@dataclass(frozen=True)
class TlsRedis:
    """A TLS-only Redis: its URL (password included, no CA yet), the CA that signed its
    certificate, and a CA that did not."""

    url: str
    ca: Path
    other_ca: Path


@contextmanager
def redis_with_tls(folder: Path) -> Iterator[TlsRedis]:
    """A Redis server of the tests' own that speaks only TLS and requires a password."""
    ca, ca_key = make_ca(folder / "ca.pem", "karen test CA")
    other_ca, _ = make_ca(folder / "other-ca.pem", "someone else's CA")
    cert, key = make_server_certificate(folder, ca, ca_key)
    port = free_port()
    url = f"rediss://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    arguments = [
        "--port",
        "0",
        "--tls-port",
        str(port),
        "--tls-cert-file",
        str(cert),
        "--tls-key-file",
        str(key),
        "--tls-ca-cert-file",
        str(ca),
        # Clients prove themselves with the password, not with a certificate.
        "--tls-auth-clients",
        "no",
    ]
    with _redis_server(folder, arguments, f"{url}?ssl_ca_certs={ca}"):
        yield TlsRedis(url, ca, other_ca)


@contextmanager
def _redis_server(folder: Path, arguments: list[str], ready_url: str) -> Iterator[None]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    process = subprocess.Popen(
        [
            binary,
            *arguments,
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            REDIS_PASSWORD,
            *(["--maxmemory", "64mb"] if "--maxmemory" not in arguments else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_ping(process, ready_url)
        yield
    finally:
        process.terminate()
        process.wait(10)


def _wait_for_ping(process: subprocess.Popen, url: str) -> None:
    for _ in range(100):
        if process.poll() is not None:
            pytest.fail(f"redis-server exited with {process.returncode} before answering")
        try:
            if redis.Redis.from_url(url, socket_timeout=1).ping():
                return
        except redis.ConnectionError:
            time.sleep(0.05)
    pytest.fail("redis-server did not answer PING within 5 seconds")


def make_ca(path: Path, name: str) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    """A self-signed certificate authority written to ``path``; returns it and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path, key


def make_server_certificate(
    folder: Path, ca: Path, ca_key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost signed by ``ca``; returns cert and key."""
    authority = x509.load_pem_x509_certificate(ca.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(authority.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / "redis-cert.pem", folder / "redis-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
