"""Department submissions end to end: real files (openpyxl, UTF-8, GB18030) in a tmp inbox → the
embedded PostgreSQL. Every expected count below is worked out by hand from the rows written here."""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

import psycopg
import pytest
from openpyxl import Workbook

from market_access import directory
from market_access.submissions import inbox as inbox_mod
from market_access.submissions.inbox import process_inbox

REPO = Path(__file__).resolve().parents[2]
SCJ = "113604210795604218"  # 区市场监督管理局 (aliases 区市场监管局, 区市监局)
FGJ = "11360421082036794P"  # 区发展和改革局
ZWFW = "11360421092489316P"  # 区政务服务管理局
ZJJ = "11360421025965618K"  # 区住房和城乡建设局

VIOLATION_HEADERS = [
    "案例编号", "报送单位", "案例类型", "发现日期", "涉及事项", "负面清单事项编码", "处置状态", "处置完成日期", "案情摘要",
]  # fmt: skip
COMPLAINT_HEADERS = [
    "投诉编号", "受理日期", "投诉渠道", "投诉人姓名", "联系电话", "涉及单位", "内容摘要", "转办日期", "办结日期", "反馈日期",
]  # fmt: skip
LEDGER_HEADERS = [
    "问题编号", "问题描述", "问题来源", "责任单位", "牵头领导", "明显成效时限", "整改到位时限", "整改状态", "销号日期",
]  # fmt: skip
SURVEY_HEADERS = ["问卷编号", "填报日期", "统一社会信用代码", "评价对象单位", "评价维度", "得分"]

VIOLATIONS = [
    ["WG2026001", "区市场监管局", "清单外增设准入条件", "2026年4月3日", "食品经营许可", "200012", "已处置", "2026/4/20", "要求提供验资报告"],
    ["WG2026002", "区市场监督管理局", "设置隐性壁垒", "2026/5/8", "企业设立登记", "200031", "处置中", "", "指定中介机构"],
    ["WG2026003", SCJ, "其他", "20260611", "药品零售企业许可", "", "已处置", "2026-06-20", "网上申报通道无法使用"],
]  # fmt: skip
COMPLAINTS = [
    ["TS202604001", "2026-04-02", "12345", "张伟", "+86 138-0013-8000", "区住建局", "反映要求提供清单外材料", "2026-04-03", "2026-04-10", "2026-04-11"],
    ["TS202604002", "2026年5月6日", "门户网站", "", "", "区住房和城乡建设局", "反映指定中介机构", "2026-05-06", "", ""],
]  # fmt: skip
LEDGER = [
    ["ZG2026H1-001", "办事指南要素不完整", "效能评估", "区政务服务中心", "李建国", "2026-04-30", "2026-07-31", "整改中", ""],
    ["ZG2026H1-002", "差评整改超时", "自查", "区政务服务管理局", "王芳", "2026/3/31", "2026/6/30", "已销号", "2026/5/15"],
]  # fmt: skip
USCC_A, USCC_B = "91110000600037341L", "91310115MA1K3BTP2B"
DIMENSIONS = ["审批效率", "服务态度", "公开透明", "公平竞争", "总体"]
SURVEY = [
    ["Q001", "2026-05-10", USCC_A, "区市场监管局", d, s]
    for d, s in zip(DIMENSIONS, [5, 4, 5, 3, 4], strict=True)
] + [
    ["Q002", "2026/5/11", USCC_B.lower(), "区发改局", d, s]
    for d, s in zip(DIMENSIONS, [3, 3, 4, 4, 3], strict=True)
]


# --- building real files ----------------------------------------------------------------------------


def xlsx(
    headers: list[str], rows: list[list], *, title: str | None = None, blank_after: int | None = None
) -> bytes:
    """A workbook as departments make them: a merged title row, optionally a blank line among the rows."""
    wb = Workbook()
    ws = wb.active
    if title:
        ws.append([title])
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headers))
    ws.append(headers)
    for i, row in enumerate(rows):
        ws.append([v if v != "" else None for v in row])
        if blank_after == i:
            ws.append([])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(headers: list[str], rows: list[list], encoding: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([headers, *rows])
    return out.getvalue().encode(encoding)


_clock = [time.time() - 3600]


def drop(inbox: Path, folder: str, name: str, data: bytes) -> Path:
    """Put a file in the inbox; each one a second "older" than the next, so scans see them in order."""
    path = inbox / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    _clock[0] += 1
    os.utime(path, (_clock[0], _clock[0]))
    return path


@pytest.fixture(scope="module")
def depts() -> directory.Directory:
    return directory.load(REPO / "config" / "departments.csv")


@pytest.fixture
def inbox(tmp_path) -> Path:
    return tmp_path / "inbox"


def run(conn, inbox: Path, depts) -> dict:
    return process_inbox(conn, inbox, depts, settle_seconds=0)


def count(conn, relation: str, where: str = "true", params=()) -> int:
    return conn.execute(f"select count(*) from {relation} where {where}", params).fetchone()[0]


def files(conn) -> list[tuple]:
    return conn.execute(
        "select file_name, dept_code, template, period, status, rows_total, rows_accepted, rows_quarantined "
        "from ops.submission_files order by submission_id"
    ).fetchall()


# --- Done means ---------------------------------------------------------------------------------------


def test_each_template_lands(wconn, inbox, depts):
    drop(
        inbox,
        SCJ,
        "违规案例_2026Q2.xlsx",
        xlsx(VIOLATION_HEADERS, VIOLATIONS, title="示范区违规案例报送表", blank_after=0),
    )
    drop(inbox, FGJ, "隐性壁垒投诉_2026Q2.csv", csv_bytes(COMPLAINT_HEADERS, COMPLAINTS, "gb18030"))
    drop(inbox, ZWFW, "整改台账_2026H1.csv", csv_bytes(LEDGER_HEADERS, LEDGER, "utf-8-sig"))
    drop(inbox, FGJ, "满意度调查_2026Q2.csv", csv_bytes(SURVEY_HEADERS, SURVEY, "utf-8"))

    summary = run(wconn, inbox, depts)

    assert (summary["accepted"], summary["rejected"], summary["duplicate"]) == (4, 0, 0)
    assert summary["rows_accepted"] == 3 + 2 + 2 + 10 and summary["rows_quarantined"] == 0
    assert files(wconn) == [
        ("违规案例_2026Q2.xlsx", SCJ, "violation_cases", "2026Q2", "accepted", 3, 3, 0),
        ("隐性壁垒投诉_2026Q2.csv", FGJ, "barrier_complaints", "2026Q2", "accepted", 2, 2, 0),
        ("整改台账_2026H1.csv", ZWFW, "rectification_ledger", "2026H1", "accepted", 2, 2, 0),
        ("满意度调查_2026Q2.csv", FGJ, "satisfaction_survey", "2026Q2", "accepted", 10, 10, 0),
    ]
    for table, n in [("violation_cases", 3), ("barrier_complaints", 2), ("rectification_ledger", 2), ("satisfaction_survey", 10)]:  # fmt: skip
        assert count(wconn, f"raw.submissions__{table}") == n
        assert count(wconn, f"raw.submissions__{table}_current") == n

    # values typed and normalised: every date form, departments by alias / name / code, phones, USCC case
    v = dict(wconn.execute("select record_id, payload from raw.submissions__violation_cases").fetchall())
    assert v["WG2026001"]["found_on"] == "2026-04-03" and v["WG2026001"]["closed_on"] == "2026-04-20"
    assert v["WG2026002"]["found_on"] == "2026-05-08" and v["WG2026002"]["closed_on"] is None
    assert v["WG2026003"]["found_on"] == "2026-06-11" and v["WG2026003"]["negative_list_code"] is None
    assert {p["reporting_dept_code"] for p in v.values()} == {SCJ}
    rows = wconn.execute(
        "select record_id, row_number, dept_code, period from raw.submissions__violation_cases order by row_number"
    ).fetchall()
    # title row 1, header row 2, data rows 3, (blank 4), 5, 6
    assert rows == [
        ("WG2026001", 3, SCJ, "2026Q2"),
        ("WG2026002", 5, SCJ, "2026Q2"),
        ("WG2026003", 6, SCJ, "2026Q2"),
    ]
    c = dict(wconn.execute("select record_id, payload from raw.submissions__barrier_complaints").fetchall())
    assert c["TS202604001"]["complainant_phone"] == "13800138000"
    assert c["TS202604001"]["involved_dept_code"] == ZJJ and c["TS202604002"]["accepted_on"] == "2026-05-06"
    s = dict(wconn.execute("select record_id, payload from raw.submissions__satisfaction_survey").fetchall())
    assert s["Q002|总体"] == {
        "questionnaire_no": "Q002",
        "answered_on": "2026-05-11",
        "entity_uscc": USCC_B,
        "rated_dept_code": FGJ,
        "dimension": "总体",
        "score": 3,
    }

    # archived with a receipt; the department folders are empty again
    assert not [p for p in inbox.rglob("*") if p.is_file() and "_archive" not in p.parts]
    archived = inbox / "_archive" / SCJ / "accepted" / "违规案例_2026Q2.xlsx"
    assert archived.exists()
    text = archived.with_name(archived.name + ".receipt.txt").read_text(encoding="utf-8")
    assert "区市场监督管理局" in text and "已接收" in text and "已入库 3 行" in text
    assert count(wconn, "ops.submission_receipts") == 4
    assert count(wconn, "ops.submission_files", "archived_at is null") == 0


def test_bad_row_is_quarantined_and_the_rest_lands(wconn, inbox, depts):
    rows = [list(r) for r in VIOLATIONS] + [
        [
            "WG2026004",
            "区市场监管局",
            "其他",
            "2026-06-01",
            "食品经营许可",
            "200012",
            "已处理",
            "",
            "状态填错",
        ]
    ]
    drop(inbox, SCJ, "违规案例_2026Q2.xlsx", xlsx(VIOLATION_HEADERS, rows, title="示范区违规案例报送表"))
    complaints = [list(COMPLAINTS[0]), list(COMPLAINTS[1])]
    complaints[1][4] = "1380013800"  # ten digits: a bad phone, which is personal information
    complaints[1][3] = "赵小明"
    drop(inbox, FGJ, "隐性壁垒投诉_2026Q2.csv", csv_bytes(COMPLAINT_HEADERS, complaints, "gb18030"))

    summary = run(wconn, inbox, depts)

    assert summary["accepted"] == 2 and summary["rows_accepted"] == 3 + 1 and summary["rows_quarantined"] == 2
    assert [f[4:] for f in files(wconn)] == [("accepted", 4, 3, 1), ("accepted", 2, 1, 1)]
    assert count(wconn, "raw.submissions__violation_cases") == 3
    assert count(wconn, "raw.submissions__barrier_complaints") == 1
    q = wconn.execute(
        "select f.file_name, q.row_number, q.column_name, q.value, q.reason "
        "from ops.submission_quarantine q join ops.submission_files f using (submission_id) order by submission_id"
    ).fetchall()
    # title row 1, header row 2, data rows 3–6: the fourth data row is sheet row 6
    assert q[0][:4] == ("违规案例_2026Q2.xlsx", 6, "处置状态", "已处理")
    assert "不是允许的取值" in q[0][4] and "处置中 / 已处置" in q[0][4]
    # header line 1, data lines 2–3: the phone of line 3 is personal information, so no value is kept
    assert q[1][:4] == ("隐性壁垒投诉_2026Q2.csv", 3, "联系电话", None)
    assert "联系电话格式不正确" in q[1][4]

    receipt = (inbox / "_archive" / FGJ / "accepted" / "隐性壁垒投诉_2026Q2.csv.receipt.txt").read_text(
        "utf-8"
    )
    assert "第 3 行 · 联系电话" in receipt and "未入库 1 行" in receipt
    assert "1380013800" not in receipt and "赵小明" not in receipt and "张伟" not in receipt
    stored = wconn.execute("select body_text || body_html || subject from ops.submission_receipts").fetchall()
    assert not any("1380013800" in t or "赵小明" in t for (t,) in stored)


def test_missing_required_header_rejects_the_whole_file(wconn, inbox, depts):
    headers = [h for h in LEDGER_HEADERS if h != "整改状态"]
    rows = [[v for h, v in zip(LEDGER_HEADERS, r, strict=True) if h != "整改状态"] for r in LEDGER]
    drop(inbox, ZWFW, "整改台账_2026H1.csv", csv_bytes(headers, rows, "utf-8-sig"))

    summary = run(wconn, inbox, depts)

    assert (summary["accepted"], summary["rejected"]) == (0, 1)
    assert count(wconn, "raw.submissions__rectification_ledger") == 0
    assert count(wconn, "ops.submission_quarantine") == 0
    status, reason = wconn.execute("select status, reason from ops.submission_files").fetchone()
    assert status == "rejected" and "缺少必填表头" in reason and "整改状态" in reason
    archived = inbox / "_archive" / ZWFW / "rejected" / "整改台账_2026H1.csv"
    assert archived.exists()
    receipt = archived.with_name(archived.name + ".receipt.txt").read_text("utf-8")
    assert "已拒收" in receipt and "缺少必填表头：整改状态" in receipt


def test_the_same_file_twice_lands_once(wconn, inbox, depts):
    import hashlib

    data = csv_bytes(SURVEY_HEADERS, SURVEY, "utf-8-sig")
    drop(inbox, FGJ, "满意度调查_2026Q2.csv", data)
    drop(inbox, FGJ, "满意度调查_2026Q2 - 副本.csv", data)  # sent twice in one go
    first = run(wconn, inbox, depts)
    drop(inbox, FGJ, "满意度调查_2026Q2.csv", data)  # and again, a day later
    second = run(wconn, inbox, depts)
    drop(inbox, FGJ, "满意度调查_2026Q2.csv", data)  # and again
    third = run(wconn, inbox, depts)

    assert (first["accepted"], first["duplicate"]) == (1, 1)
    assert (second["accepted"], second["duplicate"], third["accepted"], third["duplicate"]) == (0, 1, 0, 1)
    assert count(wconn, "raw.submissions__satisfaction_survey") == 10
    assert [f[4] for f in files(wconn)] == ["accepted", "duplicate", "duplicate", "duplicate"]
    dup_of = wconn.execute(
        "select distinct duplicate_of from ops.submission_files where status = 'duplicate'"
    )
    assert dup_of.fetchall() == [(1,)]
    # a name already in the archive gets the short hash appended
    short = hashlib.sha256(data).hexdigest()[:8]
    archived = sorted(p.name for p in (inbox / "_archive" / FGJ / "duplicate").iterdir())
    assert archived == sorted(
        [
            "满意度调查_2026Q2 - 副本.csv",
            "满意度调查_2026Q2 - 副本.csv.receipt.txt",
            "满意度调查_2026Q2.csv",
            "满意度调查_2026Q2.csv.receipt.txt",
            f"满意度调查_2026Q2.{short}.csv",
            f"满意度调查_2026Q2.{short}.csv.receipt.txt",
        ]
    )
    receipt = (inbox / "_archive" / FGJ / "duplicate" / "满意度调查_2026Q2.csv.receipt.txt").read_text(
        "utf-8"
    )
    assert "内容完全相同，未重复入库" in receipt


def test_a_corrected_file_supersedes_the_earlier_one(wconn, inbox, depts):
    first = [list(r) for r in VIOLATIONS]
    drop(inbox, SCJ, "违规案例_2026Q2.csv", csv_bytes(VIOLATION_HEADERS, first, "gb18030"))
    run(wconn, inbox, depts)
    corrected = [list(r) for r in VIOLATIONS]
    corrected[1][6:8] = ["已处置", "2026-06-30"]  # case 2 closed meanwhile
    corrected.append(
        ["WG2026004", "区市监局", "设置隐性壁垒", "2026-06-15", "企业变更登记", "200040", "处置中", "", ""]
    )
    drop(inbox, SCJ, "违规案例_2026Q2（更正）.xlsx", xlsx(VIOLATION_HEADERS, corrected))
    # another period of the same template does not supersede anything
    drop(inbox, SCJ, "违规案例_2026Q1.csv", csv_bytes(VIOLATION_HEADERS, first[:1], "utf-8"))
    run(wconn, inbox, depts)

    rows = wconn.execute(
        "select submission_id, status, superseded_by, period from ops.submission_files order by 1"
    )
    assert rows.fetchall() == [
        (1, "superseded", 2, "2026Q2"),
        (2, "accepted", None, "2026Q2"),
        (3, "accepted", None, "2026Q1"),
    ]
    assert count(wconn, "raw.submissions__violation_cases") == 3 + 4 + 1  # history stays
    current = wconn.execute(
        "select record_id, payload->>'status' from raw.submissions__violation_cases_current "
        "where period = '2026Q2' order by 1"
    ).fetchall()
    assert current == [
        ("WG2026001", "已处置"),
        ("WG2026002", "已处置"),
        ("WG2026003", "已处置"),
        ("WG2026004", "处置中"),
    ]
    assert count(wconn, "raw.submissions__violation_cases_current") == 4 + 1
    receipt = (inbox / "_archive" / SCJ / "accepted" / "违规案例_2026Q2（更正）.xlsx.receipt.txt").read_text(
        "utf-8"
    )
    assert "本文件替代了" in receipt and "“违规案例_2026Q2.csv”" in receipt


def test_an_unknown_department_folder_is_rejected_not_guessed(wconn, inbox, depts):
    data = csv_bytes(VIOLATION_HEADERS, VIOLATIONS, "utf-8")
    drop(inbox, "区市场监管局", "违规案例_2026Q2.csv", data)  # an alias is not a folder name
    drop(inbox, "11360421099999999X", "违规案例_2026Q2.csv", data)  # nor is a code not in the directory
    drop(inbox, "", "违规案例_2026Q2.csv", data)  # straight into the inbox

    summary = run(wconn, inbox, depts)

    assert (summary["accepted"], summary["rejected"]) == (0, 3)
    assert count(wconn, "raw.submissions__violation_cases") == 0
    reasons = [r for (r,) in wconn.execute("select reason from ops.submission_files order by submission_id")]
    assert (
        sum("未知的部门目录" in r for r in reasons) == 2 and sum("未放在部门目录" in r for r in reasons) == 1
    )
    assert (inbox / "_archive" / "_unknown" / "区市场监管局" / "rejected" / "违规案例_2026Q2.csv").exists()
    assert (
        inbox / "_archive" / "_unknown" / "11360421099999999X" / "rejected" / "违规案例_2026Q2.csv"
    ).exists()
    assert (inbox / "_archive" / "_unknown" / "_root" / "rejected" / "违规案例_2026Q2.csv").exists()


# --- beyond the list ------------------------------------------------------------------------------


def test_crash_between_commit_and_archive_is_finished_without_loading_again(wconn, inbox, depts, monkeypatch):
    path = drop(inbox, SCJ, "违规案例_2026Q2.xlsx", xlsx(VIOLATION_HEADERS, VIOLATIONS))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(inbox_mod.shutil, "move", crash)
    first = run(wconn, inbox, depts)  # the scan goes on; the failure is in the summary and the record
    assert [n["error"] for n in first["not_archived"]] == ["OSError: disk full"]
    assert path.exists()  # committed, not archived
    assert count(wconn, "raw.submissions__violation_cases") == 3
    assert count(wconn, "ops.submission_files", "archived_at is null") == 1
    monkeypatch.undo()

    summary = run(wconn, inbox, depts)

    assert summary["recovered"] == 1 and summary["accepted"] == 1 and summary["rows_accepted"] == 0
    assert count(wconn, "raw.submissions__violation_cases") == 3
    assert count(wconn, "ops.submission_files") == 1
    assert count(wconn, "ops.submission_files", "archived_at is null") == 0
    assert not path.exists() and (inbox / "_archive" / SCJ / "accepted" / "违规案例_2026Q2.xlsx").exists()


def test_unusable_files_are_rejected_with_a_reason(wconn, inbox, depts):
    drop(inbox, SCJ, "违规案例_2026Q2.csv", "案例编号,报送单位\nWG1,区市场监管局\n".encode("utf-16"))
    drop(inbox, SCJ, "工作总结_2026Q2.csv", "序号,工作内容,完成情况\n1,宣传,已完成\n".encode())
    drop(inbox, SCJ, "违规案例_2026Q2.xls", b"\xd0\xcf\x11\xe0 legacy excel")
    drop(inbox, SCJ, "违规案例.csv", csv_bytes(VIOLATION_HEADERS, VIOLATIONS, "utf-8"))

    summary = run(wconn, inbox, depts)

    assert summary["rejected"] == 4
    reasons = [r for (r,) in wconn.execute("select reason from ops.submission_files order by submission_id")]
    assert "编码无法识别" in reasons[0]
    assert "无法识别报送模板" in reasons[1]
    assert ".xls" in reasons[2] and ".xlsx" in reasons[2]
    assert "报送期间" in reasons[3]
    assert count(wconn, "raw.submissions__violation_cases") == 0


def test_a_file_named_without_its_template_is_recognised_by_its_headers(wconn, inbox, depts):
    drop(inbox, FGJ, "二季度报送_2026Q2.csv", csv_bytes(SURVEY_HEADERS, SURVEY, "gb18030"))
    run(wconn, inbox, depts)
    assert files(wconn) == [
        ("二季度报送_2026Q2.csv", FGJ, "satisfaction_survey", "2026Q2", "accepted", 10, 10, 0)
    ]


def test_files_still_being_copied_wait_for_the_next_scan(wconn, inbox, depts):
    path = inbox / FGJ / "满意度调查_2026Q2.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(csv_bytes(SURVEY_HEADERS, SURVEY, "utf-8"))
    summary = process_inbox(wconn, inbox, depts, settle_seconds=60)
    assert summary["files"] == 0 and summary["waiting"] == 1 and path.exists()


@pytest.mark.parametrize(
    "relation",
    [
        "raw.submissions__violation_cases",
        "raw.submissions__barrier_complaints_current",
        "raw.directory__departments",
        "ops.submission_files",
        "ops.submission_quarantine",
        "ops.submission_receipts",
    ],
)
def test_analyst_cannot_read_submissions(wconn, inbox, depts, relation):
    directory.load_into_warehouse(wconn, depts)
    drop(inbox, FGJ, "隐性壁垒投诉_2026Q2.csv", csv_bytes(COMPLAINT_HEADERS, COMPLAINTS, "utf-8"))
    run(wconn, inbox, depts)
    wconn.execute("set role analyst")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        wconn.execute(f"select * from {relation}")
    wconn.execute("reset role")
    wconn.execute("set role transformer")  # the transformer reads what dbt will build on
    assert count(wconn, relation) >= 0
    wconn.execute("reset role")


def test_tables_belong_to_the_loader(wconn, inbox, depts):
    run(wconn, inbox, depts)
    owners = wconn.execute(
        "select c.relname, pg_get_userbyid(c.relowner) from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname in ('raw', 'ops') and c.relname like 'submission%%' and c.relkind in ('r', 'v')"
    ).fetchall()
    assert len(owners) == 3 + 4 * 2 and {o for _, o in owners} == {"loader"}


def test_the_directory_is_replaced_on_every_load(wconn, depts):
    assert directory.load_into_warehouse(wconn, depts) == 30
    smaller = directory.Directory(tuple(d for d in depts.departments if d.code != ZJJ), "test")
    assert directory.load_into_warehouse(wconn, smaller) == 29
    assert count(wconn, "raw.directory__departments") == 29
    resolved = wconn.execute(
        "select dept_code from raw.directory__department_names where name = '区市场监管局'"
    ).fetchone()
    assert resolved == (SCJ,)
    assert count(wconn, "raw.directory__department_names", "dept_code = %s", (ZJJ,)) == 0
