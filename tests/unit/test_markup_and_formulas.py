"""Values from data reach HTML as text and workbooks as strings (issue 12, situation 2): the alert
mails, the bureau's summary, the receipts (HTML) and every workbook the platform writes. Checked
on the parsed DOM and on the workbook's own cells (tests/hostile.py), not by substring."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import hostile as h  # tests/: pytest puts it on sys.path
import pytest
from openpyxl import Workbook, load_workbook

from market_access.alerts import compose
from market_access.alerts.compose import DeptRow, Item, QualityRun, RuleResult
from market_access.settings import BEIJING
from market_access.submissions import parser
from market_access.submissions.receipt import Receipt, render
from market_access.xlsx_text import append_row

REPO = Path(__file__).resolve().parents[2]
RUN = QualityRun(
    "qr-1", datetime(2026, 11, 21, 3, tzinfo=BEIJING), None, date(2026, 11, 21), "succeeded", None
)


def result(value: str) -> RuleResult:
    return RuleResult(
        rule_id="SB-VC-001", dept_code="113604210795604218", asset="violation_cases", source="submissions",
        level="row", category="有效性", severity="blocking", success=False, evaluated_count=10, failed_count=1,
        failed_share=Decimal("0.1"), sample_record_ids=(value,), observed=value, description_zh=value, fix_zh=value,
    )  # fmt: skip


@pytest.mark.parametrize("value", h.MARKUP_VALUES)
def test_department_and_bureau_mails_show_values_as_text(value):
    # a department name or alias as the operator typed it, a record id, an observed value from data
    mail = compose.department_mail(
        run=RUN, day=date(2026, 11, 21), dept_code="113604210795604218", dept_name=value,
        to=["a@example.gov.cn"], items=[Item(result(value), date(2026, 11, 21), 0, False, None)], evaluated=1,
        ndrc_name=value, ndrc_addrs=[], escalate_after=3, sender=value,
    )  # fmt: skip
    h.assert_text_not_markup(mail.html, value)
    bureau = compose.bureau_mail(
        run=RUN, day=date(2026, 11, 21), bureau_name=value, to=["b@example.gov.cn"],
        rows=[DeptRow("113604210795604218", value, 1, 1, 1, result(value), "sent")], ndrc_name=value, sender=value,
    )  # fmt: skip
    h.assert_text_not_markup(bureau.html, value)


@pytest.mark.parametrize("value", h.MARKUP_VALUES)
def test_receipts_show_file_names_headers_and_quarantined_values_as_text(value):
    # a quarantined 案例类型 (shown: not personal information), an extra header, the file name
    r = Receipt(
        submission_id=3, file_name=f"违规案例_2026Q2{value}.csv", dept_code="113604210795604218",
        dept_name=value, status="accepted", received_at=datetime(2026, 7, 1, 9, 30), file_hash="ab" * 32,
        template_code="violation_cases", period="2026Q2", rows_total=1, rows_quarantined=1,
        problems=[parser.Problem(2, "案例类型", value, "不是允许的取值")], ignored_headers=[value],
    )  # fmt: skip
    _, text, html = render(r)
    h.assert_text_not_markup(html, value)
    assert value in text  # the plain-text part is text anyway


def test_a_hostile_value_in_a_submitted_file_is_kept_as_text_through_the_parser():
    rows = [
        ["案例编号", "报送单位", "案例类型", "发现日期", "涉及事项", "负面清单事项编码", "处置状态", "处置完成日期", "案情摘要"],
        ["WG1", "区市场监管局", h.MARKUP, "2026-05-01", h.MARKUP, "", "处置中", "", h.FORMULA_VALUES[0]],
    ]  # fmt: skip
    parsed = parser.parse(h.workbook(rows), "违规案例_2026Q2.xlsx", lambda v: "113604210795604218")
    (problem,) = parsed.problems  # the 案例类型 is not an allowed value: quarantined, its value kept verbatim
    assert problem.value == h.MARKUP
    _, _, html = render(
        Receipt(1, "违规案例_2026Q2.xlsx", "113604210795604218", "区市场监督管理局", "accepted",
                datetime(2026, 7, 1), "0" * 64, "violation_cases", "2026Q2", 1, 0, 1, problems=parsed.problems)
    )  # fmt: skip
    h.assert_text_not_markup(html, h.MARKUP)


def test_workbooks_we_write_hold_strings_never_formulas_and_numbers_stay_numbers():
    wb = Workbook()
    ws = wb.active
    append_row(ws, ["名称", *h.FORMULA_VALUES, 42, 3.5, -7])
    buf = io.BytesIO()
    wb.save(buf)
    h.assert_no_formulas(buf.getvalue())
    (row,) = load_workbook(io.BytesIO(buf.getvalue())).active.iter_rows(values_only=True)
    # as given (XML reads a bare CR back as LF: line-end normalisation, not a formula), numbers as numbers
    assert list(row) == ["名称", *(v.replace("\r", "\n") for v in h.FORMULA_VALUES), 42, 3.5, -7]
    assert [type(v) for v in row[-3:]] == [int, float, int]


def test_the_demo_generator_writes_no_formula(tmp_path):
    """The simulators' department files: every workbook, with a hostile 案情摘要 planted in one plan."""
    from market_access import directory
    from market_access.simulators import submissions as gen

    depts = directory.load(REPO / "config" / "departments.csv")
    gen.generate(tmp_path, seed=1, directory=depts)
    books = sorted(tmp_path.rglob("*.xlsx"))
    assert books, "the generator wrote no workbook"
    for book in books:
        h.assert_no_formulas(book)
    # and a plan whose free text starts with "=" (as a department's text may)
    t = gen.template("violation_cases")
    row = {c.header: "" for c in t.columns} | {
        "案例编号": "WG9",
        "案情摘要": h.FORMULA_VALUES[0],
        "负面清单事项编码": 200012,
    }
    data = gen.render(gen.Plan("x", t, "2026Q2", [row], "xlsx", "iso"))
    h.assert_no_formulas(data)
    values = [v for r in load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True) for v in r]
    assert h.FORMULA_VALUES[0] in values and 200012 in values
