"""Realistic department submission files for the demo inbox, as messy as people make them.

Every department sends the templates its directory entry answers for (`sources`), not always all
of them, in every accepted format (.xlsx, UTF-8 CSV with and without BOM, GB18030 CSV), with the
usual mess: a merged title row above the header, stray blank lines, dates typed as 2026年3月5日 or
2026/3/5, full-width spaces in headers, department names as short aliases. Day 0 of a period also
holds the cases the inbox must handle: files with one or two bad rows, a file with a missing
required header, an identical file sent twice, a corrected file that supersedes an earlier one,
a file whose name does not say its template, and a file in a folder that is not a department code.
Every later day adds a few files: late senders, a correction, now and then a resend.

Content is deterministic in (seed, period, day); .xlsx files are written with fixed zip and
document timestamps so the same content gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
import time
import zipfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from market_access.directory import Department, Directory
from market_access.simulators.names import NameMaker
from market_access.simulators.reference import NEGATIVE_LIST_PERMIT_CODES, SERVICE_SUBJECTS
from market_access.submissions.templates import Template, template

FULLWIDTH_SPACE = "\u3000"

# --- vocabularies -------------------------------------------------------------------------------
CASE_TYPES = (("违规审批禁止准入事项", 10), ("清单外增设准入条件", 45), ("设置隐性壁垒", 35), ("其他", 10))
CASE_FACTS = {
    "违规审批禁止准入事项": (
        "对负面清单禁止准入事项违规受理并核发许可",
        "未经核实即为禁止准入类项目办理审批手续",
    ),
    "清单外增设准入条件": (
        "办理{item}时要求申请人额外提供{material}",
        "在{item}中增设注册资本不低于{amount}万元的条件",
        "要求{item}申请人提供清单外的{material}",
    ),
    "设置隐性壁垒": (
        "以内部规定为由，要求{item}申请企业先在本地注册分支机构",
        "{item}办理中指定中介服务机构出具{material}",
        "对外地企业办理{item}设置额外的业绩证明要求",
    ),
    "其他": ("{item}办理过程中一次性告知不到位，企业多次往返", "{item}网上申报通道长期无法使用"),
}
MATERIALS = (
    "无犯罪记录证明",
    "场地产权证明复印件",
    "验资报告",
    "行业协会推荐函",
    "社保缴纳证明",
    "纳税证明",
    "消防验收意见书",
)
COMPLAINT_ISSUES = (
    "反映在办理{item}时被要求提供清单外的{material}",
    "反映{item}窗口以“内部规定”为由不予受理",
    "反映办理{item}被要求必须使用指定中介机构",
    "反映{item}办理时间超过承诺时限仍未办结",
    "反映招投标中设置了与项目无关的本地业绩门槛",
    "反映外地企业在本地办理{item}受到差别对待",
    "反映{item}材料已一次性提交，仍被要求多次补正",
)
LEDGER_PROBLEMS = (
    "政务服务事项办事指南要素不完整，部分事项未列明法定时限",
    "部分事项承诺时限压缩比低于全区平均水平",
    "好差评差评整改超过15个工作日",
    "“双随机、一公开”抽查结果未在20个工作日内公示",
    "行政处罚信息未在7个工作日内完成双公示",
    "行政处罚决定书未同步送达信用修复告知书",
    "存在要求企业重复提交材料的情况",
    "一次性告知不到位，企业平均补正次数偏高",
    "全程网办率偏低，线下受理比例过高",
    "年度抽查计划未按时制定并公示",
    "负面清单事项与政务服务事项对应关系未梳理完毕",
    "隐性壁垒投诉反馈超过10日",
)
LEDGER_ORIGINS = (("效能评估", 55), ("巡察", 15), ("自查", 20), ("投诉", 10))
LEDGER_STATES = (("未启动", 5), ("整改中", 35), ("已整改", 30), ("已销号", 30))
CHANNELS = (("12345", 55), ("门户网站", 20), ("现场", 15), ("其他", 10))
DIMENSIONS = ("审批效率", "服务态度", "公开透明", "公平竞争", "总体")
SCORES = ((5, 50), (4, 32), (3, 11), (2, 4), (1, 3))
FORMATS = (("xlsx", 45), ("csv-bom", 20), ("csv-utf8", 15), ("csv-gb18030", 20))
DATE_STYLES = (("iso", 40), ("slash", 25), ("chinese", 20), ("compact", 15))
# which departments' people work with which templates, and how reliably they send
SEND_RATE = {
    "violation_cases": 0.85,
    "barrier_complaints": 1.0,
    "rectification_ledger": 0.8,
    "satisfaction_survey": 1.0,
}
TEMPLATE_ORDER = ("violation_cases", "barrier_complaints", "rectification_ledger", "satisfaction_survey")
XLSX_TIMESTAMP = (2026, 7, 1, 9, 0, 0)


def pick(rng: random.Random, weighted: tuple) -> object:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


# --- periods ------------------------------------------------------------------------------------


def period_bounds(period: str) -> tuple[date, date]:
    """First and last day of `YYYY`, `YYYYH1`, `YYYYQ2` or `YYYY-MM`."""
    m = re.fullmatch(r"(\d{4})(?:-(\d{2})|H([12])|Q([1-4]))?", period)
    if not m:
        raise ValueError(f"period must be YYYY, YYYYH1|H2, YYYYQ1–Q4 or YYYY-MM, not {period!r}")
    year = int(m.group(1))
    if m.group(2):
        first_month, months = int(m.group(2)), 1
    elif m.group(3):
        first_month, months = 1 + 6 * (int(m.group(3)) - 1), 6
    elif m.group(4):
        first_month, months = 1 + 3 * (int(m.group(4)) - 1), 3
    else:
        first_month, months = 1, 12
    start = date(year, first_month, 1)
    end_month = first_month + months
    end = (date(year + 1, 1, 1) if end_month > 12 else date(year, end_month, 1)) - timedelta(days=1)
    return start, end


def quarter_periods(quarter: str) -> dict[str, list[str]]:
    """The periods each template is reported for in a quarter: months, the quarter, the half-year."""
    start, _ = period_bounds(quarter)
    months = [f"{start.year}-{start.month + i:02d}" for i in range(3)]
    half = f"{start.year}H{1 if start.month <= 6 else 2}"
    return {
        "violation_cases": [quarter, *months],
        "barrier_complaints": [quarter],
        "rectification_ledger": [half],
        "satisfaction_survey": [quarter],
    }


# --- one file's content -------------------------------------------------------------------------


@dataclass
class Plan:
    """One file to write: its folder, name, rows (header → value) and how messy to make it."""

    folder: str
    template: Template
    period: str
    rows: list[dict[str, object]]
    fmt: str
    date_style: str
    title: str | None = None
    blank_after_title: bool = False
    blank_in_data: int | None = None  # a blank line before this data row
    spaced_header: str | None = None  # a header written with a full-width space
    starred: bool = False  # required headers marked with *
    drop_header: str | None = None
    name: str = ""
    tags: list[str] = field(default_factory=list)

    @property
    def file_name(self) -> str:
        ext = "xlsx" if self.fmt == "xlsx" else "csv"
        return self.name or f"{self.template.name}_{self.period}.{ext}"


class Writer:
    """Builds the plans of one department, template and period from one random stream."""

    def __init__(self, rng: random.Random, directory: Directory) -> None:
        self.rng = rng
        self.names = NameMaker(rng)
        self.directory = directory
        self.index = {d.code: i + 1 for i, d in enumerate(directory.departments)}
        self.industry = [d for d in directory.departments if d.role != "bureau"]

    def dept_text(self, d: Department) -> str:
        """How people write a department: mostly the full name, often an alias, now and then the code."""
        r = self.rng.random()
        if r < 0.25 and d.aliases:
            return self.rng.choice(d.aliases)
        if r < 0.3:
            return d.code
        return d.name

    def day_in(self, period: str) -> date:
        start, end = period_bounds(period)
        return start + timedelta(days=self.rng.randrange((end - start).days + 1))

    def items(self, d: Department) -> list[str]:
        subjects = SERVICE_SUBJECTS.get(d.name, ())
        market = [s.split("|")[0] for s in subjects if s.split("|")[1].endswith("M")]
        return market or [s.split("|")[0] for s in subjects] or ["政务服务事项"]

    def fill(self, text: str, d: Department) -> str:
        return text.format(
            item=self.rng.choice(self.items(d)),
            material=self.rng.choice(MATERIALS),
            amount=self.rng.choice((50, 100, 200, 500)),
        )

    def violation_rows(self, d: Department, period: str, n: int) -> list[dict]:
        year = period[:4]
        first = self.rng.randrange(1, 60)
        rows = []
        for i in range(n):
            kind = pick(self.rng, CASE_TYPES)
            found = self.day_in(period)
            done = self.rng.random() < 0.7
            closed = min(found + timedelta(days=self.rng.randrange(3, 40)), period_bounds(period)[1])
            rows.append(
                {
                    "案例编号": f"WG{year}{self.index[d.code]:02d}{first + i:03d}",
                    "报送单位": self.dept_text(d),
                    "案例类型": kind,
                    "发现日期": found,
                    "涉及事项": self.rng.choice(self.items(d)),
                    "负面清单事项编码": "" if kind == "其他" else self.rng.choice(NEGATIVE_LIST_PERMIT_CODES),
                    "处置状态": "已处置" if done else "处置中",
                    "处置完成日期": closed if done else "",
                    "案情摘要": self.fill(self.rng.choice(CASE_FACTS[kind]), d)
                    + ("，已责令改正" if done else ""),
                }
            )
        return rows

    def complaint_rows(self, d: Department, period: str, n: int) -> list[dict]:
        rows = []
        start, end = period_bounds(period)
        for i in range(n):
            accepted = self.day_in(period)
            target = self.rng.choice(self.industry)
            transferred = accepted + timedelta(days=self.rng.randrange(0, 3))
            closed = transferred + timedelta(days=self.rng.randrange(1, 20))
            replied = closed + timedelta(days=self.rng.randrange(0, 4))
            open_case = closed > end or self.rng.random() < 0.1
            anonymous = self.rng.random() < 0.12
            rows.append(
                {
                    "投诉编号": f"TS{start:%Y%m}{self.index[d.code]:02d}{i + 1:04d}",
                    "受理日期": accepted,
                    "投诉渠道": pick(self.rng, CHANNELS),
                    "投诉人姓名": "" if anonymous else self.names.person_name(),
                    "联系电话": "" if anonymous else self.phone(),
                    "涉及单位": self.dept_text(target),
                    "内容摘要": self.fill(self.rng.choice(COMPLAINT_ISSUES), target),
                    "转办日期": transferred,
                    "办结日期": "" if open_case else closed,
                    "反馈日期": "" if open_case else replied,
                }
            )
        return rows

    def phone(self) -> str:
        p = self.names.phone()
        r = self.rng.random()
        if r < 0.1:
            return f"+86 {p[:3]}-{p[3:7]}-{p[7:]}"
        if r < 0.2:
            return f"{p[:3]} {p[3:7]} {p[7:]}"
        if r < 0.27:
            return f"0792-{self.rng.randrange(2000000, 8999999)}"
        return p

    def ledger_rows(self, d: Department, period: str, n: int) -> list[dict]:
        start, end = period_bounds(period)
        rows = []
        for i, problem in enumerate(self.rng.sample(LEDGER_PROBLEMS, n)):
            found = self.day_in(period)
            state = pick(self.rng, LEDGER_STATES)
            rows.append(
                {
                    "问题编号": f"ZG{period}-{self.index[d.code]:02d}-{i + 1:03d}",
                    "问题描述": problem,
                    "问题来源": pick(self.rng, LEDGER_ORIGINS),
                    "责任单位": self.dept_text(d),
                    "牵头领导": self.names.person_name(),
                    "明显成效时限": found + timedelta(days=90),
                    "整改到位时限": found + timedelta(days=180),
                    "整改状态": state,
                    "销号日期": min(found + timedelta(days=self.rng.randrange(20, 150)), end)
                    if state == "已销号"
                    else "",
                }
            )
        return rows

    def survey_rows(self, d: Department, period: str, n: int) -> list[dict]:
        start, _ = period_bounds(period)
        rows = []
        for i in range(n):
            r = self.rng.random()
            code = (
                self.names.uscc("91")
                if r < 0.8
                else self.names.uscc("92")
                if r < 0.98
                else "00000000000000000X"
            )
            rated = self.rng.choice(self.industry)
            answered = self.day_in(period)
            rated_text = self.dept_text(rated)
            base = pick(self.rng, SCORES)
            for dim in DIMENSIONS:
                score = max(1, min(5, base + self.rng.choice((0, 0, 0, -1, 1))))
                rows.append(
                    {
                        "问卷编号": f"MY{start:%Y%m}-{self.index[d.code]:02d}{i + 1:04d}",
                        "填报日期": answered,
                        "统一社会信用代码": code,
                        "评价对象单位": rated_text,
                        "评价维度": dim,
                        "得分": score,
                    }
                )
        return rows

    def plan(self, d: Department, code: str, period: str, *, folder: str | None = None) -> Plan:
        rng = self.rng
        t = template(code)
        if code == "violation_cases":
            n = (
                pick(rng, ((0, 25), (1, 30), (2, 22), (3, 13), (4, 10)))
                if len(period) > 7
                else rng.randrange(0, 3)
            )
            rows = self.violation_rows(d, period, n)
        elif code == "barrier_complaints":
            rows = self.complaint_rows(d, period, rng.randrange(5, 26))
        elif code == "rectification_ledger":
            rows = self.ledger_rows(d, period, rng.randrange(3, 10))
        else:
            rows = self.survey_rows(d, period, rng.randrange(30, 81))
        headers = [c.header for c in t.columns]
        county = "示范区"
        p = Plan(
            folder=folder or d.code,
            template=t,
            period=period,
            rows=rows,
            fmt=pick(rng, FORMATS),
            date_style=pick(rng, DATE_STYLES),
        )
        if rng.random() < 0.5:
            p.title = f"{county}{d.name}{_period_words(period)}{t.name}报送表"
            p.blank_after_title = rng.random() < 0.4
        if rows and rng.random() < 0.25:
            p.blank_in_data = rng.randrange(len(rows))
        if rng.random() < 0.2:
            p.spaced_header = rng.choice(headers)
        p.starred = rng.random() < 0.1
        return p


def _period_words(period: str) -> str:
    if len(period) == 4:
        return f"{period}年度"
    if "H" in period:
        return f"{period[:4]}年{'上' if period.endswith('1') else '下'}半年"
    if "Q" in period:
        return f"{period[:4]}年第{'一二三四'[int(period[-1]) - 1]}季度"
    return f"{period[:4]}年{int(period[5:])}月"


# --- rendering ----------------------------------------------------------------------------------


def _date_text(d: date, style: str) -> str:
    if style == "slash":
        return f"{d.year}/{d.month}/{d.day}"
    if style == "chinese":
        return f"{d.year}年{d.month}月{d.day}日"
    if style == "compact":
        return f"{d:%Y%m%d}"
    return d.isoformat()


def _table(p: Plan, *, excel: bool) -> list[list[object]]:
    cols = [c for c in p.template.columns if c.header != p.drop_header]
    header = []
    for c in cols:
        h = c.header
        if h == p.spaced_header:
            h = h[:2] + FULLWIDTH_SPACE + h[2:] if len(h) > 2 else h + FULLWIDTH_SPACE
        if p.starred and not c.nullable:
            h = "*" + h
        header.append(h)
    out: list[list[object]] = []
    if p.title:
        out.append([p.title] + [""] * (len(cols) - 1))
        if p.blank_after_title:
            out.append([""] * len(cols))
    out.append(header)
    for i, row in enumerate(p.rows):
        if p.blank_in_data == i:
            out.append([""] * len(cols))
        values = []
        for c in cols:
            v = row.get(c.header, "")
            if isinstance(v, date):
                v = v if excel and p.date_style == "iso" else _date_text(v, p.date_style)
            values.append(v)
        out.append(values)
    return out


def render(p: Plan) -> bytes:
    """The file's bytes in its format."""
    if p.fmt == "xlsx":
        return _xlsx(p)
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(
        [["" if v is None else str(v) for v in row] for row in _table(p, excel=False)]
    )
    if p.fmt == "csv-gb18030":
        return text.getvalue().encode("gb18030")
    return text.getvalue().encode("utf-8-sig" if p.fmt == "csv-bom" else "utf-8")


def _xlsx(p: Plan) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    from market_access.xlsx_text import append_row

    wb = Workbook()
    ws = wb.active
    ws.title = p.template.name
    rows = _table(p, excel=True)
    for row in rows:
        append_row(ws, [None if v == "" else v for v in row])  # a value from data never becomes a formula
    width = len(rows[-1]) if rows else 1
    if p.title:
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
        ws.cell(1, 1).font = Font(bold=True, size=14)
        ws.cell(1, 1).alignment = Alignment(horizontal="center")
    for row in ws.iter_rows():
        for cell in row:
            if isinstance(cell.value, date):
                cell.number_format = "yyyy-mm-dd"
    buf = io.BytesIO()
    wb.save(buf)
    return _stable_zip(buf.getvalue())


def _stable_zip(data: bytes) -> bytes:
    """Same workbook, same bytes: fixed zip entry times and document timestamps."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>2026-07-01T01:00:00Z", body
                )
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=XLSX_TIMESTAMP), body, zipfile.ZIP_DEFLATED)
    return out.getvalue()


# --- the inbox ----------------------------------------------------------------------------------


@dataclass
class Generated:
    files: list[Path]
    tags: dict[str, list[str]]  # file path → what is special about it

    def __len__(self) -> int:
        return len(self.files)


def base_plans(seed: int, quarter: str, directory: Directory) -> list[Plan]:
    """Day 0 of a quarter: what every department sends, plus the special cases."""
    rng = random.Random(f"{seed}|submissions|{quarter}")
    w = Writer(rng, directory)
    periods = quarter_periods(quarter)
    plans: list[Plan] = []
    for d in directory.departments:
        for code in TEMPLATE_ORDER:
            if code not in d.sources or rng.random() > SEND_RATE[code]:
                continue
            if code == "violation_cases":
                chosen = periods[code][1:] if rng.random() < 0.2 else periods[code][:1]
            else:
                chosen = periods[code]
            plans.extend(w.plan(d, code, period) for period in chosen)
    _special_cases(rng, w, plans, directory, quarter)
    return plans


def _corrupt(rng: random.Random, p: Plan, n: int) -> None:
    """Make n rows of the plan invalid the way people do."""
    for row in rng.sample(p.rows, min(n, len(p.rows))):
        code = p.template.code
        if code == "violation_cases":
            choice = rng.choice(("status", "date", "list_code"))
            if choice == "status":
                row["处置状态"] = "已处理"
            elif choice == "date":
                row["发现日期"] = f"{p.period[:4]}-02-30"
            else:
                row["负面清单事项编码"] = "20012"
        elif code == "barrier_complaints":
            if rng.random() < 0.5:
                row["投诉渠道"] = "电话"
            else:
                row["联系电话"] = "1380013800"
        elif code == "rectification_ledger":
            if rng.random() < 0.5:
                row["整改状态"] = "已完成"
            else:
                row["责任单位"] = "区城建局"
        else:
            if rng.random() < 0.5:
                row["得分"] = rng.choice(("6", "满意"))
            else:
                row["统一社会信用代码"] = "91360421MA35XXXX0"
    p.tags.append(f"{n} bad row(s)")


def _special_cases(
    rng: random.Random, w: Writer, plans: list[Plan], directory: Directory, quarter: str
) -> None:
    with_rows = [p for p in plans if len(p.rows) >= 2]
    by_code = {code: [p for p in with_rows if p.template.code == code] for code in TEMPLATE_ORDER}
    # files with one or two bad rows, one per template where possible; the first one is sent
    # again, corrected, later in the same scan: the correction supersedes it
    bad = [rng.choice(ps) for ps in by_code.values() if ps]
    if bad:
        plans.append(_copy(bad[0], name="（更正）", tag="corrected: supersedes " + bad[0].file_name))
    for p in bad:
        _corrupt(rng, p, 1 if len(p.rows) < 4 else rng.choice((1, 1, 2)))
    # a ledger without its 整改状态 column
    ledgers = [p for p in by_code["rectification_ledger"] if p not in bad]
    if ledgers:
        broken = rng.choice(ledgers)
        broken.drop_header = "整改状态"
        broken.tags.append("missing header 整改状态")
    # an identical file sent twice (a copy with Windows' copy name, written later)
    clean = [p for p in with_rows if not p.tags]
    if clean:
        again = rng.choice(clean)
        again.tags.append("sent twice")
        plans.append(_copy(again, name=" - 副本", tag="resend of " + again.file_name))
    # a file whose name does not say its template (recognised by its headers)
    clean = [p for p in plans if p.rows and not p.tags and p.template.code == "violation_cases"]
    if clean:
        anon = rng.choice(clean)
        anon.name = (
            f"{_period_words(anon.period)}报送_{anon.period}.{'xlsx' if anon.fmt == 'xlsx' else 'csv'}"
        )
        anon.tags.append("template recognised by headers")
    # a file in a folder named by the department's alias instead of its code
    scj = next((d for d in directory.departments if d.aliases and "violation_cases" in d.sources), None)
    if scj is not None:
        stray = w.plan(scj, "violation_cases", quarter, folder=scj.aliases[0])
        stray.tags.append("unknown department folder")
        plans.append(stray)


def _copy(p: Plan, *, name: str, tag: str) -> Plan:
    """The same file again (rows copied), its name with a suffix such as （更正） or ` - 副本`."""
    stem, ext = os.path.splitext(p.file_name)
    return Plan(
        **{**p.__dict__, "rows": [dict(r) for r in p.rows], "name": f"{stem}{name}{ext}", "tags": [tag]}
    )


def _progress(rng: random.Random, w: Writer, p: Plan, day: int) -> None:
    """What a department changes when it sends a file again later: a case closed, a problem
    rectified, a complaint answered, or a few more records."""
    end = period_bounds(p.period)[1]
    rows = p.rows
    code = p.template.code
    if code == "violation_cases":
        open_rows = [r for r in rows if r["处置状态"] == "处置中"]
        if open_rows:
            open_rows[0].update({"处置状态": "已处置", "处置完成日期": end})
            return
    elif code == "rectification_ledger":
        open_rows = [r for r in rows if r["整改状态"] in ("未启动", "整改中")]
        if open_rows:
            open_rows[0]["整改状态"] = "已整改"
            return
    elif code == "barrier_complaints":
        open_rows = [r for r in rows if not r["办结日期"]]
        if open_rows:
            open_rows[0].update({"办结日期": end, "反馈日期": end})
            return
    d = w.directory.get(p.folder)
    extra = {
        "violation_cases": w.violation_rows,
        "barrier_complaints": w.complaint_rows,
        "rectification_ledger": w.ledger_rows,
        "satisfaction_survey": w.survey_rows,
    }[code](d, p.period, 1)
    key = p.template.key[0]
    for r in extra:
        r[key] = f"{r[key]}-{day}"
    rows.extend(extra)


def day_plans(seed: int, quarter: str, day: int, directory: Directory) -> list[Plan]:
    """What arrives on `day`: day 0 is the quarter's bulk; a later day brings a late sender or two,
    a corrected file, and sometimes an identical resend."""
    base = base_plans(seed, quarter, directory)
    if day <= 0:
        return base
    rng = random.Random(f"{seed}|submissions|{quarter}|day{day}")
    w = Writer(rng, directory)
    periods = quarter_periods(quarter)
    sent = {(p.folder, p.template.code) for p in base}
    missing = [
        (d, code)
        for d in directory.departments
        for code in TEMPLATE_ORDER
        if code in d.sources and (d.code, code) not in sent
    ]
    plans: list[Plan] = []
    for d, code in rng.sample(missing, min(len(missing), rng.choice((1, 2)))):
        p = w.plan(d, code, periods[code][0])
        p.name = _copy(p, name="（补报）", tag="").name
        p.tags.append(f"late, day {day}")
        plans.append(p)
    correctable = [p for p in base if p.rows and not p.tags and p.folder in directory]
    if correctable:
        target = rng.choice(correctable)
        fixed = _copy(target, name=f"（第{day}次更正）", tag=f"correction of {target.file_name}, day {day}")
        _progress(rng, w, fixed, day)
        plans.append(fixed)
        if rng.random() < 0.3:
            again = rng.choice(correctable)
            plans.append(_copy(again, name="", tag=f"resend of {again.file_name}, day {day}"))
    return plans


def generate(
    inbox: Path,
    *,
    seed: int,
    quarter: str = "2026Q2",
    day: int = 0,
    directory: Directory | None = None,
) -> Generated:
    """Write the files of `day` into `<inbox>/<folder>/`, oldest first by modification time."""
    if directory is None:
        from market_access import directory as directory_mod
        from market_access.settings import settings

        directory = directory_mod.load(settings().departments_csv)
    period_bounds(quarter)
    plans = day_plans(seed, quarter, day, directory)
    inbox = Path(inbox)
    written: list[Path] = []
    tags: dict[str, list[str]] = {}
    # modification times in the past (older than any settle time), in plan order, so an original
    # is always processed before its resend or correction
    t0 = time.time() - 600
    for i, p in enumerate(plans):
        path = inbox / p.folder / p.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            stem, ext = os.path.splitext(p.file_name)
            path = path.with_name(f"{stem}({i}){ext}")
        path.write_bytes(render(p))
        os.utime(path, (t0 + i, t0 + i))
        written.append(path)
        if p.tags:
            tags[str(path)] = list(p.tags)
    return Generated(written, tags)
