"""pending_updates end to end: a real application venv, a local package index, apt's output."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import dagster as dg
import pytest

from karen_ops.security.definitions import build_definitions
from karen_ops.security.settings import SecuritySettingsResource
from karen_ops.settings import ScheduleSettings

PACKAGE = "karen-tinypkg"
MODULE = "karen_tinypkg"

APT_OUTPUT = """\
NOTE: This is only a simulation!
Reading package lists...
Inst openssl [3.0.11-1~deb12u1] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2024b-0+deb12u1 Debian:12.8/stable [all])
Conf openssl (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])
Conf tzdata (2024b-0+deb12u1 Debian:12.8/stable [all])
"""


def _wheel(folder: Path, version: str) -> Path:
    """A pure-Python wheel of a two-file package: its module and its metadata."""
    files = {
        f"{MODULE}.py": f'VERSION = "{version}"\n',
        f"{MODULE}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\n"
        ),
        f"{MODULE}-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: karen-ops-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = f"{MODULE}-{version}.dist-info/RECORD"
    rows = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        rows.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    files[record] = "\n".join([*rows, f"{record},,"]) + "\n"

    path = folder / f"{MODULE}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def _pip(python: Path, *args: str) -> str:
    return subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


@pytest.fixture(scope="module")
def application(tmp_path_factory):
    """A venv with karen-tinypkg 1.0 installed from a local index that also offers 1.1."""
    root = tmp_path_factory.mktemp("application")
    index = root / "index"
    index.mkdir()
    _wheel(index, "1.0")
    _wheel(index, "1.1")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    _pip(python, "install", "--no-index", "--find-links", str(index), f"{PACKAGE}==1.0")
    return python, index


def _materialize(**settings):
    defs = build_definitions(ScheduleSettings())
    assets = [a for a in defs.assets if a.key.to_user_string() == "pending_updates"]
    result = dg.materialize(
        assets,
        resources={"security_settings": SecuritySettingsResource(**settings)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    return result.asset_materializations_for_node("pending_updates")[0].metadata


def test_outdated_package_and_host_updates_are_reported_and_nothing_is_installed(
    application, tmp_path
):
    python, index = application
    apt_output = tmp_path / "apt-simulate.txt"
    apt_output.write_text(APT_OUTPUT)
    installed_before = json.loads(_pip(python, "list", "--format=json"))

    metadata = _materialize(
        application_python=str(python),
        python_index_args=["--no-index", "--find-links", str(index)],
        host_updates_command=["cat", str(apt_output)],
    )

    report = metadata["report"].value
    assert f"| {PACKAGE} | 1.0 | 1.1 |" in report
    assert metadata["outdated_python_packages"].value == 1
    assert metadata["host_updates"].value == 2
    assert metadata["host_security_updates"].value == 1
    assert metadata["python_checked"].value is True
    assert metadata["host_checked"].value is True
    # Security updates come first.
    assert report.index("| openssl | 3.0.15-1~deb12u1 | yes |") < report.index(
        "| tzdata | 2024b-0+deb12u1 | no |"
    )
    assert json.loads(_pip(python, "list", "--format=json")) == installed_before
    imported = subprocess.run(
        [str(python), "-c", f"import {MODULE}; print({MODULE}.VERSION)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert imported.stdout.strip() == "1.0"


def test_missing_python_and_host_command_are_reported_as_not_checked(tmp_path):
    metadata = _materialize(
        application_python=str(tmp_path / "no-venv" / "bin" / "python"),
        host_updates_command=["no-such-apt-get", "--simulate", "upgrade"],
    )

    report = metadata["report"].value
    assert metadata["python_checked"].value is False
    assert metadata["host_checked"].value is False
    assert (
        f"Not checked: no Python at {tmp_path}/no-venv/bin/python; "
        "set security.application_python." in report
    )
    assert "Not checked: no-such-apt-get is not available on this host." in report
