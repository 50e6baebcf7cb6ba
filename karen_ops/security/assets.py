"""Security and log-analysis assets: one day of logs each, file integrity, pending updates."""

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from karen_ops.security import error_log, events, integrity, updates
from karen_ops.security.logs import parse_access_line, parse_error_line, parse_security_line
from karen_ops.security.reading import read_day
from karen_ops.security.settings import SecuritySettingsResource

GROUP = "security"
OWNERS = ["team:platform-ops"]
_LISTED = 20


def _day(context: dg.AssetExecutionContext, timezone: str) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(context.partition_key).replace(tzinfo=ZoneInfo(timezone))
    return start, start + timedelta(days=1)


def build_security_assets(timezone: str) -> list[dg.AssetsDefinition]:
    partitions = dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone=timezone)

    @dg.asset(
        partitions_def=partitions,
        group_name=GROUP,
        owners=OWNERS,
        check_specs=[
            dg.AssetCheckSpec(
                "no_security_events",
                asset="security_events",
                description="No client crossed a limit or sent SQL injection that day (WARN).",
            )
        ],
        description="Per client and kind: failed-login bursts in sliding windows, write "
        "bursts and SQL-injection attempts, with the lines that could not be parsed.",
    )
    def security_events(
        context: dg.AssetExecutionContext, security_settings: SecuritySettingsResource
    ) -> dg.MaterializeResult:
        s = security_settings.resolve()
        start, end = _day(context, timezone)
        auth_stats = events.LogStats(s.security_log)
        access_stats = events.LogStats(s.access_log)
        auth = read_day(s.security_log, parse_security_line, start, end, auth_stats, "security_log")
        findings = events.failed_login_bursts(
            auth, s.failed_login_limit, timedelta(minutes=s.failed_login_window_minutes)
        )
        requests = read_day(s.access_log, parse_access_line, start, end, access_stats, "access_log")
        findings += events.request_findings(requests, s.write_request_limit)
        stats = [auth_stats, access_stats]
        context.log.info(
            "security events day=%s findings=%d unparseable=%d",
            context.partition_key,
            len(findings),
            sum(x.unparseable for x in stats),
        )
        by_kind = {k.value: sum(f.count for f in findings if f.kind is k) for k in events.Kind}
        metadata: dict[str, object] = {
            "findings": len(findings),
            "clients": len({f.client for f in findings}),
            "unparseable_lines": sum(x.unparseable for x in stats),
            "report": dg.MetadataValue.md(events.findings_markdown(findings, stats)),
            **{f"{kind} count": count for kind, count in by_kind.items()},
        }
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                dg.AssetCheckResult(
                    check_name="no_security_events",
                    passed=not findings,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=events.findings_summary(findings, _LISTED),
                    metadata={"findings": len(findings)},
                )
            ],
        )

    @dg.asset(
        partitions_def=partitions,
        group_name=GROUP,
        owners=OWNERS,
        check_specs=[
            dg.AssetCheckSpec(
                "critical_files_match_baseline",
                asset="file_integrity",
                description="Every critical file exists and has its accepted SHA-256 (ERROR; "
                "a missing or unreadable file until it is restored, readable or no longer "
                "watched, a changed one until "
                "`karen-ops integrity accept`).",
            )
        ],
        description="SHA-256 of the critical files against the accepted baseline.",
    )
    def file_integrity(
        context: dg.AssetExecutionContext, security_settings: SecuritySettingsResource
    ) -> dg.MaterializeResult:
        s = security_settings.resolve()
        observed = integrity.hash_files(s.critical_files)
        baseline = integrity.stored_baseline(context.instance)
        first_run = baseline is None
        if baseline is None:
            baseline = integrity.present(observed)
            context.log.info("file integrity baseline recorded files=%d", len(baseline))
        result = integrity.compare(baseline, observed)
        description = integrity.describe(result, _LISTED)
        for kind, paths in (("missing", result.missing), ("unreadable", result.unreadable)):
            if paths:
                context.log.warning(
                    "critical files %s count=%d paths=%s", kind, len(paths), ",".join(paths)
                )
        return dg.MaterializeResult(
            metadata={
                "files": len(observed),
                "baseline_recorded_now": first_run,
                "changed": len(result.changed),
                "missing": len(result.missing),
                "unreadable": len(result.unreadable),
                "observed": json.dumps(observed, sort_keys=True),
                "baseline": json.dumps(baseline, sort_keys=True),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="critical_files_match_baseline",
                    passed=result.clean,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=description,
                    metadata={
                        "changed_files": ", ".join(result.changed) or "none",
                        "missing_files": ", ".join(result.missing) or "none",
                        "unreadable_files": ", ".join(result.unreadable) or "none",
                        "new_files": ", ".join(result.added) or "none",
                    },
                )
            ],
        )

    @dg.asset(
        partitions_def=partitions,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"markdown"},
        description="The day's errors from the JSON-lines error log: top types, errors by "
        "hour and the most affected endpoints.",
    )
    def error_analysis(
        context: dg.AssetExecutionContext, security_settings: SecuritySettingsResource
    ) -> dg.MaterializeResult:
        s = security_settings.resolve()
        start, end = _day(context, timezone)
        stats = events.LogStats(s.error_log)
        records = list(read_day(s.error_log, parse_error_line, start, end, stats, "error_log"))
        summary = error_log.error_summary(records, ZoneInfo(timezone))
        return dg.MaterializeResult(
            metadata={
                "errors": len(records),
                "files_read": "\n".join(stats.files),
                "unparseable_lines": stats.unparseable,
                "unparseable_examples": "\n".join(stats.examples) or "none",
                "report": dg.MetadataValue.md(error_log.error_markdown(summary)),
            }
        )

    @dg.asset(
        group_name=GROUP,
        owners=OWNERS,
        kinds={"markdown"},
        description="Outdated packages of the application's Python environment and pending "
        "host updates, security first. Read only: nothing is installed.",
    )
    def pending_updates(
        context: dg.AssetExecutionContext, security_settings: SecuritySettingsResource
    ) -> dg.MaterializeResult:
        s = security_settings.resolve()
        python, python_note = updates.outdated_python_packages(
            s.application_python, s.python_index_args
        )
        host, host_note = updates.pending_host_updates(s.host_updates_command)
        context.log.info("pending updates python=%d host=%d", len(python), len(host))
        for part, note in (("python", python_note), ("host", host_note)):
            if note:
                context.log.warning("pending updates part=%s not checked: %s", part, note)
        return dg.MaterializeResult(
            metadata={
                "python_checked": python_note is None,
                "host_checked": host_note is None,
                "outdated_python_packages": len(python),
                "host_updates": len(host),
                "host_security_updates": sum(1 for u in host if u.security),
                "report": dg.MetadataValue.md(
                    updates.updates_markdown(python, python_note, host, host_note)
                ),
            }
        )

    return [security_events, file_integrity, error_analysis, pending_updates]
