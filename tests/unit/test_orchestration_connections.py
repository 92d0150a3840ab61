"""The orchestration layer reads Airflow (connections, the key Variable) and hands plain values to the library."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from market_access import deid
from market_access.alerts.service import destination
from market_access.alerts.transport import SmtpConnection
from market_access.orchestration import connections
from market_access.settings import Settings


def test_smtp_connection_falls_back_on_airflow(monkeypatch):
    # BaseHook stands in for Airflow's connection store; what is tested is the fallback order
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    conn = SimpleNamespace(
        host="relay.internal", port=None, login="u", password="pw", extra_dejson={"disable_ssl": True}
    )
    monkeypatch.setattr(BaseHook, "get_connection", classmethod(lambda cls, conn_id: conn))
    c = connections.smtp_connection()
    # disable_ssl and no port: STARTTLS on the provider's default 587
    assert (c.host, c.port, c.starttls, c.origin) == ("relay.internal", 587, True, "Airflow connection")

    # the environment variable wins over Airflow's store
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", "smtp://env-relay:25?disable_ssl=true&disable_tls=true")
    assert connections.smtp_connection().host == "env-relay"
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT")

    def missing(cls, conn_id):
        raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(missing))
    assert connections.smtp_connection() is None  # not configured in Airflow either: the outbox


def test_the_library_sends_where_it_is_told(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", "smtp://env-relay:25?disable_ssl=true&disable_tls=true")
    monkeypatch.setenv("ALERT_MAIL_DIR", str(tmp_path / "outbox"))
    s = Settings()
    assert destination(s).startswith("smtp://env-relay:25")  # default: the environment
    assert destination(s, smtp=None) == f"{tmp_path / 'outbox'} (.eml files)"  # told: no relay
    relay = SmtpConnection(host="given.relay", port=2525, use_ssl=False, starttls=False)
    assert destination(s, smtp=relay).startswith("smtp://given.relay:2525 (plain")


def test_hmac_key_from_the_variable_text(monkeypatch):
    monkeypatch.delenv(deid.KEY_ENV, raising=False)
    monkeypatch.delenv(deid.KEY_ID_ENV, raising=False)
    k = deid.key_from_environment(variable="cd" * 32, allow_local=False)
    # 64 hex digits → 32 bytes 0xCD; the id is derived from the key as for the environment form
    assert (k.key, k.key_id) == (bytes([0xCD]) * 32, deid.key_id_for(bytes([0xCD]) * 32))
    with pytest.raises(deid.MissingKeyError, match="market_access_hmac_key"):
        deid.key_from_environment(variable=None, allow_local=False)
    # the environment wins, and then Airflow is not even asked for the Variable
    monkeypatch.setenv(deid.KEY_ENV, "ab" * 32)
    assert connections.hmac_key_variable() is None
    assert deid.key_from_environment(variable="cd" * 32).key == bytes([0xAB]) * 32
