"""The alert mails' content: quality results as rendered zh-CN messages (plain text + HTML).

All wording lives in the Jinja templates under `jinja/`; this module only shapes the data for
them and wraps the result in a MIME message. The HTML templates autoescape every value.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid
from functools import cache
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

from stdnum.cn import ric

log = logging.getLogger(__name__)

MAX_SAMPLES = 10
_MOBILE = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")


# --- what the quality engine wrote -------------------------------------------------------------


@dataclass(frozen=True)
class QualityRun:
    run_id: str
    started_at: datetime | None
    finished_at: datetime | None
    data_date: date | None
    status: str | None
    data_docs_dir: str | None
    not_checked: tuple = ()  # incomplete runs: ({"relation", "reason", "reason_zh"}, …)


@dataclass(frozen=True)
class RuleResult:
    """One row of ops.quality_results: one rule, for one department, in one run."""

    rule_id: str
    dept_code: str | None
    asset: str | None
    source: str | None
    level: str | None  # row / dataset
    category: str | None
    severity: str | None  # blocking / warning
    success: bool | None  # None: not evaluated (neither a pass nor a failure)
    evaluated_count: int | None
    failed_count: int | None
    failed_share: Decimal | float | None  # a fraction, 0..1
    sample_record_ids: tuple[str, ...] = ()
    observed_on: date | None = None
    observed: str | None = None
    description_zh: str | None = None
    fix_zh: str | None = None
    deadline_zh: str | None = None  # the time limit the rule applies (作出决定之日起 7 个工作日内公示)
    data_docs_page: str | None = None
    basis_zh: str | None = None  # the standard it rests on (公民身份号码 GB 11643-1999)

    @property
    def blocking(self) -> bool:
        return (self.severity or "").strip().lower() == "blocking"

    @property
    def share(self) -> float | None:
        """The failing share as a fraction: as the engine gave it, else failed ÷ evaluated."""
        if self.failed_share is not None:
            return float(self.failed_share)
        if self.failed_count is not None and self.evaluated_count:
            return self.failed_count / self.evaluated_count
        return None

    @property
    def samples(self) -> tuple[str, ...]:
        return tuple(safe_sample(s) for s in self.sample_record_ids[:MAX_SAMPLES])

    @property
    def fingerprint(self) -> str:
        """Identity of a failure: department, rule, failed count and (order-free) sample ids."""
        key = [self.dept_code or "", self.rule_id, self.failed_count, sorted(self.sample_record_ids or ())]
        return hashlib.sha256(json.dumps(key, ensure_ascii=False).encode()).hexdigest()[:32]

    @property
    def source_zh(self) -> str:
        """Where the records come from, as a department knows it (政务服务一体化平台 · 办件)."""
        return source_label(self.asset, self.source, self.rule_id)

    @property
    def sort_key(self) -> tuple:
        """Blocking first, then the larger failing share, the larger count, the rule id."""
        return (0 if self.blocking else 1, -(self.share or 0.0), -(self.failed_count or 0), self.rule_id)


def safe_sample(value: object) -> str:
    """A sample record id as shown in a mail. One that looks like a 身份证号 or a mobile number gets
    the platform's display mask (domain.md §4), so that an engine bug can never mail personal data."""
    text = str(value).strip()
    compact = re.sub(r"[\s-]", "", text)
    phone = _MOBILE.match(compact)
    if phone:
        digits = phone.group(1)
        masked = digits[:3] + "****" + digits[-4:]
    elif len(compact) == 18 and ric.is_valid(compact.upper()):
        masked = compact[:3] + "*" * 11 + compact[-4:]
    else:
        return text
    log.warning("a sample record id looks like personal information; it is masked in the mail")
    return masked


def _relation_label(name: str) -> str | None:
    """staging.stg_gov_service__cases (or a feeds column stg_gov_service__cases__rows) → its title."""
    from market_access.sources.catalog import systems
    from market_access.submissions.templates import templates

    table = name.rsplit(".", 1)[-1]
    table = table[4:] if table.startswith("stg_") else table
    if table.startswith("submissions__"):
        rest = table[len("submissions__") :]
        for code, t in templates().items():
            if rest == code or rest.startswith(code + "__"):
                return f"部门报送 · {t.title}"
        return None
    for sys_name, system in systems().items():
        if not table.startswith(sys_name + "__"):
            continue
        rest = table[len(sys_name) + 2 :]
        for res in sorted(system.resources, key=lambda r: -len(r.name)):
            key = res.name.replace("-", "_")
            if rest == key or rest.startswith(key + "__"):
                return f"{system.title} · {res.title}"
        return system.title
    return None


@cache
def _feeds_columns() -> dict[str, str]:
    """rule id → the feeds column a department-feeds rule checks (its kwargs column)."""
    try:
        from market_access.quality.catalogue import load

        return {r.id: str(r.kwargs.get("column") or "") for r in load().rules}
    except Exception:  # the mail still goes out, naming the system only
        log.warning("the quality rule catalogue could not be read; sources are named by system only", exc_info=True)
        return {}


@cache
def source_label(asset: str | None, source: str | None, rule_id: str | None = None) -> str:
    """The source of a result as departments know it: system title · resource title for a system
    (政务服务一体化平台 · 办件), 部门报送 · template title for submissions; never a relation name."""
    from market_access.sources.catalog import systems
    from market_access.submissions.templates import templates

    for candidate in (asset, _feeds_columns().get(rule_id or "", "")):
        label = _relation_label(candidate) if candidate else None
        if label:
            return label
    if source in systems():
        return systems()[source].title
    if source in templates():
        return f"部门报送 · {templates()[source].title}"
    if source == "submissions":
        return "部门报送"
    return "未登记的数据来源"


WEEKDAYS_ZH = ("", "周一", "周二", "周三", "周四", "周五", "周六", "周日")


# --- what a mail says ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One failing rule as a department's mail lists it."""

    result: RuleResult
    first_failed_on: date
    days: int  # whole days since the streak began (0 = first seen today)
    escalated: bool
    docs_link: str | None
    status: str = "new"  # new / worsened / reclassified / improved / unchanged (against the last mail)
    fix_by: date | None = None  # fix by this day, else the 发改局 is copied

    def __getattr__(self, name):  # the templates read the result's fields directly
        if name == "result":
            raise AttributeError(name)
        return getattr(self.result, name)


@dataclass(frozen=True)
class DeptRow:
    """One line of the bureau's summary table."""

    dept_code: str
    dept_name: str
    evaluated: int
    failed: int
    blocking_failed: int
    worst: RuleResult | None
    mail: str  # sent / escalated / unchanged / no_address / none / unknown / uncertain / rejected


@dataclass
class Mail:
    kind: str  # dept / escalation / digest / bureau / receipt / dag_failure
    subject: str
    text: str
    html: str
    to: list[tuple[str, str]]  # (display name, address)
    cc: list[tuple[str, str]] = field(default_factory=list)
    dept_code: str | None = None
    rule_ids: list[str] = field(default_factory=list)

    @property
    def to_addrs(self) -> list[str]:
        return [a for _, a in self.to]

    @property
    def cc_addrs(self) -> list[str]:
        return [a for _, a in self.cc]

    @property
    def recipients(self) -> list[str]:
        return list(dict.fromkeys(self.to_addrs + self.cc_addrs))


# --- formatting ---------------------------------------------------------------------------------


def pct(share: float | None) -> str:
    """0.025 → "2.50%"; a share too small to show as 0.01% still is not 0.00%."""
    if share is None:
        return "—"
    value = share * 100
    if 0 < value < 0.01:
        return "<0.01%"
    return f"{value:.2f}%"


def num(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def docs_link(target: str | None, base: str | None = None) -> str | None:
    """Where a reader opens a Data Docs page: a URL as given, an absolute path as a file:// URL; a
    relative page is taken relative to `base` (the run's Data Docs folder)."""
    target = (target or "").strip()
    if not target:
        return None
    if urlsplit(target).scheme in ("http", "https", "file"):
        return target
    base = (base or "").strip()
    if not target.startswith("/") and base:
        if urlsplit(base).scheme in ("http", "https", "file"):
            return base.rstrip("/") + "/" + target
        target = str(PurePosixPath(base) / target)
    if target.startswith("/"):
        return "file://" + quote(target)
    return target


@cache
def _environments():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    loader = PackageLoader("market_access.alerts", "jinja")
    filters = {"pct": pct, "num": num}
    text = Environment(
        loader=loader,
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
    )
    html = Environment(loader=loader, autoescape=select_autoescape(["html.j2"]), undefined=StrictUndefined)
    for env in (text, html):
        env.filters.update(filters)
    return text, html


def _macro(name: str, *args) -> str:
    text_env, _ = _environments()
    return " ".join(str(getattr(text_env.get_template("wording.j2").module, name)(*args)).split())


def sender_name(bureau_name: str) -> str:
    """Who signs the mails, e.g. 区数据管理局 市场准入效能评估数据平台."""
    return _macro("sender", bureau_name)


def from_name(bureau_name: str) -> str:
    """The From display name, e.g. 区数据管理局 数据平台."""
    return _macro("from_name", bureau_name)


def _render(stem: str, ctx: dict) -> tuple[str, str]:
    text_env, html_env = _environments()
    return (
        text_env.get_template(f"{stem}.txt.j2").render(ctx),
        html_env.get_template(f"{stem}.html.j2").render(ctx),
    )


def _when(moment: datetime | None) -> str:
    from market_access.settings import BEIJING

    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(BEIJING)
    return f"{moment:%Y-%m-%d %H:%M}"


def department_mail(
    *,
    run: QualityRun,
    day: date,
    dept_code: str,
    dept_name: str,
    to: Sequence[str],
    items: Sequence[Item],
    evaluated: int,
    ndrc_name: str,
    ndrc_addrs: Sequence[str],
    escalate_after: int,
    sender: str,
    held: int = 0,
    digest: bool = False,
    digest_weekday: int = 1,
) -> Mail:
    """One department's alert: the failing rules it is told about (new or worsened ones; on the
    digest day every open one), blocking first, one block each; `held` more unchanged ones wait for
    the weekly digest. An escalated one copies the 发改局 (unless that is the department itself)."""
    items = sorted(items, key=lambda i: i.result.sort_key)
    escalated = [i for i in items if i.escalated]
    blocking = sum(1 for i in items if i.blocking)
    cc_addrs = [a for a in ndrc_addrs if a not in to] if escalated else []
    cc_name = ndrc_name if cc_addrs else ""
    subject = _macro("dept_subject", dept_name, day.isoformat(), len(items), blocking, cc_name, held, digest)
    ctx = {
        "held": held,
        "digest": digest,
        "weekday": WEEKDAYS_ZH[digest_weekday],
        "changed": sum(1 for i in items if i.status in ("new", "worsened", "reclassified")),
        "subject": subject,
        "run": run,
        "day": day.isoformat(),
        "dept_name": dept_name,
        "items": items,
        "failed": len(items),
        "blocking": blocking,
        "warning": len(items) - blocking,
        "evaluated": evaluated,
        "escalated": escalated,
        "escalated_days": max((i.days for i in escalated), default=0),
        "cc_name": cc_name,
        "ndrc_name": ndrc_name,
        "escalate_after": escalate_after,
        "docs": docs_link(run.data_docs_dir),
        "sender": sender,
    }
    text, html = _render("department", ctx)
    return Mail(
        kind="digest" if digest else "escalation" if cc_addrs else "dept",
        subject=subject,
        text=text,
        html=html,
        to=[(dept_name, a) for a in to],
        cc=[(ndrc_name, a) for a in cc_addrs],
        dept_code=dept_code,
        rule_ids=[i.rule_id for i in items],
    )


def bureau_mail(
    *,
    run: QualityRun,
    day: date,
    bureau_name: str,
    to: Sequence[str],
    rows: Sequence[DeptRow],
    ndrc_name: str,
    sender: str,
    digest_weekday: int = 1,
    undelivered: Sequence[dict] = (),
) -> Mail:
    """The 数据管理局's summary of one run: every department, failing ones first; `undelivered`:
    the messages uncertain or rejected that await the operator's decision (state.undelivered)."""
    rows = sorted(rows, key=lambda r: (-r.blocking_failed, -r.failed, r.evaluated == 0, r.dept_name))
    failed_depts = sum(1 for r in rows if r.failed)
    failed = sum(r.failed for r in rows)
    blocking = sum(r.blocking_failed for r in rows)
    evaluated = sum(r.evaluated for r in rows)
    subject = _macro("bureau_subject", day.isoformat(), failed_depts, failed, blocking, evaluated)
    ctx = {
        "subject": subject,
        "run": run,
        "day": day.isoformat(),
        "bureau_name": bureau_name,
        "started": _when(run.started_at),
        "finished": _when(run.finished_at),
        "rows": [r for r in rows if r.evaluated],
        "not_evaluated": [r.dept_name for r in rows if not r.evaluated],
        "not_checked": [
            {"relation": n.get("relation") or "—", "reason_zh": n.get("reason_zh") or n.get("reason") or ""}
            for n in run.not_checked
        ],
        "failed_depts": failed_depts,
        "failed": failed,
        "blocking": blocking,
        "evaluated": evaluated,
        "departments": sum(1 for r in rows if r.evaluated),
        "cc_name": ndrc_name,
        "weekday": WEEKDAYS_ZH[digest_weekday],
        "docs": docs_link(run.data_docs_dir),
        "sender": sender,
        "undelivered": list(undelivered),
    }
    text, html = _render("bureau", ctx)
    return Mail(kind="bureau", subject=subject, text=text, html=html, to=[(bureau_name, a) for a in to])


def _addresses(pairs: Sequence[tuple[str, str]]) -> str:
    return ", ".join(formataddr((name, addr), charset="utf-8") for name, addr in pairs)


def mime(mail: Mail, *, from_name: str, from_email: str, now: datetime, run_id: str | None) -> Message:
    """multipart/alternative (text/plain, then text/html), UTF-8, with RFC 2047 encoded headers.

    Built with email.header.Header rather than EmailMessage: the modern folder moves the space
    before a folded-off Chinese word outside the encoded words, where readers drop it
    ("区市场监督管理局 · 违规案例" would arrive as "区市场监督管理局· 违规案例").
    """
    msg = MIMEMultipart("alternative")
    msg["Subject"] = Header(mail.subject, "utf-8")
    msg["From"] = formataddr((from_name, from_email), charset="utf-8")
    msg["To"] = _addresses(mail.to)
    if mail.cc:
        msg["Cc"] = _addresses(mail.cc)
    msg["Date"] = format_datetime(now)
    domain = from_email.rsplit("@", 1)[-1] if "@" in from_email else "localhost"
    msg["Message-ID"] = make_msgid(idstring=mail.kind, domain=domain)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    msg["X-Market-Access-Kind"] = mail.kind
    if run_id:
        msg["X-Market-Access-Run-Id"] = run_id
    if mail.dept_code:
        msg["X-Market-Access-Dept"] = mail.dept_code
    msg.attach(MIMEText(mail.text, "plain", "utf-8"))
    msg.attach(MIMEText(mail.html, "html", "utf-8"))
    return msg
