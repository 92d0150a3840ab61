"""A DAG run failed: one zh-CN mail to the 数据管理局 per DAG and Beijing day.

Called from Airflow's task `on_failure_callback` (market_access.orchestration.notify), which runs
only when a task has failed for good — not on a try that will be retried. Testable without
Airflow: everything the mail needs comes in a `DagFailure`.

The mail names the DAG, the failing task, the first line of its error and where its log is; it
goes through the same transport as every other alert (`smtp_default`, else the .eml outbox). The
day's claim is taken in ops.dag_failure_alerts before sending (the first failing task of the day
wins; the DAG's other failing tasks that day send nothing) and released again if the message could
not be handed over, so that a later failure can still tell the bureau. Error text never carries a
password, a 身份证号 or a mobile number into the mail: they are masked first.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from market_access import warehouse
from market_access.alerts import compose, state, transport
from market_access.alerts.service import _deliver, _now, _Outgoing, _transport
from market_access.settings import BEIJING, Settings

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 300
_URI_SECRET = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@", re.I)
_KEY_SECRET = re.compile(r"(?P<head>\b(?:password|passwd|pwd|secret|token|client_secret)\s*[=:]\s*)\S+", re.I)
_ID_OR_PHONE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|1[3-9]\d{9})(?![0-9A-Za-z])")


@dataclass(frozen=True)
class DagFailure:
    dag_id: str
    task_id: str
    dag_run_id: str | None
    try_number: int | None
    error: str  # the exception (or its text) as the task ended with it
    log_url: str | None  # the task's log in the Airflow UI
    log_path: str | None  # the log file on the worker, if logs are written to files
    when: datetime  # timezone-aware

    @property
    def day(self) -> date:
        return self.when.astimezone(BEIJING).date()

    @property
    def first_error_line(self) -> str:
        return first_error_line(self.error)


def scrub(text: str) -> str:
    """No password, token, 身份证号 or mobile number leaves in a mail."""
    text = _URI_SECRET.sub(lambda m: m.group("head") + "***@", text)
    text = _KEY_SECRET.sub(lambda m: m.group("head") + "***", text)
    return _ID_OR_PHONE.sub(lambda m: _mask(m.group(1)), text)


def _mask(value: str) -> str:
    """The platform's display masks (domain.md §4), for anything shaped like an ID or mobile number."""
    return value[:3] + "*" * 11 + value[-4:] if len(value) == 18 else value[:3] + "****" + value[-4:]


def first_error_line(error: object) -> str:
    """The first non-empty line of an error, with its type when the text does not start with it."""
    if isinstance(error, BaseException):
        text = str(error).strip()
        name = type(error).__name__
        text = f"{name}: {text}" if text else name
    else:
        text = str(error or "").strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "") or "（没有错误信息）"
    line = scrub(line)
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


def failure_mail(failure: DagFailure, *, bureau_name: str, to: list[str], sender: str) -> compose.Mail:
    when = failure.when.astimezone(BEIJING)
    ctx = {
        "f": failure,
        "error": failure.first_error_line,
        "day": failure.day.isoformat(),
        "when": f"{when:%Y-%m-%d %H:%M:%S}",
        "bureau_name": bureau_name,
        "sender": sender,
    }
    subject = compose._macro("dag_failure_subject", failure.dag_id, failure.task_id, failure.day.isoformat())
    ctx["subject"] = subject
    text, html = compose._render("dag_failure", ctx)
    return compose.Mail(
        kind="dag_failure", subject=subject, text=text, html=html, to=[(bureau_name, a) for a in to]
    )


def _bureau(conn, s: Settings):
    """The bureau as the warehouse's directory has it, else as the directory file has it."""
    from market_access import directory

    if conn is not None:
        try:
            return state.load_directory(conn).bureau
        except state.AlertError:
            pass
    return directory.load(s.departments_csv).bureau


def _claim(conn, failure: DagFailure, now: datetime) -> bool:
    with conn.transaction():
        conn.execute("set local role loader")
        row = conn.execute(
            "insert into ops.dag_failure_alerts (dag_id, alert_day, dag_run_id, task_id, claimed_at) "
            "values (%s, %s, %s, %s, %s) on conflict (dag_id, alert_day) do nothing returning dag_id",
            (failure.dag_id, failure.day, failure.dag_run_id, failure.task_id, now),
        ).fetchone()
    return row is not None


def _release(conn, failure: DagFailure) -> None:
    with conn.transaction():
        conn.execute("set local role loader")
        conn.execute(
            "delete from ops.dag_failure_alerts where dag_id = %s and alert_day = %s and message_id is null",
            (failure.dag_id, failure.day),
        )


def _claim_file(s: Settings, failure: DagFailure) -> Path | None:
    """Without a warehouse: the day's claim as a file under the local folder (created exclusively)."""
    folder = s.local_dir / "mail" / "dag_failures"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{failure.day.isoformat()}_{re.sub(r'[^A-Za-z0-9_.-]', '_', failure.dag_id)}"
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return None
    return path


def notify_dag_failure(
    cfg: warehouse.WarehouseConfig | None,
    failure: DagFailure,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
    smtp: transport.SmtpConnection | None | object = transport.FROM_ENVIRONMENT,
) -> str:
    """Tell the 数据管理局 that `failure.dag_id` failed, once per DAG and Beijing day.

    Returns sent / already_sent / no_address / uncertain / rejected. Raises MailError when the message could not be
    handed over (the claim is released). `cfg` None or unreachable: the claim is a local file.
    """
    s = settings or Settings()
    now = _now(now)
    t = _transport(s, smtp)
    conn = None
    if cfg is not None:
        try:
            conn = warehouse.connect(cfg, autocommit=True)
        except Exception as exc:  # the warehouse may be why the DAG failed
            log.warning("DAG failure mail: warehouse unreachable (%s); de-duplicating by a local file", exc)
    try:
        bureau = _bureau(conn, s)
        if not bureau.alert_emails:
            log.warning("DAG %s failed, but the bureau %s has no alert_emails", failure.dag_id, bureau.name)
            return "no_address"
        mail = failure_mail(
            failure,
            bureau_name=bureau.name,
            to=list(bureau.alert_emails),
            sender=compose.sender_name(bureau.name),
        )
        from_name = compose.from_name(bureau.name)
        if conn is None:
            claim = _claim_file(s, failure)
            if claim is None:
                return "already_sent"
            try:
                with t.session():
                    msg = compose.mime(
                        mail, from_name=from_name, from_email=t.from_email, now=now, run_id=None
                    )
                    t.deliver(
                        msg, mail.recipients, label=f"{now.astimezone(BEIJING):%Y%m%dT%H%M%S}_dag_failure"
                    )
            except Exception:
                claim.unlink(missing_ok=True)
                raise
            return "sent"
        state.ensure_tables(conn)
        if not _claim(conn, failure, now):
            log.info("DAG %s already reported to the bureau on %s", failure.dag_id, failure.day)
            return "already_sent"
        try:
            (sent,) = _deliver(
                conn, t, [_Outgoing(mail)], run_id=failure.dag_run_id, from_name=from_name, now=now
            )
        except Exception:
            _release(conn, failure)
            raise
        with conn.transaction():
            conn.execute("set local role loader")
            conn.execute(
                "update ops.dag_failure_alerts set message_id = %s, sent_at = %s where dag_id = %s and alert_day = %s",
                (sent.message_id, now, failure.dag_id, failure.day),
            )
        if sent.status != "sent":  # uncertain or rejected: the day's claim stays, no second mail
            return sent.status
        log.info(
            "DAG %s failed (task %s): the bureau was told (%s)",
            failure.dag_id,
            failure.task_id,
            sent.location,
        )
        return "sent"
    finally:
        if conn is not None:
            conn.close()
