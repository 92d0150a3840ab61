"""The alerts' bookkeeping in the warehouse: failure streaks per department and rule, and every message sent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import psycopg

from market_access.alerts.compose import QualityRun, RuleResult
from market_access.directory import Department, Directory
from market_access.load.schema import bootstrap

DDL = """
create table if not exists ops.alert_log (
    dept_code           text not null,
    rule_id             text not null,
    fingerprint         text,
    failed_count        bigint,
    first_failed_on     date,
    last_failed_on      date,
    last_passed_on      date,
    last_run_id         text,
    mailed_fingerprint  text,
    last_mailed_at      timestamptz,
    escalated_at        timestamptz,
    updated_at          timestamptz not null,
    primary key (dept_code, rule_id)
);
comment on table ops.alert_log is
    '数据质量告警状态: 每个 (部门, 规则) 一行 — 当前失败的指纹、连续失败起始日、最近一次发信与抄送发改局时间 (alert state per department and rule)';
comment on column ops.alert_log.fingerprint is '当前失败的指纹 (部门、规则、未通过条数、样例记录编号); 通过后为空';
comment on column ops.alert_log.first_failed_on is '本轮连续失败的开始日期 (北京时间); 规则通过后清空';
comment on column ops.alert_log.mailed_fingerprint is '最近一次发给部门的失败指纹; 与 last_mailed_at 同日且相同则不再重复发送';
comment on column ops.alert_log.escalated_at is '本轮连续失败中首次抄送发改局的时间; 规则通过后清空';
alter table ops.alert_log add column if not exists mailed_failed_count bigint;
alter table ops.alert_log add column if not exists mailed_share numeric;
alter table ops.alert_log add column if not exists mailed_severity text;
alter table ops.alert_log add column if not exists last_mailed_on date;
comment on column ops.alert_log.mailed_failed_count is
    '最近一次告知部门时的未通过条数 (与占比、级别一起判断问题是新增、加重还是无变化); 规则通过后清空';
comment on column ops.alert_log.last_mailed_on is '最近一次告知部门的告警日期 (质量检查的数据日期, 北京时间)';

create table if not exists ops.alert_messages (
    message_id          text primary key,
    run_id              text,
    kind                text not null,
    dept_code           text,
    submission_id       bigint,
    to_addrs            text[] not null,
    cc_addrs            text[] not null default '{}',
    subject             text not null,
    rule_ids            text[] not null default '{}',
    sent_at             timestamptz not null,
    transport           text not null check (transport in ('smtp', 'eml')),
    location            text not null
);
create index if not exists alert_messages_run_idx on ops.alert_messages (run_id, kind);
do $$ begin  -- widen the kinds of a table created by an earlier release (only once)
    if not exists (select 1 from pg_constraint where conname = 'alert_messages_kind_check'
                   and pg_get_constraintdef(oid) like '%dag_failure%') then
        alter table ops.alert_messages drop constraint if exists alert_messages_kind_check;
        alter table ops.alert_messages add constraint alert_messages_kind_check
            check (kind in ('dept', 'bureau', 'receipt', 'escalation', 'digest', 'dag_failure'));
    end if;
end $$;

-- what became of a message (issue 12): sent, or transmitted without a sure acceptance
alter table ops.alert_messages add column if not exists status text not null default 'sent'
    check (status in ('sent', 'uncertain', 'rejected'));
alter table ops.alert_messages add column if not exists smtp_reply text;
alter table ops.alert_messages add column if not exists raw_message bytea;
alter table ops.alert_messages add column if not exists resolved_at timestamptz;
alter table ops.alert_messages add column if not exists resolution text;
comment on column ops.alert_messages.status is
    'sent 已发送 (服务器已接收); uncertain 结果不确定 (邮件已完整发出, 服务器未答复: 可能已收下, 不自动重发); rejected 被拒收 (服务器以 5xx 拒绝该邮件, 不自动重发)';
comment on column ops.alert_messages.smtp_reply is '服务器对该邮件的答复或错误 (uncertain / rejected)';
comment on column ops.alert_messages.raw_message is '邮件原文 (uncertain / rejected), 供人工确认后重发: python -m market_access.alerts resolve';
comment on column ops.alert_messages.resolution is
    '人工处理 (python -m market_access.alerts resolve): delivered 已确认收到 / resent 已重发 / dropped 不再发送';

create table if not exists ops.dag_failure_alerts (
    dag_id              text not null,
    alert_day           date not null,
    dag_run_id          text,
    task_id             text,
    claimed_at          timestamptz not null,
    message_id          text,
    sent_at             timestamptz,
    primary key (dag_id, alert_day)
);
comment on table ops.dag_failure_alerts is
    'DAG 运行失败通知数据管理局: 每个 DAG 每个北京日最多一封 (one failure mail per DAG and Beijing day)';
comment on table ops.alert_messages is
    '已发出的每一封邮件 (部门告警 dept、抄送发改局的告警 escalation、部门周汇总 digest、数据管理局汇总 bureau、报送回执 receipt、DAG 失败通知 dag_failure); 服务器接收后记录为 sent; 完整发出而未确认接收的为 uncertain, 被拒收的为 rejected (every message handed over, and every one whose fate is not sure)';
comment on column ops.alert_messages.location is 'SMTP 服务器 (smtp://host:port) 或 .eml 文件路径';
"""


@dataclass(frozen=True)
class Mailed:
    """A failure as a message reported it: what the department knows from then on."""

    dept_code: str
    rule_id: str
    fingerprint: str
    escalated: bool
    failed_count: int | None
    share: float | None
    severity: str | None
    day: date


class AlertError(RuntimeError):
    """The alerts cannot run; the message says what to do."""


def ensure_tables(conn: psycopg.Connection) -> None:
    """ops.alert_log and ops.alert_messages (owned by the loader role, readable by transformer)."""
    bootstrap(conn)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('market_access.alerts.ddl'))")
        conn.execute("set local role loader")
        conn.execute(DDL)


def table_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]


def _has_column(conn: psycopg.Connection, schema: str, table: str, column: str) -> bool:
    return (
        conn.execute(
            "select 1 from information_schema.columns where table_schema = %s and table_name = %s "
            "and column_name = %s",
            (schema, table, column),
        ).fetchone()
        is not None
    )


def load_directory(conn: psycopg.Connection) -> Directory:
    """The department directory as the warehouse holds it (what the run saw)."""
    if not table_exists(conn, "raw.directory__departments"):
        raise AlertError(
            "the department directory is not in the warehouse (raw.directory__departments): run the "
            "submissions_inbox DAG (task load_department_directory) or "
            "market_access.directory.load_into_warehouse first"
        )
    rows = conn.execute(
        "select dept_code, dept_name, aliases, alert_emails, role, sources, freshness_days, source_line "
        "from raw.directory__departments order by source_line, dept_code"
    ).fetchall()
    departments = tuple(
        Department(code, name, tuple(aliases), tuple(emails), role, tuple(sources), fresh, line)
        for code, name, aliases, emails, role, sources, fresh, line in rows
    )
    if not departments:
        raise AlertError("raw.directory__departments is empty: load the department directory first")
    return Directory(departments, "raw.directory__departments")


def load_run(conn: psycopg.Connection, run_id: str) -> tuple[QualityRun, list[RuleResult]]:
    for table in ("ops.quality_runs", "ops.quality_results"):
        if not table_exists(conn, table):
            raise AlertError(f"{table} does not exist: no data-quality run has been stored yet")
    has_not_checked = conn.execute(
        "select exists (select from information_schema.columns where table_schema = 'ops' "
        "and table_name = 'quality_runs' and column_name = 'not_checked')"
    ).fetchone()[0]
    row = conn.execute(
        "select run_id, started_at, finished_at, data_date, status, data_docs_dir, "
        + ("not_checked" if has_not_checked else "'[]'::jsonb")
        + " from ops.quality_runs where run_id = %s",
        (run_id,),
    ).fetchone()
    if row is None:
        raise AlertError(f"no data-quality run {run_id!r} in ops.quality_runs")
    row = (*row[:6], tuple(row[6] or ()))
    # basis_zh came with the digest release; a results table of an older engine has none
    basis = "basis_zh" if _has_column(conn, "ops", "quality_results", "basis_zh") else "null::text"
    results = [
        RuleResult(
            rule_id=r[0],
            dept_code=r[1],
            asset=r[2],
            source=r[3],
            level=r[4],
            category=r[5],
            severity=r[6],
            success=r[7],
            evaluated_count=r[8],
            failed_count=r[9],
            failed_share=r[10],
            sample_record_ids=tuple(str(x) for x in (r[11] or ()) if x is not None),
            observed_on=r[12],
            observed=r[13],
            description_zh=r[14],
            fix_zh=r[15],
            deadline_zh=r[16],
            data_docs_page=r[17],
            basis_zh=r[18],
        )
        for r in conn.execute(
            "select rule_id, dept_code, asset, source, level, category, severity, success, evaluated_count, "
            "failed_count, failed_share, sample_record_ids, observed_on, observed, description_zh, fix_zh, "
            f"deadline_zh, data_docs_page, {basis} from ops.quality_results where run_id = %s "
            "order by dept_code, rule_id",
            (run_id,),
        ).fetchall()
    ]
    return QualityRun(*row), results


def latest_run_id(conn: psycopg.Connection) -> str:
    if not table_exists(conn, "ops.quality_runs"):
        raise AlertError("ops.quality_runs does not exist: no data-quality run has been stored yet")
    row = conn.execute(
        "select run_id from ops.quality_runs order by coalesce(finished_at, started_at) desc nulls last, run_id desc "
        "limit 1"
    ).fetchone()
    if row is None:
        raise AlertError("ops.quality_runs is empty: no data-quality run has been stored yet")
    return row[0]


def record_streaks(
    conn: psycopg.Connection, results: Iterable[RuleResult], run_id: str, day: date, now: datetime
) -> None:
    """Note what the run observed: a failure extends (or starts) its streak, a pass ends it.

    Observation only; what was mailed is recorded separately, after the server accepted it.
    """
    failing = [r for r in results if r.success is False and r.dept_code]
    passing = [r for r in results if r.success is True and r.dept_code]
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("set local role loader")
        if failing:
            cur.executemany(
                "insert into ops.alert_log as l (dept_code, rule_id, fingerprint, failed_count, first_failed_on, "
                "last_failed_on, last_run_id, updated_at) values (%s, %s, %s, %s, %s, %s, %s, %s) "
                "on conflict (dept_code, rule_id) do update set "
                "fingerprint = excluded.fingerprint, failed_count = excluded.failed_count, "
                "first_failed_on = coalesce(l.first_failed_on, excluded.first_failed_on), "
                "last_failed_on = greatest(l.last_failed_on, excluded.last_failed_on), "
                "last_run_id = excluded.last_run_id, updated_at = excluded.updated_at",
                [
                    (r.dept_code, r.rule_id, r.fingerprint, r.failed_count, day, day, run_id, now)
                    for r in failing
                ],
            )
        if passing:
            cur.execute(
                "update ops.alert_log as l set fingerprint = null, failed_count = null, first_failed_on = null, "
                "escalated_at = null, mailed_fingerprint = null, mailed_failed_count = null, mailed_share = null, "
                "mailed_severity = null, last_passed_on = %s, last_run_id = %s, updated_at = %s "
                "from unnest(%s::text[], %s::text[]) as p (dept_code, rule_id) "
                "where l.dept_code = p.dept_code and l.rule_id = p.rule_id",
                (day, run_id, now, [r.dept_code for r in passing], [r.rule_id for r in passing]),
            )


def load_log(conn: psycopg.Connection, dept_codes: list[str]) -> dict[tuple[str, str], dict]:
    cur = conn.execute(
        "select dept_code, rule_id, first_failed_on, mailed_fingerprint, last_mailed_at, escalated_at, "
        "mailed_failed_count, mailed_share, mailed_severity, last_mailed_on "
        "from ops.alert_log where dept_code = any(%s)",
        (dept_codes,),
    )
    return {
        (r[0], r[1]): {
            "first_failed_on": r[2],
            "mailed_fingerprint": r[3],
            "last_mailed_at": r[4],
            "escalated_at": r[5],
            "mailed_failed_count": r[6],
            "mailed_share": float(r[7]) if r[7] is not None else None,
            "mailed_severity": r[8],
            "last_mailed_on": r[9],
        }
        for r in cur.fetchall()
    }


def bureau_summary_status(conn: psycopg.Connection, run_id: str) -> str | None:
    """sent / uncertain / rejected when this run's bureau summary was handed over before, else None."""
    row = conn.execute(
        "select status from ops.alert_messages where run_id = %s and kind = 'bureau' "
        "order by status = 'sent' desc limit 1",
        (run_id,),
    ).fetchone()
    return row[0] if row else None


def undelivered_departments(conn: psycopg.Connection, run_id: str) -> dict[str, str]:
    """dept_code → status of this run's department messages that are uncertain or rejected: the
    run does not mail those departments again (no blind resend)."""
    return dict(
        conn.execute(
            "select dept_code, min(status) from ops.alert_messages where run_id = %s "
            "and kind in ('dept', 'escalation', 'digest') and status in ('uncertain', 'rejected') "
            "and dept_code is not null group by dept_code",
            (run_id,),
        ).fetchall()
    )


UNDELIVERED_COLUMNS = (
    "message_id", "run_id", "kind", "dept_code", "to_addrs", "subject", "sent_at", "status", "smtp_reply",
)  # fmt: skip


def undelivered(conn: psycopg.Connection, *, limit: int = 100) -> list[dict]:
    """Messages awaiting an operator's decision: uncertain or rejected, not resolved; newest first."""
    if not table_exists(conn, "ops.alert_messages") or not _has_column(conn, "ops", "alert_messages", "status"):
        return []
    cur = conn.execute(
        f"select {', '.join(UNDELIVERED_COLUMNS)} from ops.alert_messages "
        "where status in ('uncertain', 'rejected') and resolved_at is null order by sent_at desc, message_id "
        "limit %s",
        (limit,),
    )
    return [dict(zip(UNDELIVERED_COLUMNS, r, strict=True)) for r in cur.fetchall()]


RESOLUTIONS = ("delivered", "resent", "dropped")


def resolve(
    conn: psycopg.Connection, message_id: str, resolution: str, now: datetime, *, location: str | None = None
) -> None:
    """An operator's decision on an uncertain or rejected message: `delivered` (confirmed received:
    it counts as sent), `resent` (sent again and accepted), `dropped` (not to be sent)."""
    if resolution not in RESOLUTIONS:
        raise AlertError(f"resolution must be one of {', '.join(RESOLUTIONS)}, not {resolution!r}")
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("set local role loader")
        row = cur.execute(
            "update ops.alert_messages set resolved_at = %s, resolution = %s, "
            "status = case when %s in ('delivered', 'resent') then 'sent' else status end, "
            "location = coalesce(%s, location) "
            "where message_id = %s and status in ('uncertain', 'rejected') and resolved_at is null "
            "returning submission_id, sent_at",
            (now, resolution, resolution, location, message_id),
        ).fetchone()
        if row is None:
            raise AlertError(
                f"no uncertain or rejected message {message_id!r} awaiting a decision "
                "(see: python -m market_access.alerts undelivered)"
            )
        submission_id, sent_at = row
        if submission_id is not None and resolution != "dropped":
            cur.execute(
                "update ops.submission_receipts set mailed_at = %s where submission_id = %s and mailed_at is null",
                (sent_at if resolution == "delivered" else now, submission_id),
            )


def raw_message(conn: psycopg.Connection, message_id: str) -> tuple[bytes, list[str], list[str]] | None:
    row = conn.execute(
        "select raw_message, to_addrs, cc_addrs from ops.alert_messages where message_id = %s "
        "and status in ('uncertain', 'rejected') and resolved_at is null",
        (message_id,),
    ).fetchone()
    return (bytes(row[0]), list(row[1]), list(row[2])) if row and row[0] is not None else None


def record_message(
    conn: psycopg.Connection,
    *,
    message_id: str,
    run_id: str | None,
    kind: str,
    dept_code: str | None,
    to: list[str],
    cc: list[str],
    subject: str,
    rule_ids: list[str],
    sent_at: datetime,
    transport: str,
    location: str,
    submission_id: int | None = None,
    mailed: list[Mailed] = (),
    status: str = "sent",
    smtp_reply: str | None = None,
    raw: bytes | None = None,
) -> None:
    """One handed-over message and what it settles, in one transaction.

    `mailed`: each failure the message reported, as the department now knows it. `status`
    uncertain (transmitted, no reply) settles them too — the department may well have it, and it
    must not be mailed the same again blindly —; rejected settles nothing: the department was not
    told, so its next run's mail tells it. A receipt counts as mailed only when sent.
    """
    if status not in ("sent", "uncertain", "rejected"):
        raise ValueError(f"message status must be sent, uncertain or rejected, not {status!r}")
    if status == "rejected":
        mailed = []
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("set local role loader")
        cur.execute(
            "insert into ops.alert_messages (message_id, run_id, kind, dept_code, submission_id, to_addrs, cc_addrs, "
            "subject, rule_ids, sent_at, transport, location, status, smtp_reply, raw_message) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                message_id,
                run_id,
                kind,
                dept_code,
                submission_id,
                to,
                cc,
                subject,
                rule_ids,
                sent_at,
                transport,
                location,
                status,
                smtp_reply,
                raw if status != "sent" else None,
            ),
        )
        if mailed:
            cur.executemany(
                "update ops.alert_log set mailed_fingerprint = %s, last_mailed_at = %s, "
                "escalated_at = case when %s then coalesce(escalated_at, %s) else escalated_at end, "
                "mailed_failed_count = %s, mailed_share = %s, mailed_severity = %s, last_mailed_on = %s "
                "where dept_code = %s and rule_id = %s",
                [
                    (m.fingerprint, sent_at, m.escalated, sent_at, m.failed_count, m.share, m.severity, m.day,
                     m.dept_code, m.rule_id)
                    for m in mailed
                ],  # fmt: skip
            )
        if submission_id is not None and status == "sent":
            cur.execute(
                "update ops.submission_receipts set mailed_at = %s where submission_id = %s and mailed_at is null",
                (sent_at, submission_id),
            )


def pending_receipts(conn: psycopg.Connection) -> list[tuple]:
    if not table_exists(conn, "ops.submission_receipts"):
        return []
    # a receipt whose message is uncertain or rejected waits for the operator (resolve), and one
    # the operator dropped is not sent again
    return conn.execute(
        "select submission_id, dept_code, subject, body_text, body_html from ops.submission_receipts as r "
        "where mailed_at is null and not exists (select from ops.alert_messages as m "
        "where m.submission_id = r.submission_id and m.status in ('uncertain', 'rejected') "
        "and (m.resolved_at is null or m.resolution = 'dropped')) order by submission_id"
    ).fetchall()
