"""Pending updates, read only: outdated packages of the application's Python environment and
the host's pending security updates. Nothing is installed; both commands only report."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass

# pip asks the package index for every installed package; apt only reads local lists.
_PIP_TIMEOUT_SECONDS = 300
_APT_TIMEOUT_SECONDS = 120

# The host command runs with a fixed PATH, as cron would run it, not the run worker's own.
_PATH = "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Outdated:
    name: str
    installed: str
    latest: str


@dataclass(frozen=True)
class HostUpdate:
    package: str
    version: str
    security: bool


def outdated_python_packages(
    python: str, index_args: list[str]
) -> tuple[list[Outdated], str | None]:
    """``pip list --outdated`` of ``python``'s environment, asking the index ``index_args``
    name; the second value says why the list could not be made, when it could not."""
    if shutil.which(python) is None:
        return [], f"no Python at {python}; set security.application_python"
    command = [
        python,
        "-m",
        "pip",
        "list",
        "--outdated",
        "--format=json",
        "--disable-pip-version-check",
        *index_args,
    ]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        return [], f"pip list --outdated took over {_PIP_TIMEOUT_SECONDS} s"
    if completed.returncode != 0:
        return [], (
            f"pip list --outdated failed: {_last_line(completed.stderr)}; "
            "check security.python_index_args"
        )
    return parse_pip_outdated(completed.stdout), None


def parse_pip_outdated(output: str) -> list[Outdated]:
    try:
        rows = json.loads(output or "[]")
    except ValueError:
        return []
    return [
        Outdated(str(r.get("name")), str(r.get("version")), str(r.get("latest_version")))
        for r in rows
        if isinstance(r, dict)
    ]


def pending_host_updates(command: list[str]) -> tuple[list[HostUpdate], str | None]:
    """Upgrades ``command`` (``apt-get --simulate upgrade``) says it would install, read from
    the local package lists."""
    shown = " ".join(command)
    program = shutil.which(command[0], path=_PATH) if command else None
    if program is None:
        return [], f"{command[0] if command else '(no command)'} is not available on this host"
    try:
        completed = subprocess.run(
            [program, *command[1:]],
            capture_output=True,
            text=True,
            timeout=_APT_TIMEOUT_SECONDS,
            check=False,
            env={"LC_ALL": "C", "PATH": _PATH},
        )
    except subprocess.TimeoutExpired:
        return [], f"{shown} took over {_APT_TIMEOUT_SECONDS} s"
    if completed.returncode != 0:
        return [], f"{shown} failed: {_last_line(completed.stderr)}"
    return parse_apt_simulation(completed.stdout), None


def _last_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1][-300:] if lines else "no error output"


def parse_apt_simulation(output: str) -> list[HostUpdate]:
    """``Inst <package> [<old>] (<new> <origins>) [...]`` lines; security when an origin
    names a security archive."""
    updates = []
    for line in output.splitlines():
        if not line.startswith("Inst "):
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        detail = line[line.find("(") + 1 : line.find(")")] if "(" in line else ""
        version = detail.split(" ", 1)[0] if detail else "?"
        updates.append(HostUpdate(parts[1], version, "security" in detail.lower()))
    return updates


def updates_markdown(
    python: list[Outdated], python_note: str | None, host: list[HostUpdate], host_note: str | None
) -> str:
    lines = ["### Outdated Python packages", ""]
    if python_note:
        lines.append(f"Not checked: {python_note}.")
    else:
        lines += ["| package | installed | latest |", "|---|---|---|"]
        lines += [f"| {o.name} | {o.installed} | {o.latest} |" for o in python] or [
            "| (none) | | |"
        ]
    lines += ["", "### Pending host updates", ""]
    if host_note:
        lines.append(f"Not checked: {host_note}.")
    else:
        lines += ["| package | version | security |", "|---|---|---|"]
        ordered = sorted(host, key=lambda u: (not u.security, u.package))
        lines += [
            f"| {u.package} | {u.version} | {'yes' if u.security else 'no'} |" for u in ordered
        ] or ["| (none) | | |"]
    return "\n".join(lines)
