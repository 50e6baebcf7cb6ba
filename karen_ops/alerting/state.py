"""Alert state: which alerts fire, which channel has heard of their current status, and when
each group was last notified. Kept in Redis, keyed by fingerprint with an expiry; when Redis
cannot be reached, a sensor keeps the same records in its cursor instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Protocol

import redis

from karen_ops.alerting.model import Alert
from karen_ops.errors import StateUnavailable

# Held by whoever is delivering, so two sensor ticks never send the same group twice. Long
# enough for a tick with slow channels, short enough that a crashed tick frees it soon.
LOCK_SECONDS = 120


@dataclass
class AlertRecord:
    """An alert and, per delivery (``route/channel``), the status that delivery last sent.

    A ``deferred`` record is a resolution seen while Redis was away, of an alert this store
    does not hold: whether anyone heard it fire is in Redis, so it waits there to be applied.
    """

    alert: Alert
    sent: dict[str, str] = field(default_factory=dict)
    deferred: bool = False

    def to_json(self) -> str:
        data = {"alert": self.alert.to_dict(), "sent": self.sent}
        if self.deferred:
            data["deferred"] = True
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AlertRecord:
        data = json.loads(text)
        return cls(Alert.from_dict(data["alert"]), dict(data["sent"]), data.get("deferred", False))


@dataclass
class GroupRecord:
    """When a group on one delivery started waiting, was last sent, and if its send failed."""

    first_pending_at: float | None = None
    last_sent_at: float | None = None
    failed: bool = False

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GroupRecord:
        return cls(**json.loads(text))


class AlertStore(Protocol):
    def alerts(self) -> dict[str, AlertRecord]: ...
    def put_alert(self, record: AlertRecord) -> None: ...
    def delete_alert(self, fingerprint: str) -> None: ...
    def groups(self) -> dict[str, GroupRecord]: ...
    def put_group(self, key: str, record: GroupRecord) -> None: ...
    def locked(self) -> AbstractContextManager[None]: ...


class RedisAlertStore:
    """Records as JSON strings under ``<prefix>alert:<fingerprint>`` and ``<prefix>group:<key>``,
    each expiring ``ttl_seconds`` after its last change."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_seconds: int, where: str):
        self._client = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._where = where

    def ping(self) -> None:
        self._call(self._client.ping)

    def alerts(self) -> dict[str, AlertRecord]:
        loaded = self._load("alert:")
        return {key: AlertRecord.from_json(text) for key, text in loaded.items()}

    def put_alert(self, record: AlertRecord) -> None:
        key = f"{self._prefix}alert:{record.alert.fingerprint}"
        self._call(self._client.set, key, record.to_json(), ex=self._ttl)

    def delete_alert(self, fingerprint: str) -> None:
        self._call(self._client.delete, f"{self._prefix}alert:{fingerprint}")

    def groups(self) -> dict[str, GroupRecord]:
        return {key: GroupRecord.from_json(text) for key, text in self._load("group:").items()}

    def put_group(self, key: str, record: GroupRecord) -> None:
        self._call(self._client.set, f"{self._prefix}group:{key}", record.to_json(), ex=self._ttl)

    @contextmanager
    def locked(self) -> Iterator[None]:
        lock = self._client.lock(f"{self._prefix}lock", timeout=LOCK_SECONDS, blocking_timeout=30)
        acquired = self._call(lock.acquire)
        if not acquired:
            raise StateUnavailable(
                f"could not take the alert delivery lock in {self._where} within 30 seconds; "
                "another sensor tick is delivering"
            )
        try:
            yield
        finally:
            # A lock that cannot be released expires on its own after LOCK_SECONDS.
            with suppress(redis.RedisError):
                lock.release()

    def _load(self, kind: str) -> dict[str, str]:
        pattern = f"{self._prefix}{kind}*"
        keys = self._call(lambda: list(self._client.scan_iter(match=pattern, count=500)))
        if not keys:
            return {}
        values = self._call(self._client.mget, keys)
        start = len(self._prefix) + len(kind)
        return {
            _text(key)[start:]: _text(value)
            for key, value in zip(keys, values, strict=True)
            if value
        }

    def _call(self, method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except redis.RedisError as exc:
            raise StateUnavailable(
                f"could not reach the alert state in {self._where}: {type(exc).__name__}: "
                f"{exc}; check KAREN_REDIS_URL and that Redis is running"
            ) from exc


class MemoryAlertStore:
    """The same records in memory, written to and read from a sensor cursor."""

    def __init__(self, alerts: dict[str, AlertRecord] | None = None, groups=None):
        self._alerts: dict[str, AlertRecord] = dict(alerts or {})
        self._groups: dict[str, GroupRecord] = dict(groups or {})

    def alerts(self) -> dict[str, AlertRecord]:
        return dict(self._alerts)

    def put_alert(self, record: AlertRecord) -> None:
        self._alerts[record.alert.fingerprint] = record

    def delete_alert(self, fingerprint: str) -> None:
        self._alerts.pop(fingerprint, None)

    def groups(self) -> dict[str, GroupRecord]:
        return dict(self._groups)

    def put_group(self, key: str, record: GroupRecord) -> None:
        self._groups[key] = record

    @contextmanager
    def locked(self) -> Iterator[None]:
        yield

    def to_dict(self) -> dict:
        return {
            "alerts": {fp: r.to_json() for fp, r in self._alerts.items()},
            "groups": {key: g.to_json() for key, g in self._groups.items()},
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> MemoryAlertStore:
        data = data or {}
        alerts = {fp: AlertRecord.from_json(t) for fp, t in (data.get("alerts") or {}).items()}
        groups = {k: GroupRecord.from_json(t) for k, t in (data.get("groups") or {}).items()}
        return cls(alerts, groups)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
