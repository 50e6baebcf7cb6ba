"""Redis probes: does it answer PING, how close is it to its memory limit, does it evict."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis as redis_client
from redis.backoff import NoBackoff
from redis.retry import Retry

from karen_ops.health.probes import Probe, Verdict, elapsed_ms
from karen_ops.resources.redis import RedisResource
from karen_ops.settings import REDIS_URL


def probe_ping(redis: RedisResource, timeout_seconds: float) -> Probe:
    started = time.monotonic()
    try:
        with _client(redis, timeout_seconds) as client:
            answered = client.ping()
    except redis_client.RedisError as exc:
        return Probe(
            Verdict.FAILED,
            f"Redis at {redis.describe()} did not answer PING: {explain(exc)}",
            {"server": redis.describe(), "latency_ms": elapsed_ms(started)},
        )
    latency = elapsed_ms(started)
    metadata = {"server": redis.describe(), "latency_ms": latency}
    if not answered:
        return Probe(Verdict.FAILED, f"Redis at {redis.describe()} did not answer PING", metadata)
    return Probe(Verdict.HEALTHY, f"Redis answered PING in {latency} ms", metadata)


def probe_memory(redis: RedisResource, timeout_seconds: float, ratio: float) -> Probe:
    """WARN when used memory passes ``ratio`` of ``maxmemory``, or with no limit at all."""
    memory = _info(redis, timeout_seconds, "memory")
    used = int(memory["used_memory"])
    limit = int(memory.get("maxmemory", 0))
    policy = str(memory.get("maxmemory_policy", "unknown"))
    metadata = {
        "used_memory_bytes": used,
        "maxmemory_bytes": limit,
        "maxmemory_policy": policy,
    }
    if limit == 0:
        # Without a limit Redis grows until the kernel's OOM killer ends it.
        return Probe(
            Verdict.WARNING,
            f"Redis at {redis.describe()} has no maxmemory set and uses {used:,} bytes; "
            "set maxmemory in redis.conf",
            metadata,
        )
    share = used / limit
    metadata["share"] = round(share, 3)
    if share > ratio:
        return Probe(
            Verdict.WARNING,
            f"Redis at {redis.describe()} uses {used:,} of maxmemory {limit:,} bytes "
            f"({share:.0%}, over {ratio:.0%})",
            metadata,
        )
    return Probe(Verdict.HEALTHY, f"Redis uses {share:.0%} of maxmemory", metadata)


def probe_evictions(redis: RedisResource, timeout_seconds: float, previous: int | None) -> Probe:
    """WARN when keys were evicted since ``previous`` (the count the last check saw).

    ``evicted_keys`` counts from the server's start; a count below ``previous`` means Redis
    restarted, so the whole count is new.
    """
    stats = _info(redis, timeout_seconds, "stats")
    evicted = int(stats.get("evicted_keys", 0))
    new = evicted - previous if previous is not None and evicted >= previous else evicted
    metadata = {"evicted_keys": evicted, "evicted_since_last_check": new}
    if new > 0:
        return Probe(
            Verdict.WARNING,
            f"Redis at {redis.describe()} evicted {new:,} key(s) since the last check: cached "
            f"data is being dropped for lack of memory; raise maxmemory (see {REDIS_URL})",
            metadata,
        )
    return Probe(Verdict.HEALTHY, "no keys evicted since the last check", metadata)


def explain(exc: redis_client.RedisError) -> str:
    """Why Redis could not be used, and what in ``KAREN_REDIS_URL`` to change.

    redis-py's messages name only host and port, never the password, so they may be shown.
    """
    cause = exc.__cause__
    if isinstance(exc, redis_client.AuthenticationError):
        return f"it refused the password ({exc}); set the right password in {REDIS_URL}"
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (
            f"its TLS certificate is not trusted ({cause.verify_message}, "
            f"{cause.reason or 'CERTIFICATE_VERIFY_FAILED'}); name the CA file that signed it "
            f"as ?ssl_ca_certs=/path/ca.pem in {REDIS_URL}"
        )
    if isinstance(cause, ssl.SSLError):
        return (
            f"the TLS handshake failed ({cause.reason or cause}); use rediss:// only for a "
            f"server with a TLS port, redis:// otherwise, in {REDIS_URL}"
        )
    if isinstance(cause, FileNotFoundError):
        return (
            f"a TLS file it names could not be read ({cause.strerror}: {cause.filename}); "
            f"fix ssl_ca_certs in {REDIS_URL}"
        )
    return f"{exc}; check {REDIS_URL}"


def _info(redis: RedisResource, timeout_seconds: float, section: str) -> dict:
    try:
        with _client(redis, timeout_seconds) as client:
            return client.info(section)
    except redis_client.RedisError as exc:
        raise ConnectionError(
            f"could not read INFO {section} from Redis at {redis.describe()}: {explain(exc)}"
        ) from exc


@contextmanager
def _client(redis: RedisResource, timeout_seconds: float) -> Iterator[redis_client.Redis]:
    # The probe's own timeout, not the resource's: a health run's deadline is the probe timeout.
    client = redis_client.Redis.from_url(
        redis.resolved_url(),
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        # One attempt: a retried PING would hide how slow the server is, and the deadline.
        retry=Retry(NoBackoff(), 0),
    )
    try:
        yield client
    finally:
        client.close()
