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

import difflib
import math
from dataclasses import dataclass, field
from datetime import date

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
    return parse_alerting_config(section, source=settings.env(settings.OPS_CONFIG))


_TIMERS = ("group_wait_seconds", "group_interval_seconds", "repeat_interval_seconds")
_DEFAULTS_KEYS = ("group_by", *_TIMERS)
_ROUTE_KEYS = ("name", "channels", "match", "continue", *_DEFAULTS_KEYS)
_SECTION_KEYS = (
    "routes",
    "critical_jobs",
    "critical_assets",
    "stale_backup_hours",
    "state_ttl_hours",
    "defaults",
)
_ROUTE_EXAMPLE = "{name: critical, match: {severity: critical}, channels: [email, slack]}"


def parse_alerting_config(section: dict, *, source: str | None = None) -> AlertingConfig:
    """``section`` checked setting by setting; an error names the setting (as in
    ``alerting.routes[1].match``), the file ``source`` and how to fix it."""
    check = _Checker(source or "the alerting settings")
    check.known_keys(section, _SECTION_KEYS, "alerting")
    defaults = check.route_defaults(section)
    return AlertingConfig(
        routes=check.routes(section, defaults),
        critical_jobs=check.names(section, "critical_jobs", AlertingConfig.critical_jobs),
        critical_assets=check.names(section, "critical_assets", AlertingConfig.critical_assets),
        stale_backup_hours=check.amount(section, "stale_backup_hours", 26, "alerting"),
        state_ttl_hours=check.amount(section, "state_ttl_hours", 7 * 24, "alerting"),
    )


@dataclass(frozen=True)
class _Checker:
    """Reads the alerting settings of one file, refusing what would be misread: a bare string
    where a list belongs would otherwise become a list of its letters."""

    source: str

    def error(self, setting: str, problem: str, fix: str) -> ConfigurationError:
        return settings.setting_error(setting, problem, fix, source=self.source)

    def known_keys(self, mapping: dict, known: tuple[str, ...], path: str) -> None:
        unknown = [key for key in mapping if key not in known]
        if unknown:
            raise ConfigurationError(
                f"unknown setting(s) {settings.key_list(unknown)} in {path} in {self.source}; "
                f"known settings are {', '.join(sorted(known))}"
            )

    def mapping(self, value: object, setting: str, fix: str) -> dict:
        if isinstance(value, dict):
            return value
        raise self.error(setting, f"must be a mapping, not {settings.describe(value)}", fix)

    def strings(self, value: object, setting: str, example: str) -> tuple[str, ...]:
        if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
            return tuple(value)
        if isinstance(value, list):
            problem = "must hold only names, and one of its items is not a name"
        else:
            problem = f"must be a list of names, not {settings.describe(value)}"
        raise self.error(
            setting,
            problem,
            f"write it as a list, even of one: {setting.rsplit('.', 1)[-1]}: {example}",
        )

    def names(self, section: dict, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if key not in section:
            return default
        return self.strings(section[key], f"alerting.{key}", f"[{', '.join(default)}]")

    def amount(self, mapping: dict, key: str, default: float, path: str) -> float:
        """A duration or count: a finite number of zero or more."""
        value = mapping.get(key, default)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value) and value >= 0:
                return float(value)
            shown = repr(value).replace("inf", ".inf").replace("nan", ".nan")
        else:
            shown = settings.describe(value)
        raise self.error(
            f"{path}.{key}",
            f"must be a finite number of zero or more, not {shown}",
            f"write it as {key}: {default:g}, for example",
        )

    def route_defaults(self, section: dict) -> dict:
        """The ``defaults`` every route starts from, each checked once here."""
        if "defaults" not in section:
            return {}
        fix = "write it as defaults: {group_by: [alertname], group_wait_seconds: 0}"
        raw = self.mapping(section["defaults"], "alerting.defaults", fix)
        self.known_keys(raw, _DEFAULTS_KEYS, "alerting.defaults")
        return self.route_settings(raw, "alerting.defaults")

    def route_settings(self, raw: dict, path: str) -> dict:
        """The grouping and timer settings of ``raw``, checked; absent ones left out."""
        found: dict = {
            key: self.amount(raw, key, getattr(Route, key), path) for key in _TIMERS if key in raw
        }
        if "group_by" in raw:
            found["group_by"] = self.strings(raw["group_by"], f"{path}.group_by", "[alertname]")
        return found

    def routes(self, section: dict, defaults: dict) -> tuple[Route, ...]:
        if "routes" not in section:
            return default_routes()
        raw = section["routes"]
        if raw == [] or raw is None:
            raise self.error(
                "alerting.routes",
                "is empty, so no alert would go anywhere",
                "list at least one route, or remove routes: to use the default routes",
            )
        if not isinstance(raw, list):
            raise self.error(
                "alerting.routes",
                f"must be a list of routes, not {settings.describe(raw)}",
                f"write each route as a list item: - {_ROUTE_EXAMPLE}",
            )
        routes = tuple(
            self.route(entry, f"alerting.routes[{i}]", defaults) for i, entry in enumerate(raw)
        )
        self.unique_names(routes)
        return routes

    def route(self, raw: object, path: str, defaults: dict) -> Route:
        raw = self.mapping(raw, path, f"write each route as {_ROUTE_EXAMPLE}")
        self.known_keys(raw, _ROUTE_KEYS, path)
        for key in ("name", "channels"):
            if key not in raw:
                raise self.error(path, f"has no {key}", f"write each route as {_ROUTE_EXAMPLE}")
        name = raw["name"]
        if not isinstance(name, str) or not name.strip():
            raise self.error(
                f"{path}.name", f"must be a name, not {settings.describe(name)}", "name the route"
            )
        # An empty list mutes what the route matches, as Alertmanager's null receiver does;
        # karen-ops doctor names such routes, so a mute is never a surprise.
        channels = self.strings(raw["channels"], f"{path}.channels", "[email, slack]")
        unknown = sorted(set(channels) - set(CHANNEL_NAMES))
        if unknown:
            raise self.error(
                f"{path}.channels",
                f"names unknown channel(s) {_misspelt(unknown)}",
                f"channels are {', '.join(CHANNEL_NAMES)}",
            )
        return Route(
            name=name,
            channels=channels,
            match=self.matchers(raw.get("match", {}), f"{path}.match"),
            continue_matching=self.flag(raw.get("continue", False), f"{path}.continue"),
            **{**defaults, **self.route_settings(raw, path)},
        )

    def matchers(self, raw: object, setting: str) -> dict[str, str]:
        """Label matchers: each label to the one value it must have."""
        example = "match: {severity: critical}"
        matchers = self.mapping(raw, setting, f"write it as {example}")
        for label, value in matchers.items():
            # A YAML boolean or float would match no label: labels hold text such as "true".
            text = isinstance(value, str | int | date) and not isinstance(value, bool)
            if not isinstance(label, str) or not text:
                raise self.error(
                    setting,
                    "must map each label to the one value it must have",
                    f"write it as {example}, quoting values such as 'true' or '1.5'",
                )
        return {label: str(value) for label, value in matchers.items()}

    def flag(self, value: object, setting: str) -> bool:
        if isinstance(value, bool):
            return value
        raise self.error(
            setting, f"must be true or false, not {settings.describe(value)}", "write true or false"
        )

    def unique_names(self, routes: tuple[Route, ...]) -> None:
        # Groups are keyed by route name, so two routes of one name would share their groups.
        names = [route.name for route in routes]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise self.error(
                "alerting.routes",
                f"has more than one route named {', '.join(repeated)}",
                "give every route a name of its own",
            )


def _misspelt(unknown: list[str]) -> str:
    """Unknown channels quoted only when close to a real one, a typo: anything else may be a
    webhook URL or a token pasted in the wrong place, so it is counted, not shown."""
    typos = [name for name in unknown if difflib.get_close_matches(name, CHANNEL_NAMES, n=1)]
    others = len(unknown) - len(typos)
    return ", ".join(typos + ([f"{others} that are not channel names"] if others else []))
