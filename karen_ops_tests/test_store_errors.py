"""Store settings and store failures: refused or reported with the location and the fix."""

from __future__ import annotations

import dagster as dg
import pytest

from karen_ops.doctor.store import check_store_writable
from karen_ops.errors import ConfigurationError
from karen_ops.resources.store import BackupStoreResource
from karen_ops.resources.store.configured import open_store
from karen_ops_tests.runs import materialize_day

URLS_WITH_CREDENTIALS = [
    "s3://AKIA:LeakPw3@attack-bucket/p",
    "s3://AKIAONLY@attack-bucket/p",
    # A secret with a '/' in it ends the host early, so the '@' lands in the path.
    "s3://AKIA:Leak/Pw3@attack-bucket/p",
    "ftp://u:LeakPw3@x/y",
    "file://u:LeakPw3@host/var/backups",
]
SECRETS = ("LeakPw3", "Leak/Pw3", "AKIA")


def _messages(exc: BaseException | None) -> str:
    """The exception's message and every message chained to it, as a traceback would show."""
    text = ""
    while exc is not None:
        text += f"{exc}\n"
        exc = exc.__cause__ or exc.__context__
    return text


@pytest.mark.parametrize("url", URLS_WITH_CREDENTIALS)
def test_store_url_with_credentials_is_refused_without_quoting_them(url):
    with pytest.raises(ConfigurationError) as raised:
        open_store(url)

    message = str(raised.value)
    assert message.startswith(f"KAREN_BACKUP_URL ({url.split('://')[0]}://...) carries user info")
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile named by AWS_PROFILE" in (
        message
    )
    assert not any(secret in _messages(raised.value) for secret in SECRETS)


def test_unparsable_store_url_is_refused_without_quoting_it():
    with pytest.raises(ConfigurationError) as raised:
        open_store("s3://AKIA:Leak[Pw3@attack-bucket/p")

    assert str(raised.value).startswith("KAREN_BACKUP_URL is not a valid URL")
    assert not any(secret in _messages(raised.value) for secret in SECRETS)


@pytest.fixture
def local_s3_only(s3_env, monkeypatch):
    """Whatever a store URL says, S3 requests may only reach the test's own S3 server."""
    monkeypatch.setenv("KAREN_S3_ENDPOINT_URL", s3_env)


def test_store_url_with_credentials_stays_out_of_run_storage(
    service_server, store, yesterday, monkeypatch, local_s3_only
):
    monkeypatch.setenv("KAREN_BACKUP_URL", URLS_WITH_CREDENTIALS[0])

    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_day(
            service_server.maintenance,
            store,
            yesterday,
            only="postgres_backup",
            instance=instance,
            store_resource=BackupStoreResource(),
        )
        stored = "\n".join(dg.serialize_value(r) for r in instance.all_logs(result.run_id))

    assert not result.success
    assert "carries user info before its bucket" in stored
    assert not any(secret in stored for secret in SECRETS)


def test_doctor_reports_a_store_url_with_credentials_without_quoting_them(local_s3_only):
    finding = check_store_writable(BackupStoreResource(url=URLS_WITH_CREDENTIALS[0]))

    assert finding.detail.startswith("KAREN_BACKUP_URL (s3://...) carries user info")
    assert not any(secret in f"{finding.detail} {finding.fix}" for secret in SECRETS)
