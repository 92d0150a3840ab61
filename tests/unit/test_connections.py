"""Connection parsing: Airflow URI form for sources (contract §7) and for the warehouse."""

import pytest

from market_access.sources.connection import SourceConnection, from_environment
from market_access.warehouse import WarehouseConfig


def test_source_uri_with_base_path_and_verify():
    c = SourceConnection.from_uri(
        "credit",
        "https://cli%40ent:s3cr%2Ft@10.1.2.3:8443?base_path=%2Fgateway%2Fcredit&verify=false",
    )
    assert c.base_url == "https://10.1.2.3:8443/gateway/credit"
    assert c.client_id == "cli@ent"
    assert c.client_secret == "s3cr/t"
    assert c.verify is False


def test_source_uri_without_base_path_is_server_root():
    c = SourceConnection.from_uri("gov_service", "http://id:secret@gateway.local:8701")
    assert c.base_url == "http://gateway.local:8701"
    assert c.verify is True


def test_secret_never_in_repr():
    c = SourceConnection.from_uri("credit", "http://id:TOPSECRET@h:1")
    assert "TOPSECRET" not in repr(c)
    assert "TOPSECRET" not in str(c)


@pytest.mark.parametrize(
    "uri, message",
    [
        ("ftp://a:b@h:1", "scheme"),
        ("http://h:1", "client id and secret"),
        ("http://a:b@:1", "no host"),
    ],
)
def test_bad_source_uri_is_a_clear_error(uri, message):
    with pytest.raises(ValueError, match=message):
        SourceConnection.from_uri("credit", uri)


def test_from_environment(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_CREDIT", raising=False)
    assert from_environment("credit") is None
    monkeypatch.setenv("AIRFLOW_CONN_CREDIT", "http://a:b@h:9")
    assert from_environment("credit").base_url == "http://h:9"


def test_warehouse_socket_uri_round_trip():
    cfg = WarehouseConfig(host="/work/Main/.local/pgdata", port=None, dbname="warehouse", user="postgres")
    back = WarehouseConfig.from_uri(cfg.airflow_uri())
    assert back.host == "/work/Main/.local/pgdata"  # case kept: it is a path
    assert back.dbname == "warehouse"
    assert back.user == "postgres"


def test_warehouse_tcp_uri_with_password():
    cfg = WarehouseConfig.from_uri("postgresql://etl:p%40ss@db.internal:6432/dw?sslmode=require")
    assert (cfg.host, cfg.port, cfg.dbname, cfg.user, cfg.password) == ("db.internal", 6432, "dw", "etl", "p@ss")
    assert "sslmode=require" in cfg.conninfo()
    assert "p@ss" not in cfg.display()


def test_pgserver_style_uri():
    cfg = WarehouseConfig.from_uri("postgresql://postgres:@/postgres?host=/tmp/pgt")
    assert cfg.host == "/tmp/pgt" and cfg.dbname == "postgres" and cfg.password is None
