"""The department directory: what it refuses (with a message naming the line) and how it resolves names."""

from __future__ import annotations

from pathlib import Path

import pytest

from market_access import directory
from market_access.directory import DirectoryError

REPO = Path(__file__).resolve().parents[2]
HEADER = "dept_code,dept_name,aliases,alert_emails,role,sources,freshness_days\n"
SCJ = "113604210795604218,区市场监督管理局,区市场监管局;区市监局,scjgj@demo-county.gov.cn,industry,market_supervision;violation_cases,2\n"
FGJ = "11360421082036794P,区发展和改革局,区发改局;发改局,fgj@demo-county.gov.cn;zhang.san@demo-county.gov.cn,ndrc,,\n"
SJJ = "11360421015556079X,区数据管理局,区数据局,sjglj@demo-county.gov.cn,bureau,gov_service,1\n"


def parse(*lines: str) -> directory.Directory:
    return directory.parse(HEADER + "".join(lines), source="departments.csv")


def refusal(*lines: str) -> str:
    with pytest.raises(DirectoryError) as exc:
        parse(*lines)
    return str(exc.value)


def test_the_shipped_directory_loads():
    d = directory.load(REPO / "config" / "departments.csv")
    assert len(d) == 30
    assert d.bureau.name == "区数据管理局" and d.ndrc.name == "区发展和改革局"
    assert all(d.freshness_days == 2 for d in d.departments)
    assert {x.name for x in d.answering_for("satisfaction_survey")} == {"区发展和改革局", "区政务服务管理局"}
    assert len(d.answering_for("rectification_ledger")) == 30


def test_columns_are_typed():
    d = parse(SCJ, FGJ, SJJ)
    scj = d.get("113604210795604218")
    assert scj.aliases == ("区市场监管局", "区市监局")
    assert scj.sources == ("market_supervision", "violation_cases")
    assert scj.line == 2
    fgj = d.get("11360421082036794P")
    assert fgj.alert_emails == ("fgj@demo-county.gov.cn", "zhang.san@demo-county.gov.cn")
    assert fgj.sources == () and fgj.freshness_days == 2  # empty → default
    assert d.get("11360421015556079X").freshness_days == 1


@pytest.mark.parametrize(
    "value",
    [
        "113604210795604218",
        "１１３６０４２１０７９５６０４２１８",  # full-width digits
        " 113604210795604218\u3000",
        "区市场监督管理局",
        "区市场监督管理局　",  # trailing full-width space
        "区市场 监督管理局",
        "区市场监管局",  # alias
        "区市监局",
    ],
)
def test_resolve_by_code_name_or_alias(value):
    assert parse(SCJ, FGJ, SJJ).resolve(value) == "113604210795604218"


def test_resolve_is_case_insensitive_for_codes_and_says_none_otherwise():
    d = parse(SCJ, FGJ, SJJ)
    assert d.resolve("11360421082036794p") == "11360421082036794P"
    assert d.resolve("市场监管") is None
    assert d.resolve("区城建局") is None
    assert d.resolve("") is None and d.resolve(None) is None


def test_duplicate_code_is_refused_naming_both_lines():
    other = "113604210795604218,区市场监管二局,,x@demo-county.gov.cn,industry,,\n"
    msg = refusal(SCJ, FGJ, SJJ, other)
    assert "line 5" in msg and "113604210795604218" in msg and "重复" in msg and "第 2 行" in msg


def test_malformed_email_is_refused():
    bad = SCJ.replace("scjgj@demo-county.gov.cn", "scjgj@demo-county.gov.cn;scjgj.demo-county.gov.cn")
    msg = refusal(bad, FGJ, SJJ)
    assert "line 2" in msg and "scjgj.demo-county.gov.cn" in msg and "malformed e-mail" in msg


def test_alias_claimed_by_two_departments_is_refused():
    other = "11360421062877297B,区农业农村局,区农业局;区市监局,nyncj@demo-county.gov.cn,industry,,\n"
    msg = refusal(SCJ, FGJ, SJJ, other)
    assert "line 5" in msg and "区市监局" in msg and "第 2 行" in msg and "113604210795604218" in msg


def test_alias_equal_to_another_departments_name_is_refused():
    other = "11360421062877297B,区农业农村局,区市场监督管理局,nyncj@demo-county.gov.cn,industry,,\n"
    assert "区市场监督管理局" in refusal(SCJ, FGJ, SJJ, other)


@pytest.mark.parametrize(
    "line, words",
    [
        ("113604210795604219,区某局,,a@b.cn,industry,,\n", "not a valid 18-character USCC"),
        (",区某局,,a@b.cn,industry,,\n", "empty dept_code"),
        ("11360421062877297B,区某局,,a@b.cn,boss,,\n", "unknown role"),
        ("11360421062877297B,区某局,,a@b.cn,industry,sales_system,\n", "unknown source"),
        ("11360421062877297B,区某局,,a@b.cn,industry,,0\n", "freshness_days"),
        ("11360421062877297B,区某局,,a@b.cn,industry,,two\n", "freshness_days"),
    ],
)
def test_bad_values_are_refused_with_the_line(line, words):
    msg = refusal(SCJ, FGJ, SJJ, line)
    assert "line 5" in msg and words in msg


def test_exactly_one_bureau_and_one_ndrc():
    assert "ndrc" in refusal(SCJ, SJJ)
    second = "11360421062877297B,区农业农村局,,nyncj@demo-county.gov.cn,bureau,,\n"
    assert "bureau" in refusal(SCJ, FGJ, SJJ, second)


def test_missing_column_is_refused():
    with pytest.raises(DirectoryError, match="alert_emails"):
        directory.parse("dept_code,dept_name,aliases,role\n", source="x.csv")


def test_every_problem_is_listed_at_once():
    msg = refusal(SCJ, FGJ, SJJ, SCJ.replace("scjgj@", "scjgj@@"))
    assert "3 处错误" in msg  # line 5 repeats line 2's code and name, and has a bad address
    assert msg.count("line 5") == 3


def test_not_utf8_is_refused(tmp_path):
    path = tmp_path / "departments.csv"
    path.write_bytes((HEADER + SCJ + FGJ + SJJ).encode("gb18030"))
    with pytest.raises(DirectoryError, match="UTF-8"):
        directory.load(path)
    with pytest.raises(DirectoryError, match="not found"):
        directory.load(tmp_path / "missing.csv")


def test_bom_blank_lines_and_fullwidth_separators_are_fine(tmp_path):
    path = tmp_path / "departments.csv"
    text = HEADER + SCJ.replace("区市场监管局;区市监局", "区市场监管局；区市监局 ") + "\n" + FGJ + SJJ
    path.write_text(text, encoding="utf-8-sig")
    d = directory.load(path)
    assert d.get("113604210795604218").aliases == ("区市场监管局", "区市监局")


def test_settings_point_at_the_directory_and_the_inbox(monkeypatch, tmp_path):
    from market_access.settings import settings

    monkeypatch.delenv("MARKET_ACCESS_HOME", raising=False)
    monkeypatch.delenv("DEPARTMENTS_CSV", raising=False)
    monkeypatch.delenv("SUBMISSIONS_INBOX", raising=False)
    monkeypatch.setenv("MARKET_ACCESS_LOCAL_DIR", str(tmp_path))
    assert settings().departments_csv == REPO / "config" / "departments.csv"
    assert settings().submissions_inbox == tmp_path / "inbox"
    monkeypatch.setenv("DEPARTMENTS_CSV", str(tmp_path / "d.csv"))
    monkeypatch.setenv("SUBMISSIONS_INBOX", str(tmp_path / "in"))
    assert settings().departments_csv == tmp_path / "d.csv"
    assert settings().submissions_inbox == tmp_path / "in"
