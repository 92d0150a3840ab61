"""The receipt (回执) a department gets for each submitted file, rendered as a zh-CN message.

A receipt never carries personal information: quarantined values are shown only for columns that
are neither personal information (投诉人姓名, 联系电话, 牵头领导) nor free text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from market_access.settings import BEIJING
from market_access.submissions.parser import Problem
from market_access.submissions.templates import templates

MAX_LISTED_PROBLEMS = 100
MAX_LISTED_HEADERS = 20  # ignored headers named in a receipt (a 16,384-column sheet has thousands)
SENDER = "市场准入效能评估数据平台"

STATUS_LABELS = {
    "accepted": "已接收",
    "rejected": "已拒收",
    "duplicate": "重复报送，未再次入库",
    "superseded": "已被更正文件替代",
}


@dataclass(frozen=True)
class Earlier:
    """Another file a receipt refers to (the one it supersedes, or the one it duplicates)."""

    submission_id: int
    file_name: str
    received_at: datetime

    @property
    def received_text(self) -> str:
        return _when(self.received_at)


@dataclass
class Receipt:
    submission_id: int
    file_name: str
    dept_code: str  # as the folder says
    dept_name: str | None  # None when the folder is not a known department
    status: str  # accepted / rejected / duplicate
    received_at: datetime
    file_hash: str
    template_code: str | None = None
    period: str | None = None
    rows_total: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    reason: str | None = None
    problems: list[Problem] = field(
        default_factory=list
    )  # the first ones at least (a streamed file keeps only those)
    problems_total: int | None = None  # all of them; None: len(problems)
    ignored_headers: list[str] = field(default_factory=list)
    supersedes: list[Earlier] = field(default_factory=list)
    duplicate_of: Earlier | None = None
    sender: str = SENDER
    text: str = ""  # the rendered plain text, once rendered

    @property
    def template_name(self) -> str | None:
        t = templates().get(self.template_code or "")
        return t.name if t else None

    @property
    def dept_label(self) -> str:
        return self.dept_name or f"报送目录“{self.dept_code}”"

    def shown_problems(self) -> list[Problem]:
        """The problems with every value a receipt may not show replaced by None."""
        t = templates().get(self.template_code or "")
        out = []
        for p in self.problems:
            col = t.match(p.column) if t else None
            shown = col is not None and col.shows_value
            out.append(Problem(p.row_number, p.column, p.value if shown else None, p.reason))
        return out


def _when(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(BEIJING)
    return f"{moment:%Y-%m-%d %H:%M}"


def subject(r: Receipt) -> str:
    what = " ".join(x for x in (r.template_name or "未识别模板", r.period) if x)
    if r.status == "accepted":
        outcome = f"已接收 {r.rows_accepted} 行" + (
            f"，{r.rows_quarantined} 行待更正" if r.rows_quarantined else ""
        )
    else:
        outcome = STATUS_LABELS.get(r.status, r.status)
    return f"【报送回执】{r.dept_name or r.dept_code} · {what}：{outcome}"


@cache
def _environments():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    loader = PackageLoader("market_access.submissions", "jinja")
    text = Environment(loader=loader, autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)
    html = Environment(loader=loader, autoescape=select_autoescape(["html.j2"]), undefined=StrictUndefined)
    return text, html


def render(r: Receipt) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of the receipt, in Chinese."""
    problems = r.shown_problems()
    colour = {"accepted": "#1a7f37" if not r.rows_quarantined else "#9a6700", "rejected": "#cf222e"}
    ctx = {
        "r": r,
        "subject": subject(r),
        "received": _when(r.received_at),
        "duplicate_received": _when(r.duplicate_of.received_at) if r.duplicate_of else "",
        "status_label": STATUS_LABELS.get(r.status, r.status),
        "colour": colour.get(r.status, "#57606a"),
        "problems": problems[:MAX_LISTED_PROBLEMS],
        "hidden_problems": max(
            0,
            (r.problems_total if r.problems_total is not None else len(problems))
            - len(problems[:MAX_LISTED_PROBLEMS]),
        ),
        "ignored_headers": r.ignored_headers[:MAX_LISTED_HEADERS],
        "more_ignored": max(0, len(r.ignored_headers) - MAX_LISTED_HEADERS),
    }
    text_env, html_env = _environments()
    text = text_env.get_template("receipt.txt.j2").render(ctx)
    html = html_env.get_template("receipt.html.j2").render(ctx)
    return ctx["subject"], text, html
