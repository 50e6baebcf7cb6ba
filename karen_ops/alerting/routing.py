"""Which channels an alert goes to, and how alerts are grouped and repeated, like Alertmanager.

Routes are tried in order; the first whose matchers all hold takes the alert, unless it says
``continue``, in which case later routes are tried as well. Within a route, alerts with the
same values of the ``group_by`` labels form one group and go out in one notification:

- ``group_wait``: how long a new group waits for more alerts before its first notification;
- ``group_interval``: how long after a notification a changed group waits before the next;
- ``repeat_interval``: after how long an unchanged group that still fires is sent again.

The defaults mirror the Alertmanager set-up this replaces: critical alerts to email and
Slack, warnings to email, everything else to the webhook, grouped by alert name and repeated
hourly. Every alert also goes to Alertmanager's v2 API when ``KAREN_ALERTMANAGER_URL`` is
set, refreshed every minute so Alertmanager does not resolve it on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from karen_ops import settings
from karen_ops.alerting.model import Alert
from karen_ops.errors import ConfigurationError

CHANNEL_NAMES = ("slack", "email", "webhook", "alertmanager")


@dataclass(frozen=True)
class Route:
    """One route: which alerts it takes, where they go, and its grouping timers."""

    name: str
    channels: tuple[str, ...]
    match: dict[str, str] = field(default_factory=dict)
    group_by: tuple[str, ...] = ("alertname",)
    # A sensor tick already collects everything that happened since the previous tick, so the
    # sensor interval (30 seconds) is the wait; a longer wait holds the first notice longer.
    group_wait_seconds: float = 0
    group_interval_seconds: float = 300
    repeat_interval_seconds: float = 3600
    # Like Alertmanager's ``continue``: later routes are tried after this one matched.
    continue_matching: bool = False

    def matches(self, alert: Alert) -> bool:
        return all(alert.labels.get(key) == value for key, value in self.match.items())

    def group_key(self, alert: Alert) -> str:
        values = ",".join(f"{label}={alert.labels.get(label, '')}" for label in self.group_by)
        return f"{self.name}:{{{values}}}"


@dataclass(frozen=True)
class AlertingConfig:
    """The ``alerting`` section of the settings file, with today's procedures as defaults."""

    routes: tuple[Route, ...]
    # Failed runs of these jobs are critical; failed runs of any other job are warnings.
    critical_jobs: tuple[str, ...] = ("nightly_backup",)
    # Runs of these assets picked by hand (command line, an asset's page) are critical too.
    critical_assets: tuple[str, ...] = ("postgres_backup", "backup_verification")
    # The newest verified backup older than this is a critical alert.
    stale_backup_hours: float = 26
    # How long Redis keeps the state of an alert nobody has touched.
    state_ttl_hours: float = 7 * 24

    def routes_for(self, alert: Alert) -> list[Route]:
        chosen = []
        for route in self.routes:
            if route.matches(alert):
                chosen.append(route)
                if not route.continue_matching:
                    break
        return chosen


def default_routes() -> tuple[Route, ...]:
    return (
        Route(
            "alertmanager",
            ("alertmanager",),
            group_by=("alertname", "job", "asset", "check", "partition"),
            group_wait_seconds=0,
            group_interval_seconds=0,
            repeat_interval_seconds=60,
            continue_matching=True,
        ),
        Route("critical", ("email", "slack"), match={"severity": "critical"}),
        Route("warning", ("email",), match={"severity": "warning"}),
        Route("default", ("webhook",)),
    )


def load_alerting_config() -> AlertingConfig:
    """The ``alerting`` section of the ``KAREN_OPS_CONFIG`` file, or the defaults."""
    section = settings.config_section("alerting")
    where = f"the alerting section of {settings.env(settings.OPS_CONFIG)}"
    return parse_alerting_config(section, where=where)


def parse_alerting_config(section: dict, *, where: str = "alerting settings") -> AlertingConfig:
    known = {
        "routes",
        "critical_jobs",
        "critical_assets",
        "stale_backup_hours",
        "state_ttl_hours",
        "defaults",
    }
    _refuse_unknown(section, known, where)
    defaults = section.get("defaults") or {}
    routes = section.get("routes")
    parsed = (
        tuple(_parse_route(raw, defaults, where) for raw in routes) if routes else default_routes()
    )
    return AlertingConfig(
        routes=parsed,
        critical_jobs=tuple(section.get("critical_jobs", AlertingConfig.critical_jobs)),
        critical_assets=tuple(section.get("critical_assets", AlertingConfig.critical_assets)),
        stale_backup_hours=_seconds_like(section, "stale_backup_hours", 26, where),
        state_ttl_hours=_seconds_like(section, "state_ttl_hours", 7 * 24, where),
    )


def _seconds_like(section: dict, key: str, default: float, where: str) -> float:
    """A duration setting: a number of zero or more."""
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigurationError(
            f"{key} in {where} must be a number of zero or more, not {value!r}"
        )
    return float(value)


_ROUTE_KEYS = {f.name for f in fields(Route)} - {"continue_matching"} | {"continue"}


def _parse_route(raw: dict, defaults: dict, where: str) -> Route:
    if not isinstance(raw, dict) or "name" not in raw or "channels" not in raw:
        raise ConfigurationError(
            f"every route in {where} needs a name and a list of channels; got {raw!r}"
        )
    _refuse_unknown(raw, _ROUTE_KEYS, f"route {raw['name']} in {where}")
    unknown_channels = sorted(set(raw["channels"]) - set(CHANNEL_NAMES))
    if unknown_channels:
        raise ConfigurationError(
            f"route {raw['name']} in {where} names unknown channel(s) "
            f"{', '.join(unknown_channels)}; channels are {', '.join(CHANNEL_NAMES)}"
        )
    merged = {**defaults, **raw}
    timers = {
        key: _seconds_like(merged, key, 0, f"route {raw['name']} in {where}")
        for key in ("group_wait_seconds", "group_interval_seconds", "repeat_interval_seconds")
        if key in merged
    }
    return Route(
        name=str(raw["name"]),
        channels=tuple(raw["channels"]),
        match={str(k): str(v) for k, v in (raw.get("match") or {}).items()},
        group_by=tuple(merged.get("group_by", ("alertname",))),
        continue_matching=bool(raw.get("continue", False)),
        **timers,
    )


def _refuse_unknown(section: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {', '.join(unknown)} in {where}; "
            f"known settings are {', '.join(sorted(known))}"
        )
