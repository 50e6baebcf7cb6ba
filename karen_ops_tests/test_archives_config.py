"""config_backup: the host's configuration archived daily, with the secrets check."""

from __future__ import annotations

import hashlib

import dagster as dg

from karen_ops.resources.store.catalog import list_backups
from karen_ops_tests.archives_fixtures import (
    EncryptedStoreResource,
    day_fixture,  # noqa: F401 - a fixture, used by name
    extract,
    failure_message,
    host_fixture,  # noqa: F401 - a fixture, used by name
    materialization_metadata,
    materialize,
    only_manifest,
    read_manifest_json,
    stored_keys,
    warnings_logged,
)
from karen_ops_tests.conftest import check_evaluations

ENV = b"DATABASE_URL=postgresql://karen:s3cret@db/karen\nJWT_SECRET=abc123\n"
SITE = b"server {\n  listen 443 ssl;\n  server_name karen.example.org;\n}\n"
API_UNIT = b"[Service]\nExecStart=/opt/ai-karen/.venv/bin/uvicorn main:app\n"
WEB_UNIT = b"[Service]\nExecStart=/usr/bin/node server.js\n"
CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _karen_host(host):
    files = {
        host.write("opt/ai-karen/.env", ENV): ENV,
        host.write("etc/nginx/sites-available/ai-karen", SITE): SITE,
        host.write("etc/systemd/system/ai-karen-api.service", API_UNIT): API_UNIT,
        host.write("etc/systemd/system/ai-karen-web.service", WEB_UNIT): WEB_UNIT,
        host.write("etc/ssl/certs/ai-karen.crt", CERT): CERT,
    }
    host.write("etc/systemd/system/redis.service", b"[Service]\n")
    host.configure(
        config_paths=[
            str(host.root / "opt/ai-karen/.env"),
            str(host.root / "etc/nginx/sites-available/ai-karen"),
            str(host.root / "etc/systemd/system/ai-karen*.service"),
            str(host.root / "etc/ssl/certs/ai-karen.crt"),
        ]
    )
    return files


def test_config_archive_round_trips_every_configured_file_byte_for_byte(host, store, day):
    files = _karen_host(host)

    result = materialize("config_backup", store, day)

    assert result.success
    manifest = only_manifest(store, "config")
    assert extract(store, manifest) == {str(p).lstrip("/"): data for p, data in files.items()}
    assert {entry["path"]: entry["sha256"] for entry in manifest.files} == {
        str(p): hashlib.sha256(data).hexdigest() for p, data in files.items()
    }
    assert manifest.missing == []
    stored = store.read_bytes(manifest.archive_key)
    assert manifest.sha256 == hashlib.sha256(stored).hexdigest()
    assert manifest.size_bytes == len(stored)


def test_config_manifest_carries_the_catalog_fields_and_lists_in_the_catalog(host, store, day):
    _karen_host(host)

    materialize("config_backup", store, day)

    manifest = only_manifest(store, "config")
    raw = read_manifest_json(store, manifest)
    assert raw["kind"] == "config"
    assert raw["name"] == "web-1"
    assert raw["format"] == "tar"
    assert raw["compression"] == "zstd:3"
    assert raw["archive_key"] == f"config/web-1/{day}/{raw['backup_id']}/config.tar.zst"
    assert raw["created_at"].endswith("+00:00")
    [entry] = list_backups(store)
    assert (entry.kind, entry.name, entry.backup_id) == ("config", "web-1", raw["backup_id"])
    assert entry.folder == f"config/web-1/{day}/{raw['backup_id']}/"
    assert entry.size_bytes == raw["size_bytes"]
    assert entry.verified, "a read-back archive carries the verified mark"


def test_missing_config_path_is_reported_and_the_rest_archived(host, store, day):
    env = host.write("opt/ai-karen/.env", ENV)
    gone = host.root / "etc/ssl/certs/ai-karen.crt"
    host.configure(config_paths=[str(env), str(gone)])

    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize("config_backup", store, day, instance=instance)
        warnings = warnings_logged(instance, result)

    assert result.success
    manifest = only_manifest(store, "config")
    assert manifest.missing == [str(gone)]
    assert list(extract(store, manifest)) == [str(env).lstrip("/")]
    metadata = materialization_metadata(result, "config_backup")
    assert metadata["missing"] == str(gone)
    assert metadata["missing_paths"] == 1
    assert warnings == [
        f"archive path missing kind=config path={gone} setting=archives.config_paths"
    ]


def test_every_config_path_missing_fails_naming_them_and_stores_nothing(host, store, day):
    first, second = host.root / "etc/nginx/x", host.root / "etc/ssl/y.crt"
    host.configure(config_paths=[str(first), str(second)])

    result = materialize("config_backup", store, day)

    assert not result.success
    assert failure_message(result) == (
        f"none of the paths in archives.config_paths exists on this host: {first}, {second}; "
        "set archives.config_paths in the KAREN_OPS_CONFIG file to the paths this host uses"
    )
    assert stored_keys(store) == []


def test_env_file_in_an_unencrypted_store_fails_the_secrets_warning(host, store, day):
    _karen_host(host)

    result = materialize("config_backup", store, day)

    assert result.success, "a WARN check does not fail the run"
    check = check_evaluations(result)["secrets_are_encrypted"]
    assert not check.passed
    assert check.severity.value == "WARN"
    env = host.root / "opt/ai-karen/.env"
    assert check.description.startswith(
        f"1 archived file(s) hold secrets and the backup store does not encrypt them: {env};"
    )
    assert check.metadata["secret_paths"].value == str(env)


def test_configured_secret_names_are_warned_about_too(host, store, day):
    key = host.write("etc/ssl/private/ai-karen.key", b"-----BEGIN PRIVATE KEY-----\n")
    token = host.write("etc/ai-karen/token.txt", b"t0ken")
    site = host.write("etc/nginx/sites-available/ai-karen", SITE)
    host.configure(
        config_paths=[str(key), str(token), str(site)], secret_files=["*.key", "*token*"]
    )

    result = materialize("config_backup", store, day)

    check = check_evaluations(result)["secrets_are_encrypted"]
    assert not check.passed
    assert check.metadata["secret_paths"].value == f"{key}, {token}"


def test_env_file_in_an_encrypted_store_passes_the_secrets_check(host, store, day):
    _karen_host(host)

    result = materialize("config_backup", store, day, EncryptedStoreResource(url=store.url))

    assert result.success
    check = check_evaluations(result)["secrets_are_encrypted"]
    assert check.passed
    assert check.metadata["store_encrypted"].value is True
    assert check.metadata["secret_files"].value == 1
    assert only_manifest(store, "config").encrypted is True


def test_config_without_secrets_passes_the_check_in_an_unencrypted_store(host, store, day):
    site = host.write("etc/nginx/sites-available/ai-karen", SITE)
    host.configure(config_paths=[str(site)])

    result = materialize("config_backup", store, day)

    check = check_evaluations(result)["secrets_are_encrypted"]
    assert check.passed
    assert check.metadata["secret_paths"].value == "none"


def test_a_configured_link_is_archived_as_the_file_it_points_to(host, store, day):
    site = host.write("etc/nginx/sites-available/ai-karen", SITE)
    enabled = host.root / "etc/nginx/sites-enabled/ai-karen"
    enabled.parent.mkdir(parents=True)
    enabled.symlink_to(site)
    host.configure(config_paths=[str(enabled)])

    result = materialize("config_backup", store, day)

    assert result.success
    assert extract(store, only_manifest(store, "config")) == {str(enabled).lstrip("/"): SITE}
