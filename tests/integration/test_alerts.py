"""Data-quality alert mails end to end: quality results planted in the embedded PostgreSQL, a real
SMTP server (aiosmtpd) on loopback, the messages parsed back with email.parser.

Every expected subject, count and share below is worked out by hand from the rows planted here.
"""

from __future__ import annotations

import csv
import io
import json
import socket
from datetime import date, datetime
from decimal import Decimal
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from market_access import directory
from market_access.alerts import AlertError, MailError, send_alerts, send_receipts
from market_access.load.schema import bootstrap
from market_access.settings import BEIJING, Settings
from market_access.submissions.inbox import process_inbox

REPO = Path(__file__).resolve().parents[2]
SCJ = "113604210795604218"  # 区市场监督管理局, scjgj@demo-county.gov.cn
WJJ = "1136042104613969X8"  # 区卫生健康局, wjj@demo-county.gov.cn
ZJJ = "11360421025965618K"  # 区住房和城乡建设局, zjj@demo-county.gov.cn
SCJ_MAIL, WJJ_MAIL, ZJJ_MAIL = "scjgj@demo-county.gov.cn", "wjj@demo-county.gov.cn", "zjj@demo-county.gov.cn"
BUREAU_MAIL = "sjglj@demo-county.gov.cn"  # 区数据管理局 (role bureau)
NDRC_MAIL = "fgj@demo-county.gov.cn"  # 区发展和改革局 (role ndrc)
SMTP_USER, SMTP_PASSWORD = "dq-alerts", "s3cr3t-Pw!"
FROM = "market-access@demo-county.gov.cn"

# The quality engine's tables, as the issue fixes them (market_access.quality owns the real DDL).
QUALITY_DDL = """
set role loader;
create table if not exists ops.quality_runs (
    run_id text primary key, started_at timestamptz, finished_at timestamptz, data_date date,
    status text, data_docs_dir text
);
create table if not exists ops.quality_results (
    run_id text, rule_id text, dept_code text, asset text, source text, level text, category text,
    severity text, success boolean, evaluated_count bigint, failed_count bigint, failed_share numeric,
    sample_record_ids text[], observed_on date, observed text, description_zh text, fix_zh text,
    deadline_zh text, data_docs_page text, basis_zh text,
    primary key (run_id, rule_id, dept_code)
);
reset role;
"""

PENALTY_IDS = [f"CF2026-{i:04d}" for i in range(1, 11)]  # 10 sample ids (the engine's maximum)
PENALTIES = "staging.stg_credit__admin_penalties"  # 信用信息共享平台 · 行政处罚 (sources/systems.yml)
BLOCKING = dict(
    rule_id="ms.penalties.uscc_valid", asset=PENALTIES, source="credit", level="row",
    category="有效性", severity="blocking", evaluated_count=480, failed_count=12, failed_share=Decimal("0.025"),
    sample_record_ids=PENALTY_IDS, description_zh="当事人统一社会信用代码校验位错误",
    fix_zh="按营业执照核对统一社会信用代码, 在市场监管信息系统中更正",
    basis_zh="法人和其他组织统一社会信用代码编码规则 GB 32100-2015",
    data_docs_page="validations/ms/penalties.html",
)  # fmt: skip
WARNING = dict(
    rule_id="ms.penalties.publicity_20wd", asset=PENALTIES, source="credit", level="row",
    category="及时性", severity="warning", evaluated_count=200, failed_count=3, failed_share=Decimal("0.015"),
    sample_record_ids=["CF2026-0101", "CF2026-0102", "CF2026-0103"],
    description_zh="处罚决定超过 20 个工作日未公示", fix_zh="在信用平台补充公示",
    deadline_zh="作出决定之日起 20 个工作日内公示", basis_zh="市场监督管理行政处罚信息公示规定 第九条",
)  # fmt: skip
FRESHNESS = dict(
    rule_id="ms.freshness", asset="quality.department_feeds", source="market_supervision", level="dataset",
    category="及时性", severity="warning", evaluated_count=1, failed_count=1, failed_share=Decimal("1"),
    sample_record_ids=[], observed="最近一次同步为 2026-11-18 02:10", description_zh="数据超过 2 天未更新",
    fix_zh="检查接口账号与同步任务", deadline_zh="每日同步",
)  # fmt: skip
PASSING = dict(
    rule_id="ms.cases.not_null", level="row", severity="blocking", evaluated_count=900, failed_count=0
)


def at(day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=BEIJING)


# --- a real SMTP server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Received:
    """The aiosmtpd handler: keeps every accepted message (envelope and bytes)."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.logins: list[str] = []
        self.defer: set[str] = set()  # recipients whose messages get a temporary failure

    async def handle_DATA(self, server, session, envelope):
        if self.defer.intersection(envelope.rcpt_tos):
            return "451 4.3.0 Mailbox temporarily unavailable"
        self.messages.append(
            {"from": envelope.mail_from, "rcpt": list(envelope.rcpt_tos), "raw": bytes(envelope.content)}
        )
        return "250 Message accepted for delivery"

    def __call__(self, server, session, envelope, mechanism, auth_data):  # the authenticator
        ok = auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    def take(self) -> list[dict]:
        """The messages received since the last take, parsed."""
        out = [dict(m, msg=BytesParser(policy=policy.default).parsebytes(m["raw"])) for m in self.messages]
        self.messages.clear()
        return out


def serve_smtp(handler):
    """Run `handler` on an aiosmtpd server on loopback (AUTH without TLS); yields it, its port set."""
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=handler, auth_require_tls=False
    )
    controller.start()
    handler.port = port
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def smtp():
    yield from serve_smtp(Received())


def smtp_uri(port: int, password: str = SMTP_PASSWORD) -> str:
    from urllib.parse import quote

    return (
        f"smtp://{SMTP_USER}:{quote(password, safe='')}@127.0.0.1:{port}"
        f"?disable_ssl=true&disable_tls=true&from_email={quote(FROM)}&timeout=5&retry_limit=0"
    )


@pytest.fixture
def env(monkeypatch, tmp_path, smtp):
    """smtp_default points at the loopback server; run-time files under tmp_path."""
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_uri(smtp.port))
    monkeypatch.setenv("MARKET_ACCESS_LOCAL_DIR", str(tmp_path / "local"))
    monkeypatch.delenv("ALERT_MAIL_DIR", raising=False)
    monkeypatch.delenv("ALERT_ESCALATE_AFTER_DAYS", raising=False)
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    return monkeypatch


# --- the warehouse ----------------------------------------------------------------------------------


@pytest.fixture
def wh(wconn, warehouse_cfg):
    """ops bootstrapped, the directory loaded (config/departments.csv), the quality tables present."""
    bootstrap(wconn)
    directory.load_into_warehouse(wconn, directory.load(REPO / "config" / "departments.csv"))
    wconn.execute(QUALITY_DDL)
    return warehouse_cfg


def plant(conn, run_id: str, data_date: date, results: list[tuple[str, dict, bool]]) -> str:
    """One quality run: (dept_code, rule fields, success) per result row."""
    conn.execute(
        "insert into ops.quality_runs values (%s, %s, %s, %s, 'succeeded', %s)",
        (run_id, at(data_date.day, 3), at(data_date.day, 3, 20), data_date, "/srv/quality/data_docs"),
    )
    for dept, fields, success in results:
        f = {"asset": None, "source": None, "category": None, "failed_share": None, "sample_record_ids": [],
             "observed": None, "description_zh": None, "fix_zh": None, "deadline_zh": None, "data_docs_page": None,
             "basis_zh": None, **fields}  # fmt: skip
        if success:
            f.update(failed_count=0, failed_share=Decimal(0), sample_record_ids=[])
        conn.execute(
            "insert into ops.quality_results values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s)",
            (
                run_id, f["rule_id"], dept, f["asset"], f["source"], f["level"], f["category"], f["severity"],
                success, f["evaluated_count"], f["failed_count"], f["failed_share"], f["sample_record_ids"],
                data_date, f["observed"], f["description_zh"], f["fix_zh"], f["deadline_zh"], f["data_docs_page"],
                f["basis_zh"],
            ),
        )  # fmt: skip
    return run_id


def scj_failing(run_id: str, day: date, conn, *, warning=WARNING, blocking=BLOCKING) -> str:
    """SCJ fails 3 rules (1 blocking), passes 1; WJJ and ZJJ pass everything."""
    return plant(
        conn,
        run_id,
        day,
        [
            (SCJ, warning, False),
            (SCJ, blocking, False),
            (SCJ, FRESHNESS, False),
            (SCJ, PASSING, True),
            (WJJ, BLOCKING, True),
            (WJJ, PASSING, True),
            (ZJJ, PASSING, True),
        ],
    )


def parts(msg) -> dict[str, str]:
    assert msg.get_content_type() == "multipart/alternative"
    sub = list(msg.iter_parts())
    assert [p.get_content_type() for p in sub] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in sub)
    return {p.get_content_subtype(): p.get_content() for p in sub}


def by_kind(conn) -> list[tuple]:
    return conn.execute(
        "select kind, dept_code, to_addrs, cc_addrs, transport from ops.alert_messages order by sent_at, kind"
    ).fetchall()


# --- the tests ----------------------------------------------------------------------------------------


def test_one_mail_to_the_failing_department_and_one_bureau_summary(wh, wconn, smtp, env):
    scj_failing("q1", date(2026, 11, 21), wconn)
    summary = send_alerts(wh, "q1", now=at(21))

    got = smtp.take()
    assert len(got) == 2
    dept = next(m for m in got if m["rcpt"] == [SCJ_MAIL])
    bureau = next(m for m in got if m["rcpt"] == [BUREAU_MAIL])
    assert all(m["from"] == FROM for m in got)
    assert smtp.logins == [SMTP_USER]

    msg = dept["msg"]
    # RFC 2047 on the wire, Chinese once decoded
    head = dept["raw"].split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"=?utf-8?" in head
    assert msg["Subject"] == "【数据质量告警】区市场监督管理局 2026-11-21: 3 条规则未通过 (阻断 1)"
    assert msg["To"].addresses[0].display_name == "区市场监督管理局"
    assert msg["To"].addresses[0].addr_spec == SCJ_MAIL
    assert msg["From"].addresses[0].display_name == "区数据管理局 数据平台"
    assert msg["Cc"] is None
    assert msg["Auto-Submitted"] == "auto-generated"
    body = parts(msg)
    text, html = body["plain"], body["html"]
    # blocking first, then the warnings by share: 100% (freshness) before 1.50%
    order = [text.index(r["rule_id"]) for r in (BLOCKING, FRESHNESS, WARNING)]
    assert order == sorted(order)
    assert "【阻断】【新发现】ms.penalties.uscc_valid 当事人统一社会信用代码校验位错误" in text
    assert "未通过：12 条 / 共检查 480 条，占 2.50%" in text  # 12 / 480 = 0.025
    assert "未通过：3 条 / 共检查 200 条，占 1.50%" in text  # 3 / 200
    assert "未通过：1 条 / 共检查 1 条，占 100.00%" in text
    assert "样例记录编号：" + ", ".join(PENALTY_IDS) in text
    assert "CF2026-0103" in text and "CF2026-0103" in html
    # 期限: the rule's time limit, then the day to fix by — first seen 11-21, escalated on the 3rd day
    # (ALERT_ESCALATE_AFTER_DAYS=3: 11-21 + 3 = 11-24 copies the 发改局), so fixed by 11-23
    assert "期限：本问题请于 2026-11-23（含）前整改完毕，逾期仍未通过将抄送区发展和改革局" in text
    assert "期限：作出决定之日起 20 个工作日内公示；本问题请于 2026-11-23（含）前整改完毕" in text
    assert "期限：每日同步；本问题请于 2026-11-23" in text
    assert "依据：法人和其他组织统一社会信用代码编码规则 GB 32100-2015" in text
    assert "GB 32100-2015" in html and "依据" in html
    assert "整改方法：在信用平台补充公示" in text
    # sources as departments know them, never a relation name
    assert "检查对象：信用信息共享平台 · 行政处罚（逐条记录检查，有效性）" in text
    assert "检查对象：市场监管信息系统（数据集整体检查" in text
    assert "信用信息共享平台 · 行政处罚" in html
    assert "stg_" not in text + html and "department_feeds" not in text + html
    assert text.count("【新发现】") == 3
    assert "检查结果：最近一次同步为 2026-11-18 02:10" in text
    assert (
        "file:///srv/quality/data_docs/validations/ms/penalties.html" in text
    )  # page relative to the run's folder
    assert 'href="file:///srv/quality/data_docs"' in html
    assert "问题状态：今日首次发现" in text and "已抄送" not in text
    assert "ms.cases.not_null" not in text  # the passing rule is not listed
    assert "2.50%" in html and "当事人统一社会信用代码校验位错误" in html

    b = bureau["msg"]
    assert b["Subject"] == "【数据质量汇总】2026-11-21: 1 个部门 3 条规则未通过 (阻断 1)"
    btext, bhtml = (parts(b)[k] for k in ("plain", "html"))
    # 3 departments evaluated: SCJ 4 rules, WJJ 2, ZJJ 1 → 7 rules
    assert "3 个部门共检查 7 条规则，1 个部门共 3 条未通过（阻断 1 条）" in btext
    assert (
        "1. 区市场监督管理局：检查 4 条，未通过 3 条（阻断 1 条）；最严重：ms.penalties.uscc_valid" in btext
    )
    assert "区卫生健康局：检查 2 条，未通过 0 条（阻断 0 条）；告警邮件：无需发送（全部通过）" in btext
    assert "区住房和城乡建设局：检查 1 条，未通过 0 条" in btext
    # the other 27 of the directory's 30 departments, on one line
    assert "本次未检查的部门（27 个）：" in btext and "区统计局" in btext.split("本次未检查的部门")[1]
    assert "<th>其中阻断</th>" in bhtml

    assert summary.per_department == {SCJ: 1}
    assert summary.transport == "smtp" and "127.0.0.1" in summary.where
    assert summary.skipped_unchanged == [] and summary.escalated == {} and summary.bureau_summary == "sent"
    assert by_kind(wconn) == [
        ("bureau", None, [BUREAU_MAIL], [], "smtp"),
        ("dept", SCJ, [SCJ_MAIL], [], "smtp"),
    ]
    log = wconn.execute(
        "select rule_id, first_failed_on, last_mailed_at from ops.alert_log where dept_code = %s order by rule_id",
        (SCJ,),
    ).fetchall()
    assert log == [(r, date(2026, 11, 21), at(21)) for r in ("ms.freshness", "ms.penalties.publicity_20wd",
                                                              "ms.penalties.uscc_valid")]  # fmt: skip


def dept_mails(got) -> list:
    return [m for m in got if SCJ_MAIL in m["rcpt"]]


def test_unchanged_failures_wait_for_the_weekly_digest(wh, wconn, smtp, env):
    # 2026-11-21 is a Saturday, 11-23 the Monday of the default digest (ALERT_DIGEST_WEEKDAY=1)
    assert date(2026, 11, 21).isoweekday() == 6 and Settings().alert_digest_weekday == 1
    scj_failing("q1", date(2026, 11, 21), wconn)
    send_alerts(wh, "q1", now=at(21, 8))
    assert len(smtp.take()) == 2

    # the same run again (an Airflow retry): nothing at all
    again = send_alerts(wh, "q1", now=at(21, 10))
    assert smtp.take() == []
    assert (
        again.messages == [] and again.skipped_unchanged == [SCJ] and again.bureau_summary == "already_sent"
    )

    # a new run, same results, the same day: only that run's bureau summary
    scj_failing("q2", date(2026, 11, 21), wconn)
    later = send_alerts(wh, "q2", now=at(21, 23, 30))
    assert [m["rcpt"] for m in smtp.take()] == [[BUREAU_MAIL]]
    assert later.skipped_unchanged == [SCJ]

    # Sunday, nothing new or worse: the department hears nothing, the bureau is told why
    scj_failing("q3", date(2026, 11, 22), wconn)
    sunday = send_alerts(wh, "q3", now=at(22, 9))
    got = smtp.take()
    assert [m["rcpt"] for m in got] == [[BUREAU_MAIL]]
    assert sunday.held_for_digest == {SCJ: 3} and sunday.per_department == {}
    btext = parts(got[0]["msg"])["plain"]
    assert "告警邮件：无新发现或加重的问题，未发送（无变化的问题每周一汇总）" in btext

    # Monday: one digest listing all three, each marked unchanged, with its streak
    scj_failing("q4", date(2026, 11, 23), wconn)
    monday = send_alerts(wh, "q4", now=at(23, 9))
    got = smtp.take()
    assert sorted(m["rcpt"][0] for m in got) == sorted([BUREAU_MAIL, SCJ_MAIL])
    msg = dept_mails(got)[0]["msg"]
    assert msg["Subject"] == "【数据质量周汇总】区市场监督管理局 2026-11-23: 3 条规则未通过 (阻断 1)"
    assert msg["Cc"] is None  # two days on: not yet the 3 of ALERT_ESCALATE_AFTER_DAYS
    text = parts(msg)["plain"]
    assert "这是每周一的周汇总，列出全部尚未整改的问题。" in text
    assert text.count("【无变化】") == 3 and text.count("自 2026-11-21 起已持续 2 天") == 3
    assert monday.digest == [SCJ] and monday.per_department == {SCJ: 1}
    assert "告警邮件：已发送周汇总" in parts(next(m for m in got if m["rcpt"] == [BUREAU_MAIL])["msg"])["plain"]
    assert ("digest", SCJ, [SCJ_MAIL], [], "smtp") in by_kind(wconn)

    # and not a second time that Monday
    scj_failing("q5", date(2026, 11, 23), wconn)
    send_alerts(wh, "q5", now=at(23, 15))
    assert [m["rcpt"] for m in smtp.take()] == [[BUREAU_MAIL]]


def test_the_digest_weekday_is_a_setting(wh, wconn, smtp, env):
    env.setenv("ALERT_DIGEST_WEEKDAY", "8")
    with pytest.raises(ValueError, match="ALERT_DIGEST_WEEKDAY=8 is outside 1..7"):
        _ = Settings().alert_digest_weekday
    env.setenv("ALERT_DIGEST_WEEKDAY", "7")  # Sunday: 11-22
    scj_failing("q1", date(2026, 11, 21), wconn)
    send_alerts(wh, "q1", now=at(21))
    smtp.take()
    scj_failing("q2", date(2026, 11, 22), wconn)
    summary = send_alerts(wh, "q2", now=at(22))
    msg = dept_mails(smtp.take())[0]["msg"]
    assert msg["Subject"].startswith("【数据质量周汇总】区市场监督管理局 2026-11-22: 3 条规则未通过")
    assert "这是每周日的周汇总" in parts(msg)["plain"] and summary.digest == [SCJ]


def test_new_or_worsened_failures_are_mailed_the_same_day(wh, wconn, smtp, env):
    scj_failing("q1", date(2026, 11, 21), wconn)
    send_alerts(wh, "q1", now=at(21, 8))
    smtp.take()

    # one more failing record: 4 of 200 = 2.00%, one more sample id
    changed = dict(WARNING, failed_count=4, failed_share=Decimal("0.02"),
                   sample_record_ids=[*WARNING["sample_record_ids"], "CF2026-0104"])  # fmt: skip
    scj_failing("q2", date(2026, 11, 21), wconn, warning=changed)
    summary = send_alerts(wh, "q2", now=at(21, 14))
    dept = dept_mails(smtp.take())
    assert len(dept) == 1 and summary.per_department == {SCJ: 1}
    msg = dept[0]["msg"]
    # only the worsened rule; the two unchanged ones are counted, not listed again
    assert msg["Subject"] == "【数据质量告警】区市场监督管理局 2026-11-21: 1 条规则未通过 (阻断 0) · 另 2 条无变化"
    text = parts(msg)["plain"]
    assert "【警告】【加重】ms.penalties.publicity_20wd" in text
    assert "未通过：4 条 / 共检查 200 条，占 2.00%" in text and "CF2026-0104" in text
    assert "ms.penalties.uscc_valid" not in text and "12 条 / 共检查 480 条" not in text
    assert "另有 2 条未通过的规则与上次通知相比没有变化或有所减少，不再逐日提醒，将在每周一的周汇总中列出。" in text
    assert "问题状态：加重（与上次通知相比），今日发现" in text
    assert summary.held_for_digest == {SCJ: 2}

    # the same sample ids in another order are the same failure
    reordered = dict(changed, sample_record_ids=list(reversed(changed["sample_record_ids"])))
    scj_failing("q3", date(2026, 11, 21), wconn, warning=reordered)
    assert send_alerts(wh, "q3", now=at(21, 15)).skipped_unchanged == [SCJ]
    assert [m["rcpt"] for m in smtp.take()] == [[BUREAU_MAIL]]

    # fewer failing records (4 → 2): better, not fixed — left to the digest; back to 3: still not
    # above the 4 last mailed, so still nothing
    for n in (2, 3):
        fewer = dict(WARNING, failed_count=n, failed_share=Decimal(n) / 200)
        scj_failing(f"q4-{n}", date(2026, 11, 21), wconn, warning=fewer)
        assert send_alerts(wh, f"q4-{n}", now=at(21, 16 + n)).skipped_unchanged == [SCJ]
        assert dept_mails(smtp.take()) == []

    # the warning rule re-classified as blocking: worse, mailed
    stricter = dict(changed, severity="blocking")
    scj_failing("q5", date(2026, 11, 21), wconn, warning=stricter)
    send_alerts(wh, "q5", now=at(21, 20))
    (dept,) = dept_mails(smtp.take())
    assert "【阻断】【加重】ms.penalties.publicity_20wd" in parts(dept["msg"])["plain"]


def test_a_failure_persisting_past_the_configured_days_copies_the_ndrc(wh, wconn, smtp, env):
    env.setenv("ALERT_ESCALATE_AFTER_DAYS", "2")
    env.setenv("ALERT_DIGEST_WEEKDAY", "5")  # Friday 11-27: the days before are ordinary days
    assert Settings().alert_escalate_after_days == 2
    scj_failing("q21", date(2026, 11, 21), wconn)
    send_alerts(wh, "q21", now=at(21))
    dept = dept_mails(smtp.take())
    assert len(dept) == 1 and dept[0]["msg"]["Cc"] is None and dept[0]["rcpt"] == [SCJ_MAIL]
    # 11-22: unchanged, one day on: nothing
    scj_failing("q22", date(2026, 11, 22), wconn)
    assert send_alerts(wh, "q22", now=at(22)).escalated == {}
    assert dept_mails(smtp.take()) == []

    # 11-23: first seen 11-21, two days on → the copy to the 发改局 is owed: mailed, unchanged or not
    scj_failing("q23", date(2026, 11, 23), wconn)
    summary = send_alerts(wh, "q23", now=at(23))
    got = smtp.take()
    dept = next(m for m in got if SCJ_MAIL in m["rcpt"])
    assert dept["rcpt"] == [SCJ_MAIL, NDRC_MAIL]
    msg = dept["msg"]
    assert msg["Cc"].addresses[0].addr_spec == NDRC_MAIL
    assert msg["Cc"].addresses[0].display_name == "区发展和改革局"
    assert (
        msg["Subject"]
        == "【数据质量告警】区市场监督管理局 2026-11-23: 3 条规则未通过 (阻断 1) · 已抄送区发展和改革局"
    )
    text = parts(msg)["plain"]
    assert "已持续 2 天, 抄送区发展和改革局" in text
    # fix by 11-21 + 2 − 1 = 11-22, which has passed
    assert "期限：本问题的整改期限（2026-11-22）已过，已抄送区发展和改革局" in text
    assert summary.escalated == {
        SCJ: ["ms.penalties.uscc_valid", "ms.freshness", "ms.penalties.publicity_20wd"]
    }
    bureau = next(m for m in got if m["rcpt"] == [BUREAU_MAIL])
    assert "告警邮件：已发送并抄送区发展和改革局" in parts(bureau["msg"])["plain"]
    assert ("escalation", SCJ, [SCJ_MAIL], [NDRC_MAIL], "smtp") in by_kind(wconn)

    # 11-24: the warning rule passes (its streak ends), the others go on, already copied: nothing
    plant(
        wconn,
        "q24",
        date(2026, 11, 24),
        [(SCJ, BLOCKING, False), (SCJ, FRESHNESS, False), (SCJ, WARNING, True)],
    )
    assert send_alerts(wh, "q24", now=at(24)).skipped_unchanged == [SCJ]
    assert dept_mails(smtp.take()) == []
    # 11-25: the warning fails again: a new streak, mailed as new, alone, not escalated
    scj_failing("q25", date(2026, 11, 25), wconn)
    send_alerts(wh, "q25", now=at(25))
    streaks = dict(
        wconn.execute(
            "select rule_id, first_failed_on from ops.alert_log where dept_code = %s", (SCJ,)
        ).fetchall()
    )
    assert streaks == {
        "ms.penalties.uscc_valid": date(2026, 11, 21),
        "ms.freshness": date(2026, 11, 21),
        "ms.penalties.publicity_20wd": date(2026, 11, 25),
    }
    (dept,) = dept_mails(smtp.take())
    assert dept["rcpt"] == [SCJ_MAIL]
    text = parts(dept["msg"])["plain"]
    assert "【警告】【新发现】ms.penalties.publicity_20wd" in text and "ms.freshness" not in text

    # Friday's digest lists all three, all escalated by now (the warning's new streak of 11-25 is
    # two days old too), and copies the 发改局 as every day did
    scj_failing("q27", date(2026, 11, 27), wconn)
    send_alerts(wh, "q27", now=at(27))
    (dept,) = dept_mails(smtp.take())
    assert dept["rcpt"] == [SCJ_MAIL, NDRC_MAIL]
    assert dept["msg"]["Subject"] == (
        "【数据质量周汇总】区市场监督管理局 2026-11-27: 3 条规则未通过 (阻断 1) · 已抄送区发展和改革局"
    )
    text = parts(dept["msg"])["plain"]
    assert "本邮件已抄送区发展和改革局：ms.penalties.uscc_valid、ms.freshness、ms.penalties.publicity_20wd。" in text
    assert "自 2026-11-21 起已持续 6 天" in text and "自 2026-11-25 起已持续 2 天" in text


def test_a_department_without_failures_gets_nothing_even_when_the_bureau_does(wh, wconn, smtp, env):
    plant(wconn, "ok", date(2026, 11, 21), [(SCJ, PASSING, True), (WJJ, PASSING, True)])
    summary = send_alerts(wh, "ok", now=at(21))
    got = smtp.take()
    assert [m["rcpt"] for m in got] == [[BUREAU_MAIL]]
    assert got[0]["msg"]["Subject"] == "【数据质量汇总】2026-11-21: 2 条规则全部通过"
    assert summary.per_department == {}


def test_receipts_are_mailed_once_and_marked(wh, wconn, smtp, env, tmp_path):
    inbox = tmp_path / "inbox"
    headers = [
        "案例编号",
        "报送单位",
        "案例类型",
        "发现日期",
        "涉及事项",
        "负面清单事项编码",
        "处置状态",
        "处置完成日期",
        "案情摘要",
    ]
    row = ["WG2026001", "区市场监管局", "清单外增设准入条件", "2026-04-03", "食品经营许可", "200012", "已处置", "2026-04-20", "要求提供验资报告"]  # fmt: skip
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([headers, row])
    for folder in (SCJ, "不存在的部门"):
        (inbox / folder).mkdir(parents=True)
        (inbox / folder / "违规案例_2026Q2.csv").write_bytes(out.getvalue().encode("utf-8"))
    process_inbox(wconn, inbox, directory.load(REPO / "config" / "departments.csv"), settle_seconds=0)
    receipts = wconn.execute(
        "select submission_id, dept_code, subject from ops.submission_receipts order by submission_id"
    ).fetchall()
    assert len(receipts) == 2
    scj_receipt = next(r for r in receipts if r[1] == SCJ)

    assert send_receipts(wh, now=at(21)) == 1
    got = smtp.take()
    assert len(got) == 1 and got[0]["rcpt"] == [SCJ_MAIL]
    msg = got[0]["msg"]
    assert msg["Subject"] == scj_receipt[2] and msg["Subject"].startswith("【报送回执】区市场监督管理局")
    body = parts(msg)
    assert "违规案例_2026Q2.csv" in body["plain"] and "违规案例_2026Q2.csv" in body["html"]
    mailed = dict(wconn.execute("select dept_code, mailed_at from ops.submission_receipts").fetchall())
    assert mailed == {SCJ: at(21), "不存在的部门": None}  # a folder that is no department: nowhere to send
    assert ("receipt", SCJ, [SCJ_MAIL], [], "smtp") in by_kind(wconn)

    assert send_receipts(wh, now=at(21, 10)) == 0
    assert smtp.take() == []


def test_smtp_down_is_a_clear_error_and_nothing_is_marked(wh, wconn, smtp, env, tmp_path):
    scj_failing("q1", date(2026, 11, 21), wconn)
    dead = free_port()  # nothing listens there
    env.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_uri(dead))
    with pytest.raises(MailError) as err:
        send_alerts(wh, "q1", now=at(21))
    message = str(err.value)
    assert (
        "smtp_default" in message
        and "AIRFLOW_CONN_SMTP_DEFAULT" in message
        and f"127.0.0.1:{dead}" in message
    )
    assert SMTP_PASSWORD not in message and SMTP_PASSWORD not in repr(err.value)
    assert wconn.execute("select count(*) from ops.alert_messages").fetchone()[0] == 0
    assert (
        wconn.execute("select count(*) from ops.alert_log where last_mailed_at is not null").fetchone()[0]
        == 0
    )

    # a wrong password: refused at login, the password is not in the error
    env.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_uri(smtp.port, password="wrong-Pw-123"))
    with pytest.raises(MailError, match="login as 'dq-alerts' failed") as err:
        send_alerts(wh, "q1", now=at(21))
    assert "wrong-Pw-123" not in str(err.value)
    assert smtp.take() == []

    # the server is back: the next run sends what was owed
    env.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_uri(smtp.port))
    summary = send_alerts(wh, "q1", now=at(21, 10))
    assert sorted(m["rcpt"][0] for m in smtp.take()) == sorted([BUREAU_MAIL, SCJ_MAIL])
    assert summary.per_department == {SCJ: 1}


def test_a_message_refused_midway_leaves_exactly_the_sent_ones_recorded(wh, wconn, smtp, env):
    scj_failing("q1", date(2026, 11, 21), wconn)
    smtp.defer = {BUREAU_MAIL}  # the department's mail goes through, the bureau summary (sent last) does not
    with pytest.raises(MailError, match="451") as err:
        send_alerts(wh, "q1", now=at(21))
    assert "was not accepted" in str(err.value)
    assert [m["rcpt"] for m in smtp.take()] == [[SCJ_MAIL]]
    assert by_kind(wconn) == [("dept", SCJ, [SCJ_MAIL], [], "smtp")]

    # the retry sends only what is still owed
    smtp.defer = set()
    summary = send_alerts(wh, "q1", now=at(21, 9, 5))
    assert [m["rcpt"] for m in smtp.take()] == [[BUREAU_MAIL]]
    assert summary.skipped_unchanged == [SCJ] and summary.bureau_summary == "sent"


def test_unsent_receipts_stay_unmarked_when_smtp_is_down(wh, wconn, smtp, env, tmp_path):
    from market_access.submissions.inbox import ensure_tables

    ensure_tables(wconn)
    wconn.execute("set role loader")
    sid = wconn.execute(
        "insert into ops.submission_files (file_hash, dept_code, file_name, file_size, received_at, status, batch_id) "
        "values ('h1', %s, 'a.csv', 1, now(), 'rejected', 1) returning submission_id",
        (SCJ,),
    ).fetchone()[0]
    wconn.execute(
        "insert into ops.submission_receipts (submission_id, dept_code, subject, body_text, body_html) "
        "values (%s, %s, '【报送回执】测试', '正文', '<p>正文</p>')",
        (sid, SCJ),
    )
    wconn.execute("reset role")
    env.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_uri(free_port()))
    with pytest.raises(MailError):
        send_receipts(wh, now=at(21))
    assert wconn.execute("select mailed_at from ops.submission_receipts").fetchone()[0] is None
    env.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_uri(smtp.port))
    assert send_receipts(wh, now=at(21)) == 1
    assert wconn.execute("select mailed_at from ops.submission_receipts").fetchone()[0] == at(21)


def test_without_smtp_the_messages_are_eml_files(wh, wconn, smtp, env, tmp_path):
    env.delenv("AIRFLOW_CONN_SMTP_DEFAULT")
    outbox = tmp_path / "outbox"
    env.setenv("ALERT_MAIL_DIR", str(outbox))
    scj_failing("q1", date(2026, 11, 21), wconn)
    summary = send_alerts(wh, "q1", now=at(21))
    assert smtp.take() == []
    assert summary.transport == "eml" and summary.where == str(outbox)
    assert str(outbox) in summary.describe()
    assert json.loads(json.dumps(summary.as_dict()))["per_department"] == {SCJ: 1}  # fit for XCom
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 2
    msgs = {
        f.name.split("_")[1]: BytesParser(policy=policy.default).parsebytes(f.read_bytes()) for f in files
    }
    assert set(msgs) == {"dept", "bureau"}
    assert msgs["dept"]["Subject"] == "【数据质量告警】区市场监督管理局 2026-11-21: 3 条规则未通过 (阻断 1)"
    assert msgs["dept"]["To"].addresses[0].addr_spec == SCJ_MAIL
    assert msgs["dept"]["From"].addresses[0].addr_spec == "market-access@localhost"
    assert "未通过：12 条 / 共检查 480 条，占 2.50%" in parts(msgs["dept"])["plain"]
    parts(msgs["bureau"])
    locations = [
        r[0] for r in wconn.execute("select location from ops.alert_messages where transport = 'eml'")
    ]
    assert sorted(locations) == [str(f) for f in files]
    # written counts as delivered: the same day brings no second file
    send_alerts(wh, "q1", now=at(21, 11))
    assert len(list(outbox.glob("*.eml"))) == 2


def test_missing_run_or_directory_is_a_clear_error(wconn, warehouse_cfg, env):
    bootstrap(wconn)
    wconn.execute(QUALITY_DDL)
    plant(wconn, "q1", date(2026, 11, 21), [(SCJ, PASSING, True)])
    with pytest.raises(AlertError, match="raw.directory__departments"):
        send_alerts(warehouse_cfg, "q1", now=at(21))
    directory.load_into_warehouse(wconn, directory.load(REPO / "config" / "departments.csv"))
    with pytest.raises(AlertError, match="no data-quality run 'nope'"):
        send_alerts(warehouse_cfg, "nope", now=at(21))


def test_a_dag_failure_mails_the_bureau_once_a_day(wh, wconn, smtp, env):
    from market_access.alerts.failures import DagFailure, notify_dag_failure
    from market_access.alerts.transport import MailError as TransportMailError

    def failure(task: str, hour: int, error) -> DagFailure:
        return DagFailure(
            dag_id="build_warehouse", task_id=task, dag_run_id="scheduled__2026-11-21T02:00:00+08:00",
            try_number=2, error=error, log_url="http://airflow.local/dags/build_warehouse/runs/r/tasks/" + task,
            log_path=f"/opt/airflow/logs/dag_id=build_warehouse/task_id={task}/attempt=2.log", when=at(21, hour),
        )  # fmt: skip

    # the relay is down: a clear error, and the day's claim is released for the next failure
    env.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_uri(free_port()))
    boom = RuntimeError("connection to postgresql://loader:Pw-9x@db:5432/wh refused\nTraceback …")
    with pytest.raises(TransportMailError):
        notify_dag_failure(wh, failure("prepare_warehouse", 2, boom), now=at(21, 2))
    assert wconn.execute("select count(*) from ops.dag_failure_alerts").fetchone()[0] == 0

    env.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_uri(smtp.port))
    assert notify_dag_failure(wh, failure("prepare_warehouse", 3, boom), now=at(21, 3)) == "sent"
    (got,) = smtp.take()
    assert got["rcpt"] == [BUREAU_MAIL]
    msg = got["msg"]
    assert msg["Subject"] == "【运行失败】build_warehouse 2026-11-21: 任务 prepare_warehouse 失败"
    text, html = (parts(msg)[k] for k in ("plain", "html"))
    assert "DAG：build_warehouse" in text and "失败的任务：prepare_warehouse（第 2 次尝试，已不再重试）" in text
    # the first line only, the password masked
    assert "错误：RuntimeError: connection to postgresql://loader:***@db:5432/wh refused" in text
    assert "Pw-9x" not in got["raw"].decode("ascii", "replace") and "Traceback" not in text
    assert "日志（Airflow 界面）：http://airflow.local/dags/build_warehouse/runs/r/tasks/prepare_warehouse" in text
    assert "日志文件：/opt/airflow/logs/dag_id=build_warehouse/task_id=prepare_warehouse/attempt=2.log" in text
    assert "时间：2026-11-21 03:00:00（北京时间）" in text and "prepare_warehouse" in html
    assert ("dag_failure", None, [BUREAU_MAIL], [], "smtp") in by_kind(wconn)

    # another task of the same DAG, the same Beijing day: nothing; the next day: a mail again
    assert notify_dag_failure(wh, failure("dbt_run", 9, "x <b>"), now=at(21, 9)) == "already_sent"
    assert smtp.take() == []
    nxt = DagFailure("build_warehouse", "dbt_run", None, 1, "失败 <b>粗体</b> 110105194912310029", None, None, at(22, 1))
    assert notify_dag_failure(wh, nxt, now=at(22, 1)) == "sent"
    (got,) = smtp.take()
    text, html = (parts(got["msg"])[k] for k in ("plain", "html"))
    assert "错误：失败 <b>粗体</b> 110***********0029" in text  # no 身份证号 in clear
    assert "失败 &lt;b&gt;粗体&lt;/b&gt;" in html and "<b>粗体</b>" not in html  # escaped
