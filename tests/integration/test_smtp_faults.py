"""The mail server fails after accepting the connection (issue 12, situation 4): a real SMTP server
(aiosmtpd) on loopback that drops the connection after the end of DATA, replies 5xx to the
message, or drops it before DATA. What is recorded, what the bureau is told, what a rerun sends.

The quality run planted is test_alerts' `scj_failing`: 区市场监督管理局 (SCJ) fails 3 rules
(failed counts 3, 12 and 1), the others pass; so a run mails SCJ once and the bureau once.
"""

from __future__ import annotations

from datetime import date

import pytest
import test_alerts
from test_alerts import (  # the alert tests' helpers; their fixtures env and wh below
    BUREAU_MAIL,
    SCJ,
    SCJ_MAIL,
    Received,
    at,
    parts,
    scj_failing,
)

from market_access.alerts import MailError, send_alerts
from market_access.alerts import __main__ as cli
from market_access.alerts.service import resolve_message

env, wh = test_alerts.env, test_alerts.wh  # fixtures: smtp_default → the loopback server; the warehouse

DAY = date(2026, 11, 21)  # a Saturday: not the digest weekday (Monday)
NEXT = date(2026, 11, 22)


class Faulty(Received):
    """`fault` for messages to `target`: drop (close the connection once the whole message is in,
    without a reply), reject (554 to the message), drop_at_rcpt (close at RCPT: before DATA)."""

    def __init__(self) -> None:
        super().__init__()
        self.fault: str | None = None
        self.target = SCJ_MAIL
        self.dropped: list[dict] = []  # messages the server had in full when it dropped the line

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.fault == "drop_at_rcpt" and address == self.target:
            server.transport.close()
            return "421 4.3.0 closing"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.target in envelope.rcpt_tos:
            if self.fault == "drop":
                self.dropped.append({"rcpt": list(envelope.rcpt_tos), "raw": bytes(envelope.content)})
                server.transport.close()
                return "250 never heard"
            if self.fault == "reject":
                return "554 5.7.1 Message content rejected by policy"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtp():
    """The loopback server of test_alerts, with Faulty's handler (test_alerts' `env` uses it)."""
    yield from test_alerts.serve_smtp(Faulty())


def messages(conn) -> list[tuple]:
    return conn.execute(
        "select run_id, kind, dept_code, status, raw_message is not null, resolution from ops.alert_messages "
        "order by sent_at, kind, status"
    ).fetchall()


def told(conn) -> list[tuple]:
    """What SCJ was last told per rule (ops.alert_log)."""
    return conn.execute(
        "select rule_id, mailed_failed_count, last_mailed_on from ops.alert_log where dept_code = %s "
        "and mailed_fingerprint is not null order by rule_id",
        (SCJ,),
    ).fetchall()


# SCJ's three failing rules and their failed counts (test_alerts WARNING 3, BLOCKING 12, FRESHNESS 1)
TOLD_ON_DAY = [
    ("ms.freshness", 1, DAY),
    ("ms.penalties.publicity_20wd", 3, DAY),
    ("ms.penalties.uscc_valid", 12, DAY),
]


def test_a_connection_dropped_after_the_message_is_uncertain_and_never_resent_blindly(
    wh, wconn, smtp, env, capsys
):
    smtp.fault = "drop"
    scj_failing("q1", DAY, wconn)
    summary = send_alerts(wh, "q1", now=at(21))

    # the server had SCJ's mail in full; the client never heard back; the bureau's went through
    assert len(smtp.dropped) == 1 and smtp.dropped[0]["rcpt"] == [SCJ_MAIL]
    (bureau,) = smtp.take()
    assert bureau["rcpt"] == [BUREAU_MAIL]
    assert [(m.kind, m.status) for m in summary.messages] == [("dept", "uncertain"), ("bureau", "sent")]
    assert summary.bureau_summary == "sent" and summary.awaiting_decision == 1
    uncertain = summary.messages[0]
    assert "no reply after the end of the message" in uncertain.reply
    assert messages(wconn) == [
        ("q1", "bureau", None, "sent", False, None),
        ("q1", "dept", SCJ, "uncertain", True, None),
    ] or messages(wconn) == [
        ("q1", "dept", SCJ, "uncertain", True, None),
        ("q1", "bureau", None, "sent", False, None),
    ]
    # the department may have it: its failures count as told, as after an uninterrupted send
    assert told(wconn) == TOLD_ON_DAY
    # the bureau's summary says so: the department's line and the list awaiting a decision
    text, html = (parts(bureau["msg"])[k] for k in ("plain", "html"))
    assert "结果不确定：邮件已发出，服务器未确认接收，未自动重发（待人工确认）" in text
    assert "待人工确认的邮件（1 封）" in text and uncertain.message_id in text
    assert uncertain.subject in text and "python -m market_access.alerts resolve" in text
    assert "待人工确认的邮件（1 封）" in html and "结果不确定（服务器未答复）" in html

    # a retry of the task, and the next day's run with the same failures: nothing to SCJ again
    smtp.fault = None
    again = send_alerts(wh, "q1", now=at(21, 10))
    assert smtp.take() == [] and again.held_undelivered == {SCJ: "uncertain"}
    assert again.bureau_summary == "already_sent"
    scj_failing("q2", NEXT, wconn)
    nxt = send_alerts(wh, "q2", now=at(22))
    (bureau2,) = smtp.take()
    assert bureau2["rcpt"] == [BUREAU_MAIL] and nxt.skipped_unchanged == [SCJ]
    assert "待人工确认的邮件（1 封）" in parts(bureau2["msg"])["plain"]  # still awaiting the operator
    assert told(wconn) == TOLD_ON_DAY  # the same state an uninterrupted first day left

    # the operator asks SCJ, which has not got it, and resends: the same bytes and Message-ID
    env.setenv("AIRFLOW_CONN_WAREHOUSE", wh.airflow_uri())  # the command line's warehouse
    assert cli.main(["undelivered"]) == 0
    listed = capsys.readouterr().out
    assert "1 message(s) await a decision" in listed and uncertain.message_id in listed
    assert resolve_message(wh, uncertain.message_id, "resend", now=at(22, 9, 30)) == "sent"
    (resent,) = smtp.take()
    assert resent["rcpt"] == [SCJ_MAIL] and resent["msg"]["Message-ID"] == uncertain.message_id
    assert resent["raw"].replace(b"\r\n", b"\n") == smtp.dropped[0]["raw"].replace(b"\r\n", b"\n")
    assert wconn.execute(
        "select status, resolution from ops.alert_messages where message_id = %s", (uncertain.message_id,)
    ).fetchone() == ("sent", "resent")
    assert cli.main(["undelivered"]) == 0
    assert "no message awaits a decision" in capsys.readouterr().out


def test_a_5xx_reply_to_the_message_is_rejected_not_resent_and_the_next_run_tells_the_department(
    wh, wconn, smtp, env
):
    smtp.fault = "reject"
    scj_failing("q1", DAY, wconn)
    summary = send_alerts(wh, "q1", now=at(21))
    (bureau,) = smtp.take()
    assert [(m.kind, m.status) for m in summary.messages] == [("dept", "rejected"), ("bureau", "sent")]
    rejected = summary.messages[0]
    assert rejected.reply == "554 5.7.1 Message content rejected by policy"
    assert told(wconn) == []  # refused for good: SCJ was not told
    text = parts(bureau["msg"])["plain"]
    assert "被邮件服务器拒收，未自动重发（待人工处理）" in text
    assert "被拒收" in text and "554 5.7.1 Message content rejected by policy" in text

    # a retry of the same run does not send it again (it would be refused the same)
    again = send_alerts(wh, "q1", now=at(21, 10))
    assert smtp.take() == [] and again.held_undelivered == {SCJ: "rejected"}
    assert smtp.messages == []

    # the next day (the cause fixed): SCJ's failures were never told, so its mail goes out as new
    smtp.fault = None
    scj_failing("q2", NEXT, wconn)
    send_alerts(wh, "q2", now=at(22))
    got = sorted(smtp.take(), key=lambda m: m["rcpt"])
    assert [m["rcpt"] for m in got] == [[SCJ_MAIL], [BUREAU_MAIL]]
    assert told(wconn) == [(r, n, NEXT) for r, n, _ in TOLD_ON_DAY]
    # the operator drops the rejected one: nothing awaits a decision any more
    assert resolve_message(wh, rejected.message_id, "drop", now=at(22, 10)) == "dropped"
    assert smtp.take() == []
    assert wconn.execute(
        "select count(*) from ops.alert_messages where status <> 'sent' and resolved_at is null"
    ).fetchone()[0] == 0


def test_a_connection_dropped_before_data_is_not_sent_and_the_rerun_sends_it_once(wh, wconn, smtp, env):
    smtp.fault = "drop_at_rcpt"
    scj_failing("q1", DAY, wconn)
    with pytest.raises(MailError, match="was not accepted") as err:
        send_alerts(wh, "q1", now=at(21))
    assert "the next run retries" in str(err.value)
    assert smtp.take() == [] and messages(wconn) == [] and told(wconn) == []

    smtp.fault = None
    summary = send_alerts(wh, "q1", now=at(21, 9, 5))
    got = smtp.take()
    assert sorted(m["rcpt"][0] for m in got) == sorted([SCJ_MAIL, BUREAU_MAIL])
    assert [m.status for m in summary.messages] == ["sent", "sent"]
    assert told(wconn) == TOLD_ON_DAY  # as if nothing had happened


def test_an_uncertain_receipt_is_not_mailed_again_until_the_operator_decides(wh, wconn, smtp, env):
    from market_access.alerts import send_receipts
    from market_access.submissions.inbox import ensure_tables

    ensure_tables(wconn)
    wconn.execute("set role loader")
    sid = wconn.execute(
        "insert into ops.submission_files (file_hash, dept_code, file_name, file_size, received_at, status, batch_id) "
        "values ('h1', %s, 'a.csv', 1, now(), 'accepted', 1) returning submission_id",
        (SCJ,),
    ).fetchone()[0]
    wconn.execute(
        "insert into ops.submission_receipts (submission_id, dept_code, subject, body_text, body_html) "
        "values (%s, %s, '【报送回执】测试', '正文', '<p>正文</p>')",
        (sid, SCJ),
    )
    wconn.execute("reset role")
    smtp.fault = "drop"
    assert send_receipts(wh, now=at(21)) == 0  # handed over once, accepted not for sure
    assert len(smtp.dropped) == 1 and smtp.take() == []
    mailed_at = "select mailed_at from ops.submission_receipts where submission_id = %s"
    assert wconn.execute(mailed_at, (sid,)).fetchone()[0] is None
    smtp.fault = None
    assert send_receipts(wh, now=at(21, 10)) == 0 and smtp.take() == []  # not again, blindly
    (message_id,) = wconn.execute("select message_id from ops.alert_messages where status = 'uncertain'").fetchone()
    # SCJ confirms it has the receipt: it counts as mailed when it was sent
    assert resolve_message(wh, message_id, "delivered", now=at(21, 11)) == "sent"
    assert wconn.execute(mailed_at, (sid,)).fetchone()[0] == at(21)
    assert send_receipts(wh, now=at(21, 12)) == 0 and smtp.take() == []


def test_an_uncertain_dag_failure_mail_keeps_the_days_claim(wh, wconn, smtp, env):
    from market_access.alerts.failures import DagFailure, notify_dag_failure

    smtp.fault, smtp.target = "drop", BUREAU_MAIL
    fail = DagFailure("build_warehouse", "prepare_warehouse", None, 1, "boom", None, None, at(21, 2))
    assert notify_dag_failure(wh, fail, now=at(21, 2)) == "uncertain"
    assert len(smtp.dropped) == 1
    smtp.fault = None  # the same DAG fails again that day: no second mail, the first may have arrived
    again = DagFailure("build_warehouse", "dbt_run", None, 1, "boom", None, None, at(21, 3))
    assert notify_dag_failure(wh, again, now=at(21, 3)) == "already_sent"
    assert smtp.take() == []
    assert messages(wconn) == [(None, "dag_failure", None, "uncertain", True, None)]
