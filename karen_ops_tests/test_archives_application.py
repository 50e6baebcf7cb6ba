"""application_backup: the application folder without what is rebuilt, archived weekly."""

from __future__ import annotations

import os

from karen_ops_tests.archives_fixtures import (
    archive_names,
    extract,
    failure_message,
    host_fixture,  # noqa: F401 - a fixture, used by name
    materialization_metadata,
    materialize,
    only_manifest,
    stored_keys,
    week_fixture,  # noqa: F401 - a fixture, used by name
)

KEPT = {
    "main.py": b"from fastapi import FastAPI\napp = FastAPI()\n",
    "static/logo.png": bytes(range(256)) * 64,
    "frontend/package.json": b'{"name": "karen-web"}\n',
    "frontend/.next/BUILD_ID": b"build-42\n",
    "uploads/report.pdf": b"%PDF-1.7\n" + os.urandom(4096),
}
REBUILT = {
    ".venv/pyvenv.cfg": b"home = /usr/bin\n",
    ".venv/lib/python3.11/site-packages/fastapi/__init__.py": b"",
    "prod-env/pyvenv.cfg": b"home = /usr/bin\n",
    "prod-env/bin/python": b"#!",
    "frontend/node_modules/react/index.js": b"module.exports = {}\n",
    "__pycache__/main.cpython-311.pyc": b"\x00\x01",
    "frontend/.next/cache/webpack/chunk": b"cached",
    ".git/HEAD": b"ref: refs/heads/main\n",
    ".env": b"JWT_SECRET=abc\n",
}


def _app(host):
    app = host.root / "opt/ai-karen"
    for relative, data in {**KEPT, **REBUILT}.items():
        host.write(f"opt/ai-karen/{relative}", data)
    (app / "data").mkdir()
    os.symlink("static", app / "assets")
    return app


def test_application_archive_round_trips_and_leaves_out_what_is_rebuilt(host, store, week):
    app = _app(host)
    host.configure(application_paths=[str(app)])

    result = materialize("application_backup", store, week)

    assert result.success
    manifest = only_manifest(store, "application")
    prefix = str(app).lstrip("/")
    assert extract(store, manifest) == {f"{prefix}/{name}": data for name, data in KEPT.items()}
    names = archive_names(store, manifest)
    assert f"{prefix}/data" in names, "an empty folder is kept"
    assert f"{prefix}/assets" in names, "a link is kept as a link"
    assert not any(name.startswith(f"{prefix}/prod-env") for name in names), names
    assert manifest.kind == "application"
    assert manifest.archive_key.startswith(f"application/web-1/{week}/")
    metadata = materialization_metadata(result, "application_backup")
    assert metadata["files"] == len(KEPT)
    assert metadata["verified"] is True


def test_configured_excludes_replace_the_defaults_but_virtualenvs_stay_out(host, store, week):
    app = _app(host)
    host.configure(application_paths=[str(app)], application_excludes=["uploads", "*.png"])

    result = materialize("application_backup", store, week)

    assert result.success
    prefix = str(app).lstrip("/")
    archived = set(extract(store, only_manifest(store, "application")))
    expected = {name for name in {**KEPT, **REBUILT} if "pyvenv" not in name}
    expected -= {"uploads/report.pdf", "static/logo.png", "prod-env/bin/python"}
    expected -= {".venv/lib/python3.11/site-packages/fastapi/__init__.py"}
    assert archived == {f"{prefix}/{name}" for name in expected}


def test_missing_application_folder_fails_naming_it_and_the_setting(host, store, week):
    gone = host.root / "opt/ai-karen"
    host.configure(application_paths=[str(gone)])

    result = materialize("application_backup", store, week)

    assert not result.success
    assert failure_message(result) == (
        f"none of the paths in archives.application_paths exists on this host: {gone}; set "
        "archives.application_paths in the KAREN_OPS_CONFIG file to the paths this host uses"
    )
    assert stored_keys(store) == []


def test_unreadable_settings_section_fails_with_the_known_settings(host, store, week):
    host.settings_file.write_text("archives:\n  app_path: /opt/ai-karen\n")

    result = materialize("application_backup", store, week)

    assert not result.success
    message = failure_message(result)
    assert message.startswith(
        f"unknown archives setting(s) app_path in {host.settings_file}; "
        "known settings are application_excludes, application_paths, compression_level,"
    )
