"""The platform's Redis: cache of AI Karen, and where karen-ops keeps its alert state."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import dagster as dg
import redis
from pydantic import Field

from karen_ops import settings
from karen_ops.errors import ConfigurationError

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "karen-ops:"
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]+")

# A sensor tick must not hang on a Redis that went away: fail fast and fall back.
SOCKET_TIMEOUT_SECONDS = 3


class RedisResource(dg.ConfigurableResource):
    """A Redis server; the URL falls back to $KAREN_REDIS_URL when the run or tick starts."""

    url: str | None = Field(
        default=None,
        description="redis:// or rediss:// URL, password included if any (default: "
        f"$KAREN_REDIS_URL, else {DEFAULT_URL}). For TLS with a private CA, name its file in "
        "the query: rediss://:password@host:6380/0?ssl_ca_certs=/etc/ssl/karen-ca.pem.",
    )
    key_prefix: str | None = Field(
        default=None,
        description="Prefix of every key karen-ops writes, so it shares the server safely "
        f"(default: ${settings.REDIS_KEY_PREFIX}, else {DEFAULT_PREFIX}). Two deployments "
        "on one Redis need a prefix each, or each sees and sends the other's alerts.",
    )

    def resolved_url(self) -> str:
        return self.url or settings.env(settings.REDIS_URL) or DEFAULT_URL

    def prefix(self) -> str:
        prefix = self.key_prefix or settings.env(settings.REDIS_KEY_PREFIX) or DEFAULT_PREFIX
        # Keys are found again with SCAN MATCH <prefix>*, where * ? [ ] would be patterns and
        # reach another deployment's keys, or miss this one's.
        if not _PREFIX.fullmatch(prefix):
            raise ConfigurationError(
                f"{settings.REDIS_KEY_PREFIX} may hold only letters, digits and _ . : -, such "
                f"as karen-ops-staging:; change it"
            )
        return prefix

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.resolved_url(),
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        )

    def describe(self) -> str:
        """The server without its password: ``redis://127.0.0.1:6379/0``."""
        parts = urlsplit(self.resolved_url())
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"
