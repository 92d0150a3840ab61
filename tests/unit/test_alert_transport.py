"""The smtp_default connection in Airflow's forms (URI, JSON), its defaults, and the .eml outbox."""

from __future__ import annotations

import json
from email import policy
from email.parser import BytesParser

import pytest

from market_access.alerts import transport
from market_access.alerts.compose import Mail, mime
from market_access.alerts.transport import OutboxTransport, SmtpConnection, SmtpTransport
from market_access.settings import BEIJING, Settings


def test_uri_with_every_extra():
    c = SmtpConnection.parse(
        "smtp://alerts%40county:p%40ss%2Fword@mail.county.gov.cn:2525"
        "?from_email=dq%40county.gov.cn&disable_ssl=true&disable_tls=false&timeout=12&retry_limit=2"
    )
    assert (c.host, c.port, c.login, c.password) == ("mail.county.gov.cn", 2525, "alerts@county", "p@ss/word")
    assert (c.use_ssl, c.starttls, c.timeout, c.retry_limit) == (False, True, 12.0, 2)
    assert c.from_email == "dq@county.gov.cn"


def test_airflow_defaults_ssl_on_port_465_and_starttls_on_587():
    # the SMTP provider's defaults: SSL unless disable_ssl; STARTTLS unless disable_tls
    ssl = SmtpConnection.parse("smtp://mail.internal")
    assert (ssl.use_ssl, ssl.starttls, ssl.port, ssl.timeout, ssl.retry_limit) == (True, False, 465, 30.0, 5)
    tls = SmtpConnection.parse("smtp://mail.internal?disable_ssl=true")
    assert (tls.use_ssl, tls.starttls, tls.port) == (False, True, 587)
    plain = SmtpConnection.parse("smtp://mailpit:1025?disable_tls=true&disable_ssl=true")
    assert (plain.use_ssl, plain.starttls, plain.port) == (False, False, 1025)


def test_a_string_false_is_false():
    # URI query values are strings; bool("false") would be True
    c = SmtpConnection.parse("smtp://h:25?disable_ssl=false&disable_tls=False")
    assert c.use_ssl is True


def test_json_form_as_airflow_accepts_it():
    value = json.dumps(
        {
            "conn_type": "smtp",
            "host": "10.1.2.9",
            "port": 587,
            "login": "u",
            "password": "TOPSECRET",
            "extra": {"from_email": "a@b.cn", "disable_ssl": True, "ssl_context": "none"},
        }
    )
    c = SmtpConnection.parse(value)
    assert (c.host, c.port, c.use_ssl, c.starttls, c.verify, c.from_email) == (
        "10.1.2.9",
        587,
        False,
        True,
        False,
        "a@b.cn",
    )
    extra_as_text = SmtpConnection.parse(
        json.dumps({"host": "h", "extra": json.dumps({"disable_ssl": "true"})})
    )
    assert extra_as_text.use_ssl is False


def test_the_password_is_never_shown():
    c = SmtpConnection.parse("smtp://u:TOPSECRET@h:25?disable_ssl=true")
    assert "TOPSECRET" not in repr(c) and "TOPSECRET" not in c.display()
    assert "TOPSECRET" not in SmtpTransport(c).where


@pytest.mark.parametrize(
    "value, message",
    [
        ("http://h:25", "smtp://"),
        ("smtp://:25", "no host"),
        ("smtp://h?disable_ssl=maybe", "not true or false"),
        ("smtp://h?ssl_context=weird", "ssl_context"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_connections_are_clear_errors(value, message):
    with pytest.raises(ValueError, match=message):
        SmtpConnection.parse(value, origin="AIRFLOW_CONN_SMTP_DEFAULT")


def test_resolve_from_the_environment_or_nothing(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    # even inside a task the library asks only the environment (orchestration asks Airflow)
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "data_quality")
    assert transport.resolve() is None  # no variable: the outbox
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", "smtp://relay:25?disable_ssl=true&disable_tls=true")
    c = transport.resolve()
    assert (c.host, c.port, c.origin) == ("relay", 25, "AIRFLOW_CONN_SMTP_DEFAULT")


def test_alert_settings_defaults_and_overrides(monkeypatch, tmp_path):
    for var in ("ALERT_ESCALATE_AFTER_DAYS", "ALERT_MAIL_DIR", "ALERT_MAIL_FROM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MARKET_ACCESS_LOCAL_DIR", str(tmp_path))
    s = Settings()
    assert s.alert_escalate_after_days == 3
    assert s.alert_mail_dir == tmp_path / "mail" / "outbox"
    monkeypatch.setenv("ALERT_ESCALATE_AFTER_DAYS", "5")
    monkeypatch.setenv("ALERT_MAIL_DIR", str(tmp_path / "elsewhere"))
    assert (s.alert_escalate_after_days, s.alert_mail_dir) == (5, tmp_path / "elsewhere")
    monkeypatch.setenv("ALERT_ESCALATE_AFTER_DAYS", "0")
    with pytest.raises(ValueError, match="ALERT_ESCALATE_AFTER_DAYS"):
        _ = s.alert_escalate_after_days


def test_outbox_writes_one_parseable_eml_per_message(tmp_path):
    from datetime import datetime

    mail = Mail(
        "dept",
        "【数据质量告警】区市场监督管理局 · 测试",
        "正文",
        "<p>正文</p>",
        to=[("区市场监督管理局", "a@b.cn")],
    )
    msg = mime(
        mail,
        from_name="区数据管理局 数据平台",
        from_email="x@y.cn",
        now=datetime(2026, 11, 21, tzinfo=BEIJING),
        run_id="r1",
    )
    t = OutboxTransport(tmp_path / "outbox", "x@y.cn")
    first = t.deliver(msg, ["a@b.cn"], label="20261121T000000_dept_X")
    second = t.deliver(msg, ["a@b.cn"], label="20261121T000000_dept_X")
    assert first != second and sorted(
        p.name.startswith("20261121T000000_dept_X_") for p in (tmp_path / "outbox").iterdir()
    ) == [True, True]
    raw = open(first, "rb").read()
    assert b"\r\n" in raw
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == "【数据质量告警】区市场监督管理局 · 测试"
    assert parsed["X-Market-Access-Run-Id"] == "r1"
