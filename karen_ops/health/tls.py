"""Certificate expiry of the platform's TLS endpoints.

The certificate is fetched without verifying it: this check answers "when does the served
certificate expire", which must work for self-signed, expired and privately issued ones too.
Whether clients trust the certificate is theirs to verify.
"""

from __future__ import annotations

import socket
import ssl
from datetime import UTC, datetime

from karen_ops.health.probes import Probe, Verdict

_SECONDS_PER_DAY = 86400

_HOSTS_SETTING = "health.tls_hosts in $KAREN_OPS_CONFIG or in the health_settings resource"


def fetch_expiry(host_port: str, timeout_seconds: float) -> datetime:
    """When the certificate served at ``host:port`` (port 443 if omitted) expires, in UTC."""
    host, port = split_host_port(host_port)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=timeout_seconds) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ValueError(f"{host_port} completed the TLS handshake without a certificate")
    from cryptography import x509  # on use: loading the code location need not pay for it

    return x509.load_der_x509_certificate(der).not_valid_after_utc


def split_host_port(host_port: str) -> tuple[str, int]:
    host, sep, port = host_port.rpartition(":")
    if not sep or not port.isdigit():
        return host_port, 443
    return host.strip("[]"), int(port)


def judge_expiry(
    expiries: dict[str, datetime | str],
    now: datetime,
    warn_days: int,
    error_days: int,
) -> Probe:
    """One verdict for every host: ERROR under ``error_days`` or when a certificate could not
    be read (the value is then the reason), WARN under ``warn_days``; no hosts is an ERROR."""
    if not expiries:
        return Probe(
            Verdict.FAILED,
            "no TLS hosts are configured, so no certificate was checked; list them under "
            f"{_HOSTS_SETTING}",
            {"hosts": 0},
        )
    metadata: dict[str, object] = {"hosts": len(expiries)}
    unread, errors, warnings, days = [], [], [], []
    for host, expiry in sorted(expiries.items()):
        if isinstance(expiry, str):
            metadata[f"{host} error"] = expiry
            unread.append(f"{host}: could not read the certificate: {expiry}")
            continue
        left = int((expiry - now).total_seconds() // _SECONDS_PER_DAY)
        days.append(left)
        metadata[f"{host} days_left"] = left
        metadata[f"{host} expires"] = expiry.isoformat()
        line = f"{host}: expires {expiry:%Y-%m-%d %H:%M} UTC, {left} day(s) left"
        if left < error_days:
            errors.append(line)
        elif left < warn_days:
            warnings.append(line)
    if days:
        metadata["days_left"] = min(days)

    if unread or errors:
        return Probe(
            Verdict.FAILED, _failure(unread, errors, warnings, warn_days, error_days), metadata
        )
    if warnings:
        return Probe(
            Verdict.WARNING,
            f"certificate(s) expire within {warn_days} days: " + "; ".join(warnings),
            metadata,
        )
    return Probe(Verdict.HEALTHY, f"every certificate has {warn_days}+ days left", metadata)


def _failure(
    unread: list[str], errors: list[str], warnings: list[str], warn_days: int, error_days: int
) -> str:
    # Each kind with its own remedy: a host that gave no certificate has nothing to renew.
    parts = []
    if errors:
        parts.append(
            f"certificate(s) expire within {error_days} days: {'; '.join(errors)}; renew them now"
        )
    if warnings:
        parts.append(f"certificate(s) expire within {warn_days} days: {'; '.join(warnings)}")
    if unread:
        parts.append(
            "; ".join(unread) + "; check that each host serves TLS on the port given, or "
            f"correct {_HOSTS_SETTING}"
        )
    return "; ".join(parts)


def now_utc() -> datetime:
    return datetime.now(UTC)
