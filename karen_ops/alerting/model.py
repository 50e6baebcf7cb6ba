"""What an alert is: labels that identify it, text that explains it, a severity and a state."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum


class Severity(StrEnum):
    """How soon someone must act; routes select on it (label ``severity``)."""

    CRITICAL = "critical"  # data or service at risk now: email and chat
    WARNING = "warning"  # degraded, can wait for working hours: email
    INFO = "info"  # worth knowing, nobody needs to act: the webhook


class Status(StrEnum):
    """Where an alert is in its life."""

    FIRING = "firing"  # the condition holds
    RESOLVED = "resolved"  # the condition held and no longer does


class IncidentLevel(StrEnum):
    """The runbook's incident levels, each with the time within which someone responds."""

    P0 = "P0"  # backups or data at risk: respond within 15 minutes
    P1 = "P1"  # a production job is failing: respond within 1 hour
    P2 = "P2"  # degraded but working: respond within 4 hours
    P3 = "P3"  # informational: respond within one business day

    @property
    def response_time(self) -> str:
        return _RESPONSE_TIMES[self]


_RESPONSE_TIMES = {
    IncidentLevel.P0: "15 minutes",
    IncidentLevel.P1: "1 hour",
    IncidentLevel.P2: "4 hours",
    IncidentLevel.P3: "1 business day",
}

_DEFAULT_LEVELS = {
    Severity.CRITICAL: IncidentLevel.P1,
    Severity.WARNING: IncidentLevel.P2,
    Severity.INFO: IncidentLevel.P3,
}

# Dagster asset-check severities: a failed ERROR check cannot wait, a failed WARN check can.
_CHECK_SEVERITIES = {"ERROR": Severity.CRITICAL, "WARN": Severity.WARNING}


def severity_of_check(check_severity: str) -> Severity:
    """The alert severity of a failed Dagster asset check of severity ERROR or WARN."""
    return _CHECK_SEVERITIES.get(check_severity.upper(), Severity.WARNING)


@dataclass(frozen=True)
class Alert:
    """One alert. Its labels identify it; everything else describes its current state.

    ``labels`` always hold ``alertname`` and ``severity``; the fingerprint is a hash of every
    label but ``severity``, so the same failure seen twice is the same alert even when a check's
    severity was changed in between.
    """

    labels: dict[str, str]
    summary: str
    impact: str
    details: str = ""
    link: str | None = None
    status: Status = Status.FIRING
    level: IncidentLevel | None = None
    starts_at: float = 0.0
    ends_at: float | None = None
    cause: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # A notice of something already over, such as a refused request: sent once on every
    # delivery, then forgotten. Nothing later can resolve it, and a firing alert that nothing
    # resolves would otherwise repeat every hour until its state expires after a week.
    one_off: bool = False

    @property
    def name(self) -> str:
        return self.labels["alertname"]

    @property
    def severity(self) -> Severity:
        return Severity(self.labels["severity"])

    @property
    def incident_level(self) -> IncidentLevel:
        return self.level or _DEFAULT_LEVELS[self.severity]

    @property
    def fingerprint(self) -> str:
        identity = {k: v for k, v in self.labels.items() if k != "severity"}
        canonical = json.dumps(identity, sort_keys=True).encode()
        return hashlib.sha256(canonical).hexdigest()[:16]

    def resolved(self, at: float, cause: str | None = None) -> Alert:
        return replace(self, status=Status.RESOLVED, ends_at=at, cause=cause or self.cause)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        data["level"] = self.level.value if self.level else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Alert:
        fields = dict(data)
        fields["status"] = Status(fields["status"])
        fields["level"] = IncidentLevel(fields["level"]) if fields.get("level") else None
        return cls(**fields)


def make_labels(alertname: str, severity: Severity, **labels: str | None) -> dict[str, str]:
    """Alert labels without empty values, as Alertmanager expects."""
    present = {key: str(value) for key, value in labels.items() if value not in (None, "")}
    return {"alertname": alertname, "severity": severity.value, **present}
