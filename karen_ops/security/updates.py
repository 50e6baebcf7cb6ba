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


def outdated_python_packages(python: str) -> tuple[list[Outdated], str | None]:
    """``pip list --outdated`` of ``python``'s environment; the second value says why the
    list could not be made, when it could not."""
    if shutil.which(python) is None:
        return [], f"no Python at {python}; set security.application_python"
    try:
        completed = subprocess.run(
            [
                python,
                "-m",
                "pip",
                "list",
                "--outdated",
                "--format=json",
                "--disable-pip-version-check",
            ],
            capture_output=True,
            text=True,
            timeout=_PIP_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [], f"pip list --outdated took over {_PIP_TIMEOUT_SECONDS} s"
    if completed.returncode != 0:
        return [], f"pip list --outdated failed: {completed.stderr.strip()[-300:]}"
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


def pending_host_updates() -> tuple[list[HostUpdate], str | None]:
    """Upgrades ``apt-get --simulate upgrade`` would install, from the local package lists."""
    apt = shutil.which("apt-get")
    if apt is None:
        return [], "apt-get is not available on this host"
    try:
        completed = subprocess.run(
            [apt, "--simulate", "--quiet", "upgrade"],
            capture_output=True,
            text=True,
            timeout=_APT_TIMEOUT_SECONDS,
            check=False,
            env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
    except subprocess.TimeoutExpired:
        return [], f"apt-get --simulate upgrade took over {_APT_TIMEOUT_SECONDS} s"
    if completed.returncode != 0:
        return [], f"apt-get --simulate upgrade failed: {completed.stderr.strip()[-300:]}"
    return parse_apt_simulation(completed.stdout), None


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
