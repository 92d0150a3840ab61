"""Send one quality run's alerts (departments, 发改局 escalation, bureau summary) and pending receipts.

A message counts as sent once the SMTP server accepted it (or its .eml file is in the outbox);
only then, in one transaction per message, is it recorded in ops.alert_messages together with
what it settles (ops.alert_log's last mail of each failure, a receipt's mailed_at). A failure to
hand a message over raises MailError and leaves everything unsent unmarked, for the next run.

A message transmitted to the end whose acceptance is not sure is recorded too, and never sent
again by a run: `uncertain` (no reply after the end of DATA: the server may have it) or
`rejected` (a 5xx reply to it). The run goes on with the other messages, the bureau's summary
lists every such message awaiting a decision, and the operator decides
(`python -m market_access.alerts undelivered` / `resolve`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

import psycopg

from market_access import warehouse
from market_access.alerts import compose, state, transport
from market_access.alerts.compose import DeptRow, Item, Mail, RuleResult
from market_access.directory import Department, Directory
from market_access.settings import BEIJING, Settings

log = logging.getLogger(__name__)

_LOCK = "market_access.alerts"


@dataclass
class SentMessage:
    kind: str  # dept / escalation / bureau / receipt
    dept_code: str | None
    to: list[str]
    cc: list[str]
    subject: str
    message_id: str
    location: str  # smtp://host:port or the .eml file
    rule_ids: list[str] = field(default_factory=list)
    submission_id: int | None = None
    status: str = "sent"  # sent / uncertain / rejected (see transport.MailUndelivered)
    reply: str | None = None  # the server's reply or the error, when not sent


@dataclass
class AlertSummary:
    """What one send did (safe to log and to push to XCom: names, codes and addresses only)."""

    run_id: str | None
    day: date
    transport: str  # smtp / eml
    where: str  # the relay (no password) or the outbox folder
    messages: list[SentMessage] = field(default_factory=list)
    skipped_unchanged: list[str] = field(default_factory=list)  # dept codes: nothing new or worse, not mailed
    held_for_digest: dict[str, int] = field(default_factory=dict)  # dept code → failures left to the digest
    digest: list[str] = field(default_factory=list)  # dept codes that got the weekly digest
    escalated: dict[str, list[str]] = field(default_factory=dict)  # dept code → rule ids copied to 发改局
    no_address: list[str] = field(default_factory=list)  # dept codes with failures and no alert_emails
    unknown_departments: list[str] = field(default_factory=list)  # dept codes not in the directory
    bureau_summary: str = "not_sent"  # sent / already_sent / no_address / uncertain / rejected
    # departments whose mail of this run is uncertain or rejected (an earlier try): not mailed again
    held_undelivered: dict[str, str] = field(default_factory=dict)
    # every message (any run) uncertain or rejected and not resolved yet: the operator's to-do
    awaiting_decision: int = 0

    @property
    def undelivered(self) -> list[SentMessage]:
        return [m for m in self.messages if m.status != "sent"]

    @property
    def per_department(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self.messages:
            if m.kind in ("dept", "escalation", "digest") and m.dept_code:
                out[m.dept_code] = out.get(m.dept_code, 0) + 1
        return out

    def as_dict(self) -> dict:
        d = asdict(self)
        d["day"] = self.day.isoformat()
        d["per_department"] = self.per_department
        return d

    def describe(self) -> str:
        """One paragraph for an operator: how many messages, where they went, what was held back."""
        kinds = {
            k: sum(1 for m in self.messages if m.kind == k and m.status == "sent")
            for k in ("dept", "escalation", "digest", "bureau", "receipt")
        }
        via = (
            f"written as .eml files to {self.where}" if self.transport == "eml" else f"sent via {self.where}"
        )
        parts = [
            f"alerts of quality run {self.run_id} ({self.day}): {len(self.messages)} message(s) {via}: "
            f"{kinds['dept'] + kinds['escalation'] + kinds['digest']} to departments "
            f"({kinds['digest']} weekly digests; {len(self.escalated)} copied to the 发改局), "
            f"{kinds['bureau']} bureau summary"
            + (f", {kinds['receipt']} receipts" if kinds["receipt"] else "")
        ]
        for m in self.undelivered:
            parts.append(
                f"{m.status.upper()}: {m.kind} message {m.message_id} to {', '.join(m.to)} ({m.reply}); "
                "not sent again automatically"
            )
        if self.held_undelivered:
            parts.append(
                "not mailed again (an earlier try of this run is uncertain or rejected): "
                + ", ".join(f"{d} ({s})" for d, s in sorted(self.held_undelivered.items()))
            )
        if self.awaiting_decision:
            parts.append(
                f"{self.awaiting_decision} message(s) uncertain or rejected await a decision: "
                "python -m market_access.alerts undelivered"
            )
        if self.bureau_summary == "already_sent":
            parts.append("the bureau summary of this run was sent before")
        if self.skipped_unchanged:
            parts.append(f"nothing new or worse, not mailed: {', '.join(self.skipped_unchanged)}")
        if self.held_for_digest:
            parts.append(
                f"{sum(self.held_for_digest.values())} unchanged failure(s) of "
                f"{len(self.held_for_digest)} department(s) left to the weekly digest"
            )
        if self.escalated:
            parts.append(
                "escalated: " + "; ".join(f"{d} ({', '.join(r)})" for d, r in sorted(self.escalated.items()))
            )
        if self.no_address:
            parts.append(f"failing but no alert_emails in the directory: {', '.join(self.no_address)}")
        if self.unknown_departments:
            parts.append(f"failing departments not in the directory: {', '.join(self.unknown_departments)}")
        return "; ".join(parts)


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(BEIJING)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime(..., tzinfo=BEIJING))")
    return now


def _transport(s: Settings, smtp: transport.SmtpConnection | None | object) -> transport.Transport:
    """`smtp`: the relay, None for the .eml outbox, or FROM_ENVIRONMENT (AIRFLOW_CONN_SMTP_DEFAULT)."""
    conn = transport.resolve() if smtp is transport.FROM_ENVIRONMENT else smtp
    t = transport.transport_for(conn, s.alert_mail_dir, s.alert_mail_from)
    t.from_email = t.from_email or s.alert_mail_from
    return t


@contextmanager
def _locked(conn: psycopg.Connection) -> Iterator[None]:
    """One sender at a time: two concurrent runs would otherwise both see a failure as unmailed."""
    conn.execute("select pg_advisory_lock(hashtext(%s))", (_LOCK,))
    try:
        yield
    finally:
        conn.execute("select pg_advisory_unlock(hashtext(%s))", (_LOCK,))


@dataclass
class _Outgoing:
    mail: Mail
    mailed: list[state.Mailed] = field(default_factory=list)
    submission_id: int | None = None


def _deliver(
    conn: psycopg.Connection,
    t: transport.Transport,
    outgoing: list[_Outgoing],
    *,
    run_id: str | None,
    from_name: str,
    now: datetime,
) -> list[SentMessage]:
    """Hand each message over, recording each right after it was accepted; stop at the first failure."""
    sent: list[SentMessage] = []
    if not outgoing:
        return sent
    stamp = now.astimezone(BEIJING).strftime("%Y%m%dT%H%M%S")
    # one SMTP session for a whole send: the caller may hold it open already
    with contextlib.nullcontext() if getattr(t, "_in_session", False) else t.session():
        for o in outgoing:
            m = o.mail
            msg = compose.mime(m, from_name=from_name, from_email=t.from_email, now=now, run_id=run_id)
            label = "_".join(
                str(x) for x in (stamp, m.kind, m.dept_code or "all", o.submission_id) if x is not None
            )
            status, reply, raw = "sent", None, None
            try:
                location = t.deliver(msg, m.recipients, label=label)
            except transport.MailUndelivered as exc:
                # transmitted in full: recorded as it is, never sent again blindly; on to the next
                log.error("%s", exc)
                status, reply, raw, location = exc.status, exc.reply, exc.raw, exc.location
            message_id = str(msg["Message-ID"])
            try:
                state.record_message(
                    conn,
                    message_id=message_id,
                    run_id=run_id,
                    kind=m.kind,
                    dept_code=m.dept_code,
                    to=m.to_addrs,
                    cc=m.cc_addrs,
                    subject=m.subject,
                    rule_ids=m.rule_ids,
                    sent_at=now,
                    transport=t.name,
                    location=location,
                    submission_id=o.submission_id,
                    mailed=o.mailed,
                    status=status,
                    smtp_reply=reply,
                    raw=raw,
                )
            except Exception:
                log.error(
                    "message %s (%s) was handed over to %s but could not be recorded; it will be sent again",
                    message_id,
                    m.subject,
                    location,
                )
                raise
            log.info(
                "%s mail %s → %s%s: %s",
                m.kind,
                message_id,
                ", ".join(m.to_addrs),
                f" (cc {', '.join(m.cc_addrs)})" if m.cc else "",
                m.subject,
            )
            sent.append(
                SentMessage(
                    m.kind,
                    m.dept_code,
                    m.to_addrs,
                    m.cc_addrs,
                    m.subject,
                    message_id,
                    location,
                    m.rule_ids,
                    o.submission_id,
                    status,
                    reply,
                )
            )
    return sent


URGENT = ("new", "worsened", "reclassified")  # mailed the same day; the others wait for the digest


def status_of(r: RuleResult, entry: dict) -> str:
    """A failure against what its department was last told in this streak: new (never mailed),
    worsened (more failing records, a larger share, or now blocking), reclassified (now a warning),
    improved (fewer failing records, not fixed) or unchanged."""
    before = entry.get("mailed_failed_count")
    if before is None:
        return "new"
    if (entry.get("mailed_severity") or "") != (r.severity or ""):
        return "worsened" if r.blocking else "reclassified"
    count, share, before_share = r.failed_count or 0, r.share, entry.get("mailed_share")
    if count > before or (share is not None and before_share is not None and share > before_share + 1e-12):
        return "worsened"
    if count < before:
        return "improved"
    return "unchanged"


def _plan_departments(
    results: list[RuleResult],
    directory: Directory,
    log_rows: dict[tuple[str, str], dict],
    *,
    run: compose.QualityRun,
    day: date,
    escalate_after: int,
    digest_weekday: int,
    sender: str,
    summary: AlertSummary,
) -> tuple[list[_Outgoing], list[DeptRow]]:
    by_dept: dict[str, list[RuleResult]] = {}
    for r in results:
        by_dept.setdefault(r.dept_code or "", []).append(r)
    for code in directory.by_code:
        by_dept.setdefault(code, [])
    ndrc = directory.ndrc
    outgoing: list[_Outgoing] = []
    rows: list[DeptRow] = []
    for code, rs in by_dept.items():
        failing = sorted((r for r in rs if r.success is False), key=lambda r: r.sort_key)
        dept: Department | None = directory.by_code.get(code)
        name = dept.name if dept else (code or "—")
        status = "not_evaluated" if not rs else "none"
        if failing:
            if dept is None:
                status = "unknown"
                summary.unknown_departments.append(code or "—")
                log.warning("quality run %s: failures of %r, which is not in the directory", run.run_id, code)
            elif not dept.alert_emails:
                status = "no_address"
                summary.no_address.append(code)
                log.warning(
                    "quality run %s: %s (%s) has failures but no alert_emails", run.run_id, name, code
                )
            else:
                out, status = _department(
                    dept,
                    failing,
                    len(rs),
                    ndrc,
                    log_rows,
                    run=run,
                    day=day,
                    escalate_after=escalate_after,
                    digest_weekday=digest_weekday,
                    sender=sender,
                )
                if out is None:
                    summary.skipped_unchanged.append(code)
                else:
                    outgoing.append(out)
                    if out.mail.cc:
                        summary.escalated[code] = [m.rule_id for m in out.mailed if m.escalated]
                    if out.mail.kind == "digest":
                        summary.digest.append(code)
                held = len(failing) - (0 if out is None else len(out.mailed))
                if held:
                    summary.held_for_digest[code] = held
        rows.append(
            DeptRow(
                dept_code=code,
                dept_name=name,
                evaluated=len(rs),
                failed=len(failing),
                blocking_failed=sum(1 for r in failing if r.blocking),
                worst=failing[0] if failing else None,
                mail=status,
            )
        )
    return outgoing, rows


def _department(
    dept: Department,
    failing: list[RuleResult],
    evaluated: int,
    ndrc: Department,
    log_rows: dict[tuple[str, str], dict],
    *,
    run: compose.QualityRun,
    day: date,
    escalate_after: int,
    digest_weekday: int,
    sender: str,
) -> tuple[_Outgoing | None, str]:
    """The department's mail of `day`, or None when there is nothing it has not been told.

    Any day: failures new or worsened since the last mail, and those whose copy to the 发改局
    is owed (the streak reached ALERT_ESCALATE_AFTER_DAYS). The digest weekday: also every other
    open failure not mailed yet that day — one mail listing all of them.
    """
    can_copy = any(a not in dept.alert_emails for a in ndrc.alert_emails)
    digest_day = day.isoweekday() == digest_weekday
    items: list[Item] = []
    in_mail: list[Item] = []
    for r in failing:
        entry = log_rows.get((dept.code, r.rule_id), {})
        first = entry.get("first_failed_on") or day
        days = (day - first).days
        escalated = days >= escalate_after
        item = Item(
            r,
            first,
            days,
            escalated,
            compose.docs_link(r.data_docs_page, run.data_docs_dir),
            status=status_of(r, entry),
            fix_by=first + timedelta(days=escalate_after - 1),
        )
        owed_copy = escalated and can_copy and entry.get("escalated_at") is None
        items.append(item)
        if item.status in URGENT or owed_copy or (digest_day and entry.get("last_mailed_on") != day):
            in_mail.append(item)
    if not in_mail:
        return None, "unchanged"
    digest = digest_day and len(in_mail) == len(items)
    mail = compose.department_mail(
        run=run,
        day=day,
        dept_code=dept.code,
        dept_name=dept.name,
        to=list(dept.alert_emails),
        items=in_mail,
        held=len(items) - len(in_mail),
        digest=digest,
        digest_weekday=digest_weekday,
        evaluated=evaluated,
        ndrc_name=ndrc.name,
        ndrc_addrs=list(ndrc.alert_emails),
        escalate_after=escalate_after,
        sender=sender,
    )
    copied = bool(mail.cc)
    mailed = [
        state.Mailed(
            dept.code, i.rule_id, i.fingerprint, i.escalated and copied, i.failed_count, i.share, i.severity, day
        )
        for i in in_mail
    ]
    return _Outgoing(mail, mailed), ("digest" if digest else "escalated" if copied else "sent")


def send_alerts(
    cfg: warehouse.WarehouseConfig,
    run_id: str,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
    smtp: transport.SmtpConnection | None | object = transport.FROM_ENVIRONMENT,
) -> AlertSummary:
    """Mail the results of quality run `run_id`: to each failing department what is new or worse
    than its last mail (every open failure on the digest weekday), escalations copied to the 发改局,
    one bureau summary.

    The alert day is the run's data date (a Beijing date; the wall clock's Beijing date for a run
    without one): streak lengths, the digest weekday and "already told today" all follow the data,
    so that a rerun or a catch-up run of an earlier day behaves as it did on that day, and tests
    need no clock. `now` only stamps the messages.

    `smtp`: the relay, None for the .eml outbox; by default AIRFLOW_CONN_SMTP_DEFAULT or the outbox.
    """
    s = settings or Settings()
    now = _now(now)
    t = _transport(s, smtp)
    with warehouse.connect(cfg, autocommit=True) as conn:
        state.ensure_tables(conn)
        with _locked(conn):
            run, results = state.load_run(conn, run_id)
            day = run.data_date or now.astimezone(BEIJING).date()
            summary = AlertSummary(run_id=run_id, day=day, transport=t.name, where=t.where)
            directory = state.load_directory(conn)
            sender = compose.sender_name(directory.bureau.name)
            state.record_streaks(conn, results, run_id, day, now)
            codes = sorted({r.dept_code for r in results if r.dept_code})
            log_rows = state.load_log(conn, codes)
            outgoing, rows = _plan_departments(
                results,
                directory,
                log_rows,
                run=run,
                day=day,
                escalate_after=s.alert_escalate_after_days,
                digest_weekday=s.alert_digest_weekday,
                sender=sender,
                summary=summary,
            )
            # a department whose mail of this run is uncertain or rejected is not mailed again
            summary.held_undelivered = state.undelivered_departments(conn, run_id)
            outgoing = [o for o in outgoing if o.mail.dept_code not in summary.held_undelivered]
            from_name = compose.from_name(directory.bureau.name)
            bureau = directory.bureau
            before = state.bureau_summary_status(conn, run_id)
            if before is not None:
                summary.bureau_summary = "already_sent" if before == "sent" else before
            elif not bureau.alert_emails:
                summary.bureau_summary = "no_address"
                log.warning("the bureau %s has no alert_emails: no summary sent", bureau.name)
            owe_bureau = before is None and bool(bureau.alert_emails)
            with t.session() if outgoing or owe_bureau else contextlib.nullcontext():
                summary.messages = _deliver(conn, t, outgoing, run_id=run_id, from_name=from_name, now=now)
                if owe_bureau:
                    # the bureau's summary goes last: it tells what became of the departments' mails
                    fate = {m.dept_code: m.status for m in summary.messages if m.status != "sent"}
                    fate.update(summary.held_undelivered)
                    rows = [dataclasses.replace(r, mail=fate.get(r.dept_code, r.mail)) for r in rows]
                    mail = compose.bureau_mail(
                        run=run,
                        day=day,
                        digest_weekday=s.alert_digest_weekday,
                        bureau_name=bureau.name,
                        to=list(bureau.alert_emails),
                        rows=rows,
                        ndrc_name=directory.ndrc.name,
                        sender=sender,
                        undelivered=_awaiting(conn, directory),
                    )
                    (bureau_sent,) = _deliver(
                        conn, t, [_Outgoing(mail)], run_id=run_id, from_name=from_name, now=now
                    )
                    summary.messages.append(bureau_sent)
                    summary.bureau_summary = bureau_sent.status
            summary.awaiting_decision = len(state.undelivered(conn))
    log.info("%s", summary.describe())
    return summary


def _awaiting(conn: psycopg.Connection, directory: Directory) -> list[dict]:
    """The messages awaiting an operator's decision, as the bureau's summary lists them."""
    return [
        {
            **m,
            "dept_name": directory.by_code[m["dept_code"]].name
            if m["dept_code"] in directory.by_code
            else (m["dept_code"] or "—"),
            "sent_at": m["sent_at"].astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"),
        }
        for m in state.undelivered(conn)
    ]


def send_receipts(
    cfg: warehouse.WarehouseConfig,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
    smtp: transport.SmtpConnection | None | object = transport.FROM_ENVIRONMENT,
) -> int:
    """Mail every submission receipt not mailed yet to its department; returns how many the server
    accepted (an uncertain or rejected one is recorded, logged, and waits for the operator).

    A receipt of a folder that is no known department, or of a department without alert_emails,
    stays unmailed (and is logged) until the directory says where it goes.
    """
    s = settings or Settings()
    now = _now(now)
    with warehouse.connect(cfg, autocommit=True) as conn:
        state.ensure_tables(conn)
        with _locked(conn):
            pending = state.pending_receipts(conn)
            if not pending:
                return 0
            directory = state.load_directory(conn)
            outgoing = []
            for submission_id, dept_code, subject, text, html in pending:
                dept = directory.by_code.get(dept_code or "")
                if dept is None or not dept.alert_emails:
                    log.warning(
                        "receipt %s (%s): %s; left unmailed",
                        submission_id,
                        subject,
                        "no alert_emails in the directory"
                        if dept
                        else f"folder {dept_code!r} is no known department",
                    )
                    continue
                mail = Mail(
                    "receipt",
                    subject,
                    text,
                    html,
                    to=[(dept.name, a) for a in dept.alert_emails],
                    dept_code=dept.code,
                )
                outgoing.append(_Outgoing(mail, submission_id=submission_id))
            t = _transport(s, smtp)
            from_name = compose.from_name(directory.bureau.name)
            handed = _deliver(conn, t, outgoing, run_id=None, from_name=from_name, now=now)
    sent = [m for m in handed if m.status == "sent"]
    for m in handed:
        if m.status != "sent":
            log.warning(
                "receipt %s (%s) is %s: not mailed again until an operator decides "
                "(python -m market_access.alerts undelivered)",
                m.submission_id,
                m.subject,
                m.status,
            )
    if sent:
        via = f"written to {t.where}" if t.name == "eml" else f"sent via {t.where}"
        log.info("%d submission receipt(s) %s", len(sent), via)
    return len(sent)


def resolve_message(
    cfg: warehouse.WarehouseConfig,
    message_id: str,
    decision: str,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
    smtp: transport.SmtpConnection | None | object = transport.FROM_ENVIRONMENT,
) -> str:
    """The operator's decision on an uncertain or rejected message (after asking its recipients):
    `delivered` (it did arrive: counts as sent), `resend` (send the recorded message again, the
    same bytes and Message-ID, so a mail client that has it already can tell), `drop` (do not send;
    a rejected department alert's failures go out with that department's next mail anyway).
    Returns the message's new status; a resend that fails again raises and changes nothing."""
    s = settings or Settings()
    now = _now(now)
    with warehouse.connect(cfg, autocommit=True) as conn:
        state.ensure_tables(conn)
        with _locked(conn):
            if decision == "delivered":
                state.resolve(conn, message_id, "delivered", now)
                return "sent"
            if decision == "drop":
                state.resolve(conn, message_id, "dropped", now)
                return "dropped"
            if decision != "resend":
                raise state.AlertError(f"decision must be delivered, resend or drop, not {decision!r}")
            found = state.raw_message(conn, message_id)
            if found is None:
                raise state.AlertError(
                    f"no uncertain or rejected message {message_id!r} awaiting a decision "
                    "(see: python -m market_access.alerts undelivered)"
                )
            raw, to, cc = found
            t = _transport(s, smtp)
            label = "resend_" + "".join(c for c in message_id if c.isalnum())[:40]
            with t.session():
                location = t.deliver_bytes(raw, [*to, *cc], message_id=message_id, label=label)
            state.resolve(conn, message_id, "resent", now, location=location)
            log.info("message %s sent again (%s)", message_id, location)
            return "sent"


def destination(
    settings: Settings | None = None,
    smtp: transport.SmtpConnection | None | object = transport.FROM_ENVIRONMENT,
) -> str:
    """Where messages would go now: the relay (no password) or the outbox folder."""
    t = _transport(settings or Settings(), smtp)
    return f"{t.where} (.eml files)" if t.name == "eml" else t.where
