"""The submission parser on real bytes: .xlsx built with openpyxl, UTF-8 (BOM or not) and GB18030 CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from market_access import directory
from market_access.submissions import parser
from market_access.submissions.parser import Rejected, parse, parse_date, parse_name
from market_access.submissions.receipt import Receipt, render
from market_access.submissions.templates import header_key, templates

REPO = Path(__file__).resolve().parents[2]
SCJ = "113604210795604218"
FGJ = "11360421082036794P"
DEPTS = directory.load(REPO / "config" / "departments.csv")

V_HEADERS = [
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
V_ROW = ["WG1", "区市场监管局", "其他", "2026-03-05", "食品经营许可", "200012", "处置中", "", "摘要"]
S_HEADERS = ["问卷编号", "填报日期", "统一社会信用代码", "评价对象单位", "评价维度", "得分"]
C_HEADERS = ["投诉编号", "受理日期", "投诉渠道", "投诉人姓名", "联系电话", "涉及单位", "内容摘要", "转办日期", "办结日期", "反馈日期"]  # fmt: skip


def csv_bytes(rows: list[list], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx(rows: list[list], merge_title: int | None = None) -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    if merge_title:
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=merge_title)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def p(data: bytes, name: str = "违规案例_2026Q1.csv"):
    return parse(data, name, DEPTS.resolve)


def reasons(parsed) -> dict[tuple[int, str], str]:
    return {(q.row_number, q.column): q.reason for q in parsed.problems}


# --- the template definition --------------------------------------------------------------------------


def test_the_four_templates_follow_the_contract():
    t = templates()
    assert list(t) == ["violation_cases", "barrier_complaints", "rectification_ledger", "satisfaction_survey"]
    assert [c.header for c in t["violation_cases"].columns] == V_HEADERS
    assert [c.header for c in t["satisfaction_survey"].columns] == S_HEADERS
    assert t["satisfaction_survey"].key == ("问卷编号", "评价维度")
    assert {c.header for tt in t.values() for c in tt.columns if c.pi} == {
        "投诉人姓名",
        "联系电话",
        "牵头领导",
    }
    assert t["barrier_complaints"].column("投诉渠道").values == ("12345", "门户网站", "现场", "其他")


@pytest.mark.parametrize(
    "raw", ["案例编号", " 案例编号　", "案例\u3000编号", "*案例编号", "案例编号\n", "ａ"]
)
def test_header_normalisation(raw):
    assert header_key(raw) == ("案例编号" if raw != "ａ" else "a")


# --- names --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, code, period",
    [
        ("违规案例_2026-06.xlsx", "violation_cases", "2026-06"),
        ("整改台账_2026H1.csv", "rectification_ledger", "2026H1"),
        ("满意度调查_2026Q2.csv", "satisfaction_survey", "2026Q2"),
        ("隐性壁垒投诉_2026.CSV", "barrier_complaints", "2026"),
        ("整改台账_2026h2（更正）.xlsx", "rectification_ledger", "2026H2"),
        ("违规案例_２０２６Ｑ３ - 副本.xlsx", "violation_cases", "2026Q3"),
        ("2026年违规案例_2026Q2.xlsx", "violation_cases", "2026Q2"),
        ("violation_cases_2026Q4.csv", "violation_cases", "2026Q4"),
        ("二季度报送_2026Q2.xlsx", None, "2026Q2"),
        ("违规案例.xlsx", "violation_cases", None),
        ("违规案例_2026Q5.xlsx", "violation_cases", None),
        ("违规案例_2026-13.xlsx", "violation_cases", None),
        ("违规案例_2026Q1_2026Q2.xlsx", "violation_cases", None),
    ],
)
def test_file_names(name, code, period):
    fn = parse_name(name)
    assert (fn.template.code if fn.template else None, fn.period) == (code, period)


# --- reading ------------------------------------------------------------------------------------------


def test_xlsx_with_a_merged_title_row_and_a_blank_line():
    rows = [
        ["示范区区市场监督管理局2026年第一季度违规案例报送表"],
        [],
        V_HEADERS,
        V_ROW,
        [],
        ["WG2", *V_ROW[1:]],
    ]
    parsed = p(xlsx(rows, merge_title=9), "违规案例_2026Q1.xlsx")
    assert parsed.template.code == "violation_cases" and parsed.header_row == 3
    assert [(r.row_number, r.record_id) for r in parsed.rows] == [(4, "WG1"), (6, "WG2")]
    assert parsed.rows_total == 2 and parsed.problems == []
    assert parsed.rows[0].payload["reporting_dept_code"] == SCJ


def test_xlsx_native_dates_numbers_and_a_two_row_header():
    rows = [
        ["问卷编号", "填报日期", "统一社会信用代码", "评价对象单位", "评价情况", None],
        [None, None, None, None, "评价维度", "得分"],  # a merged group header above its sub-headers
        ["Q1", datetime(2026, 3, 5), "91110000600037341L", "区发改局", "总体", 5.0],
        ["Q2", date(2026, 3, 6), "91110000600037341L", "区发改局", "总体", 4],
    ]
    parsed = p(xlsx(rows), "满意度调查_2026Q1.xlsx")
    assert parsed.header_row == 2
    assert [r.payload["answered_on"] for r in parsed.rows] == ["2026-03-05", "2026-03-06"]
    assert [r.payload["score"] for r in parsed.rows] == [5, 4]
    assert parsed.rows[0].record_id == "Q1|总体" and parsed.rows[0].payload["rated_dept_code"] == FGJ


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_encodings(encoding):
    data = csv_bytes([V_HEADERS, V_ROW], encoding)
    if encoding == "utf-8-sig":
        assert data.startswith(b"\xef\xbb\xbf")
    parsed = p(data)
    assert parsed.encoding == ("gb18030" if encoding == "gb18030" else "utf-8")
    assert (
        parsed.rows[0].payload["item_name"] == "食品经营许可" and parsed.rows[0].payload["summary"] == "摘要"
    )


def test_header_with_a_fullwidth_space_and_values_with_fullwidth_characters():
    headers = [h if h != "处置状态" else "处置\u3000状态" for h in V_HEADERS]
    headers[0] = " 案例编号　"
    row = [
        "ＷＧ１",
        "\u3000区市场监管局 ",
        "其他",
        "２０２６－０３－０５",
        "食品经营许可",
        "２０００１２",
        " 处置中",
        "",
        "摘要，含中文标点：（无）",
    ]
    parsed = p(csv_bytes([headers, row], "gb18030"))
    payload = parsed.rows[0].payload
    assert parsed.rows[0].record_id == "WG1"
    assert payload["found_on"] == "2026-03-05" and payload["negative_list_code"] == "200012"
    assert payload["status"] == "处置中" and payload["reporting_dept_code"] == SCJ
    assert payload["summary"] == "摘要，含中文标点：（无）"  # Chinese punctuation is left alone


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("2026-03-05", "2026-03-05"),
        ("2026/3/5", "2026-03-05"),
        ("2026/03/05", "2026-03-05"),
        ("20260305", "2026-03-05"),
        ("2026年3月5日", "2026-03-05"),
        ("2026 年 3 月 5 日", "2026-03-05"),
        ("2026.3.5", "2026-03-05"),
        ("２０２６年３月５日", "2026-03-05"),
        ("2026-03-05 14:30:00", "2026-03-05"),
    ],
)
def test_date_forms(typed, expected):
    assert parse_date(typed) == (expected, None)
    row = [*V_ROW[:3], typed, *V_ROW[4:]]
    assert p(csv_bytes([V_HEADERS, row])).rows[0].payload["found_on"] == expected


@pytest.mark.parametrize(
    "typed, words",
    [
        ("3月5日", "日期格式无法识别"),
        ("2026-02-30", "日期不存在"),
        ("26/3/5", "日期格式无法识别"),
        ("1899-01-01", "年份"),
    ],
)
def test_bad_dates(typed, words):
    value, reason = parse_date(typed)
    assert value is None and words in reason


def test_row_errors_carry_column_value_and_a_chinese_reason():
    rows = [
        S_HEADERS,
        ["Q1", "2026-03-05", "91110000600037341L", "区发改局", "总体", "6"],  # line 2: out of range
        ["Q2", "2026-03-05", "91110000600037341L", "区发改局", "总体", "满意"],  # line 3: not a number
        ["Q3", "2026-03-05", "91110000600037341L", "区发改局", "服务好", "5"],  # line 4: not an allowed value
        [
            "Q4",
            "2026-03-05",
            "91110000600037341X",
            "区城建局",
            "总体",
            "5",
        ],  # line 5: check digit, unknown dept
        [
            "Q5",
            "2026-03-05",
            "00000000000000000X",
            "区发改局",
            "总体",
            "4.0",
        ],  # line 6: fine (placeholder, 4.0)
        ["Q5", "2026-03-06", "91110000600037341L", "区发改局", "总体", "3"],  # line 7: same key as line 6
        ["Q6", "", "91110000600037341L", "区发改局", "总体", "3"],  # line 8: empty required cell
    ]
    parsed = p(csv_bytes(rows), "满意度调查_2026Q1.csv")
    assert [r.record_id for r in parsed.rows] == ["Q5|总体"]
    assert parsed.rows_total == 7 and parsed.rows_quarantined == 6
    got = reasons(parsed)
    assert got[(2, "得分")] == "应在 1–5 之间"
    assert got[(3, "得分")] == "应为整数"
    assert got[(4, "评价维度")].startswith("不是允许的取值，应为：审批效率 / 服务态度")
    assert got[(5, "统一社会信用代码")] == "统一社会信用代码校验位错误"
    assert got[(5, "评价对象单位")].startswith("无法识别的单位")
    assert got[(7, "问卷编号")] == "记录编号重复：与第 6 行相同"
    assert got[(8, "填报日期")] == "必填项为空"
    values = {(q.row_number, q.column): q.value for q in parsed.problems}
    assert values[(3, "得分")] == "满意" and values[(5, "评价对象单位")] == "区城建局"


def test_conditional_and_ordering_rules():
    rows = [
        V_HEADERS,
        ["WG1", "区市场监管局", "其他", "2026-03-05", "事项", "", "已处置", "", ""],  # closed without a date
        [
            "WG2",
            "区市场监管局",
            "其他",
            "2026-03-05",
            "事项",
            "",
            "已处置",
            "2026-03-01",
            "",
        ],  # closed before found
    ]
    got = reasons(p(csv_bytes(rows)))
    assert got == {
        (2, "处置完成日期"): "处置状态为“已处置”时必须填写",
        (3, "处置完成日期"): "不能早于发现日期（2026-03-05）",
    }


def test_personal_information_is_never_kept_in_a_problem():
    rows = [
        C_HEADERS,
        ["TS1", "2026-03-05", "12345", "张伟", "1380013800", "区住建局", "反映问题", "", "", ""],
    ]
    parsed = p(csv_bytes(rows), "隐性壁垒投诉_2026Q1.csv")
    (problem,) = parsed.problems
    assert (problem.column, problem.value) == ("联系电话", None)


@pytest.mark.parametrize(
    "phone, expected",
    [
        ("+86 138-0013-8000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("0792-8123456", "0792-8123456"),
    ],
)
def test_phones(phone, expected):
    rows = [C_HEADERS, ["TS1", "2026-03-05", "12345", "张伟", phone, "区住建局", "反映问题", "", "", ""]]
    assert p(csv_bytes(rows), "隐性壁垒投诉_2026Q1.csv").rows[0].payload["complainant_phone"] == expected


# --- whole-file rejections ----------------------------------------------------------------------------


def test_missing_required_header_rejects_the_file():
    headers = [h for h in V_HEADERS if h != "处置状态"]
    with pytest.raises(Rejected) as exc:
        p(csv_bytes([headers, V_ROW[:6] + V_ROW[7:]]))
    assert exc.value.reason.startswith("缺少必填表头：处置状态")
    assert exc.value.template.code == "violation_cases"


def test_a_misspelt_header_is_a_missing_header():
    headers = [h if h != "发现日期" else "发现时间" for h in V_HEADERS]
    with pytest.raises(Rejected, match="缺少必填表头：发现日期"):
        p(csv_bytes([headers, V_ROW]))


def test_unknown_template_is_recognised_by_its_headers():
    parsed = p(csv_bytes([["二季度满意度"], S_HEADERS, ["Q1", "2026-03-05", "91110000600037341L", "区发改局", "总体", "5"]]), "报表_2026Q1.csv")  # fmt: skip
    assert parsed.template.code == "satisfaction_survey" and parsed.header_row == 2


def test_a_file_that_is_no_template_is_rejected():
    with pytest.raises(Rejected, match="无法识别报送模板"):
        p(csv_bytes([["序号", "工作内容", "完成情况"], ["1", "宣传", "已完成"]]), "工作总结_2026Q1.csv")


def test_name_and_headers_that_disagree_are_rejected_with_a_hint():
    with pytest.raises(Rejected) as exc:
        p(csv_bytes([S_HEADERS]), "违规案例_2026Q1.csv")
    assert "找不到“违规案例”模板的表头" in exc.value.reason and "满意度调查" in exc.value.reason


@pytest.mark.parametrize(
    "data, words",
    [
        ("案例编号,报送单位\n".encode("utf-16"), "编码无法识别"),
        (b"\x81\x20\xff\xfe\x80", "编码无法识别"),
        (b"\x00\x01\x02binary", "编码无法识别"),
    ],
)
def test_unreadable_bytes_are_rejected(data, words):
    with pytest.raises(Rejected, match=words):
        p(data)


def test_a_broken_workbook_and_other_formats_are_rejected():
    with pytest.raises(Rejected, match="无法打开 Excel 文件"):
        p(b"PK\x03\x04 not really a zip", "违规案例_2026Q1.xlsx")
    with pytest.raises(Rejected, match=r"\.xls 格式"):
        p(b"\xd0\xcf\x11\xe0", "违规案例_2026Q1.xls")
    with pytest.raises(Rejected, match="只接收 .xlsx 和 .csv"):
        p(b"hello", "违规案例_2026Q1.pdf")


def test_an_empty_template_is_a_file_with_no_rows():
    parsed = p(csv_bytes([V_HEADERS]))
    assert parsed.rows_total == 0 and parsed.rows == [] and parsed.problems == []


def test_tab_separated_text_is_read():
    parsed = p("\n".join("\t".join(r) for r in [V_HEADERS, V_ROW]).encode())
    assert parsed.rows[0].record_id == "WG1"


# --- receipts -----------------------------------------------------------------------------------------


def test_receipt_renders_in_chinese_without_personal_information():
    rows = [
        C_HEADERS,
        ["TS1", "2026-03-05", "电话", "张伟", "1380013800", "区住建局", "反映问题", "", "", ""],
    ]
    parsed = p(csv_bytes(rows), "隐性壁垒投诉_2026Q1.csv")
    r = Receipt(
        submission_id=7,
        file_name="隐性壁垒投诉_2026Q1.csv",
        dept_code=FGJ,
        dept_name="区发展和改革局",
        status="accepted",
        received_at=datetime(2026, 7, 1, 9, 30),
        file_hash="ab" * 32,
        template_code="barrier_complaints",
        period="2026Q1",
        rows_total=1,
        rows_quarantined=1,
        # a value slipped in for a PI column is still not shown
        problems=[
            parser.Problem(q.row_number, q.column, "张伟" if q.column == "联系电话" else q.value, q.reason)
            for q in parsed.problems
        ],  # fmt: skip
    )
    subject, text, html = render(r)
    assert subject == "【报送回执】区发展和改革局 · 隐性壁垒投诉 2026Q1：已接收 0 行，1 行待更正"
    assert "第 2 行 · 投诉渠道 · “电话” · 不是允许的取值" in text
    assert "第 2 行 · 联系电话 · 联系电话格式不正确" in text
    assert "张伟" not in text + html and "1380013800" not in text + html
    assert "<td>投诉渠道</td>" in html and "2026-07-01 09:30" in text


def test_receipt_of_a_rejected_file():
    r = Receipt(
        1,
        "a<b>.csv",
        "区市场监管局",
        None,
        "rejected",
        datetime(2026, 7, 1),
        "0" * 64,
        reason="未知的部门目录",
    )
    subject, text, html = render(r)
    assert "已拒收" in subject and "拒收原因：未知的部门目录" in text and "整份文件未入库" in text
    assert "a&lt;b&gt;.csv" in html  # escaped


# --- the simulators' generator ------------------------------------------------------------------------


def test_generated_demo_files_cover_every_case(tmp_path):
    from market_access.simulators.submissions import generate

    out = generate(tmp_path / "a", seed=7, quarter="2026Q2", day=0, directory=DEPTS)
    again = generate(tmp_path / "b", seed=7, quarter="2026Q2", day=0, directory=DEPTS)
    assert 40 <= len(out) <= 80
    # deterministic to the byte, .xlsx included
    assert [p.read_bytes() for p in out.files] == [p.read_bytes() for p in again.files]
    exts = {p.suffix for p in out.files}
    assert exts == {".xlsx", ".csv"}
    tags = " | ".join(t for ts in out.tags.values() for t in ts)
    for case in (
        "bad row",
        "missing header",
        "sent twice",
        "resend of",
        "corrected",
        "unknown department folder",
    ):
        assert case in tags
    outcomes = {"ok": 0, "quarantined": 0, "rejected": 0}
    encodings = set()
    for path in out.files:
        if path.parent.name not in DEPTS:
            continue
        data = path.read_bytes()
        if path.suffix == ".csv":
            encodings.add("bom" if data.startswith(b"\xef\xbb\xbf") else parser.decode_csv(data)[1])
        try:
            parsed = parse(data, path.name, DEPTS.resolve)
        except Rejected as exc:
            assert "缺少必填表头：整改状态" in exc.reason
            outcomes["rejected"] += 1
            continue
        outcomes["quarantined" if parsed.problems else "ok"] += 1
    assert outcomes["rejected"] == 1 and outcomes["quarantined"] >= 3
    assert encodings == {"bom", "utf-8", "gb18030"}


def test_a_later_day_brings_a_few_new_files(tmp_path):
    from market_access.simulators.submissions import generate

    day1 = generate(tmp_path, seed=7, quarter="2026Q2", day=1, directory=DEPTS)
    assert 2 <= len(day1) <= 5
    assert any("correction of" in t for ts in day1.tags.values() for t in ts)
