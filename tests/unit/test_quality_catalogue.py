"""The data-quality rule catalogue: the shipped one loads and covers every source; a broken one is
refused with every problem listed; suites are generated per department from it."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from market_access.quality import catalogue, sqltemplate, suites
from market_access.quality.batches import DirectoryDept
from market_access.quality.catalogue import FEEDS_ASSET, CatalogueError

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "config" / "quality_rules.yml"


@pytest.fixture(scope="module")
def cat() -> catalogue.Catalogue:
    return catalogue.load(RULES)


def test_the_shipped_catalogue_loads(cat):
    assert len(cat.rules) >= 100
    assert len({r.id for r in cat.rules}) == len(cat.rules)
    assert {r.severity for r in cat.rules} == {"blocking", "warning"}
    assert {r.level for r in cat.rules} == {"row", "dataset"}
    for r in cat.rules:
        assert r.description_zh and r.fix_zh and (r.deadline_zh or r.basis_zh), r.id
        # a time limit is a time limit: no standard (GB …) shows as the deadline
        assert not r.deadline_zh or "GB " not in r.deadline_zh, r.id
        assert r.asset == FEEDS_ASSET or r.asset in cat.assets, r.id


def test_every_source_and_template_is_covered(cat):
    covered: dict[str, set[str]] = {}
    for r in cat.rules:
        covered.setdefault(r.answered_by, set()).add(r.category)
    row = {"completeness", "validity", "consistency", "uniqueness"}
    systems = row | {"volume", "freshness"}
    expected = {
        "gov_service": systems | {"timeliness"},
        "market_supervision": systems,
        "credit": systems | {"timeliness"},
        "random_inspection": systems | {"timeliness"},
        "violation_cases": row,
        "barrier_complaints": row | {"timeliness"},
        "rectification_ledger": row | {"timeliness"},
        "satisfaction_survey": row,
    }
    assert covered.keys() == expected.keys()
    for source, categories in expected.items():
        assert categories <= covered[source], (source, categories - covered[source])
    # every asset has its required fields checked
    for relation in cat.assets:
        assert any(r.category == "completeness" for r in cat.rules_on(relation)), relation


def test_each_time_rule_of_the_domain_is_a_rule(cat):
    """domain.md §2, one rule per deadline (and the feeds' freshness per system)."""
    time_rules = {
        "CR-LIC-008": ("staging.stg_credit__admin_licenses", "lag_workdays('t.decided_on'", 7),
        "CR-PEN-009": ("staging.stg_credit__admin_penalties", "lag_workdays('t.decided_on'", 7),
        "CR-PEN-010": ("staging.stg_credit__admin_penalties", "lag_workdays('t.decided_on'", 20),
        "RI-RES-005": ("staging.stg_random_inspection__results", "lag_workdays('t.inspected_on'", 20),
        "GS-EVAL-006": (
            "staging.stg_gov_service__evaluations",
            "lag_workdays(beijing_date('t.rated_at')",
            15,
        ),
        "SB-BC-004": ("staging.stg_submissions__barrier_complaints", "lag_days('t.accepted_on'", 10),
    }
    for rule_id, (asset, call, limit) in time_rules.items():
        r = cat.by_id[rule_id]
        assert (r.asset, r.category, r.level) == (asset, "timeliness", "row"), rule_id
        assert r.kwargs["max_value"] == limit, rule_id
        (sql_text,) = r.columns.values()
        assert call in sql_text and f", {limit})" in sql_text, rule_id
    assert cat.by_id["CR-PEN-010"].departments == {"sources": "market_supervision"}
    # rectification: 70% within 3 months, 100% within 6 months
    assert cat.by_id["SB-RL-004"].mostly == 0.7 and cat.by_id["SB-RL-005"].mostly == 1.0
    freshness = {r.answered_by: r.id for r in cat.rules if r.category == "freshness"}
    # every system's feed, and every template's file of the year (issue #9: missing feeds are findings)
    assert freshness == {
        "gov_service": "GS-FEED-001",
        "market_supervision": "MS-FEED-001",
        "credit": "CR-FEED-001",
        "random_inspection": "RI-FEED-001",
        "violation_cases": "SB-FEED-001",
        "barrier_complaints": "SB-FEED-002",
        "rectification_ledger": "SB-FEED-003",
        "satisfaction_survey": "SB-FEED-004",
    }
    assert cat.by_id["SB-FEED-002"].kwargs == {"column": "barrier_complaints__has_file", "value_set": [True]}


def test_no_rule_shows_personal_information(cat):
    """GX puts sample values of the checked column into results and Data Docs: never a PI column."""
    for r in cat.rules:
        for column in r.referenced_columns:
            assert not column.endswith(("_pseudonym", "_masked")), (r.id, column)


def test_the_placeholder_is_counted_separately_not_failed(cat):
    for rule_id in ("GS-CASE-003", "CR-LIC-002", "CR-PEN-002", "MS-ENT-002", "SB-SS-002"):
        r = cat.by_id[rule_id]
        (label,) = r.counted_separately
        assert "00000000000000000X" in label
        (derived,) = r.columns.values()
        assert "placeholder" in derived and "then null" in derived, rule_id


BROKEN = textwrap.dedent(
    """
    assets:
      staging.stg_gov_service__cases:
        title: 办件
        source: gov_service
        key: t.case_id
        department: {code: t.dept_code, ref: t.dept_ref_raw}
    rules:
      - id: GS-CASE-001
        asset: staging.stg_gov_service__cases
        expectation: expect_column_values_to_not_be_null
        kwargs: {column: case_id}
        severity: 阻断
        level: row
        category: completeness
        description_zh: 编号不为空
        deadline_zh: 规范
        fix_zh: 补录
      - id: GS-CASE-001
        asset: staging.stg_gov_service__cases
        expectation: expect_column_values_to_not_be_null
        kwargs: {column: channel}
        severity: 阻断
        level: row
        category: completeness
        description_zh: 渠道不为空
        deadline_zh: 规范
        fix_zh: 补录
      - id: GS-CASE-002
        asset: staging.stg_gov_service__cases
        expectation: expect_column_values_to_be_purple
        kwargs: {column: channel}
        severity: 警告
        level: row
        category: validity
        description_zh: 紫色
        deadline_zh: 规范
        fix_zh: 改
      - id: GS-CASE-003
        asset: staging.stg_gov_service__cases
        expectation: expect_column_values_to_not_be_null
        kwargs: {column: status}
        severity: 严重
        level: row
        category: completeness
        description_zh: 状态不为空
        deadline_zh: 规范
        fix_zh: 补录
      - id: GS-CASE-004
        asset: staging.stg_gov_service__cases
        expectation: expect_column_values_to_not_be_null
        kwargs: {column: status}
        severity: 警告
        level: row
        category: completeness
        description_zh: 状态不为空
        deadline_zh: 规范
      - id: GS-CASE-005
        asset: staging.stg_gov_service__items
        expectation: expect_column_values_to_not_be_null
        kwargs: {column: item_code}
        severity: 警告
        level: row
        category: completeness
        description_zh: 编码不为空
        deadline_zh: 规范
        fix_zh: 补录
      - id: GS-CASE-006
        asset: staging.stg_gov_service__cases
        expectation: expect_column_values_to_not_be_null
        kwargs: {column: status}
        severity: 警告
        level: record
        category: completeness
        description_zh: 状态不为空
        deadline_zh: 规范
        fix_zh: 补录
      - id: GS-CASE-007
        asset: staging.stg_gov_service__cases
        expectation: expect_column_values_to_be_in_set
        kwargs: {column: channel, value_set: [窗口]}
        mostly: 1.5
        severity: 警告
        level: row
        category: validity
        description_zh: 渠道
        deadline_zh: 规范
        fix_zh: 改
      - id: GS-CASE-008
        asset: staging.stg_gov_service__cases
        expectation: expect_column_values_to_be_null
        columns:
          missing_fields: "{{ missing({'渠道': 't.channel'} }}"
        kwargs: {column: missing_fields}
        severity: 警告
        level: row
        category: completeness
        description_zh: 必填
        deadline_zh: 规范
        fix_zh: 补录
    """
)


def test_a_broken_catalogue_is_refused_with_every_problem_listed(tmp_path):
    path = tmp_path / "quality_rules.yml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(CatalogueError) as err:
        catalogue.load(path)
    problems = err.value.problems
    expected = [
        ("GS-CASE-001", "重复"),  # duplicate id
        ("GS-CASE-002", "expect_column_values_to_be_purple"),  # unknown expectation type
        ("GS-CASE-003", "severity"),  # bad severity
        ("GS-CASE-004", "缺少字段 fix_zh"),  # missing field
        ("GS-CASE-005", "staging.stg_gov_service__items 未在 assets 中声明"),  # undeclared asset
        ("GS-CASE-006", "level 'record'"),  # bad level
        ("GS-CASE-007", "mostly 1.5"),  # tolerance out of range
        ("GS-CASE-008", "模板语法错误"),  # broken SQL template
    ]
    assert len(problems) == len(expected), problems
    for (rule_id, phrase), problem in zip(expected, problems, strict=True):
        assert rule_id in problem and phrase in problem, (rule_id, phrase, problem)
    assert str(path) in str(err.value) and "8 处错误" in str(err.value)


def test_row_rules_need_per_row_expectations(tmp_path):
    text = BROKEN.split("    rules:")[0] + textwrap.dedent(
        """
        rules:
          - id: GS-CASE-001
            asset: staging.stg_gov_service__cases
            expectation: expect_table_row_count_to_be_between
            kwargs: {min_value: 1}
            severity: 警告
            level: row
            category: volume
            description_zh: 有数据
            deadline_zh: 规范
            fix_zh: 推送
          - id: GS-CASE-002
            asset: staging.stg_gov_service__cases
            expectation: expect_compound_columns_to_be_unique
            kwargs: {column_list: [case_id, channel]}
            severity: 警告
            level: row
            category: uniqueness
            description_zh: 唯一
            deadline_zh: 规范
            fix_zh: 去重
        """
    )
    with pytest.raises(CatalogueError) as err:
        catalogue.parse(text)
    assert len(err.value.problems) == 2
    assert "逐行期望" in err.value.problems[0] and "不给出失败记录编号" in err.value.problems[1]


def test_sql_templates_count_working_days_on_the_calendar():
    text = sqltemplate.render(
        "{{ lag_workdays('t.decided_on', beijing_date('t.reported_at'), 7) }}", date(2026, 7, 1)
    )
    # judged as of the day before the data date; the working days come from the calendar table
    assert "date '2026-06-30'" in text and "2026-07-01" not in text
    assert text.count("intermediate.int_calendar__days") == 6
    assert ">= 7 then" in text and "at time zone 'Asia/Shanghai'" in text
    assert sqltemplate.render("{{ missing({'渠道': 't.channel'}) }}", date(2026, 7, 1)) == (
        "nullif(concat_ws('、', case when (t.channel) is null then '渠道' end), '')"
    )


# --- suites per department ----------------------------------------------------------------------

A = DirectoryDept(
    "113604210795604218", "区市场监督管理局", "industry", ("gov_service", "market_supervision", "credit"), 2
)
B = DirectoryDept("11360421092489316P", "区政务服务管理局", "industry", ("gov_service",), 2)
C = DirectoryDept("11360421082036794P", "区发展和改革局", "ndrc", ("gov_service", "credit"), 2)


def test_suites_per_department(cat):
    rows = {
        "staging.stg_gov_service__cases": {A.code: 10, B.code: 4},
        "staging.stg_credit__admin_licenses": {A.code: 3},
        "staging.stg_credit__admin_penalties": {A.code: 2, C.code: 0},
        "staging.stg_credit__credit_repairs": {C.code: 5},
        FEEDS_ASSET: {A.code: 1, B.code: 1, C.code: 1},
    }
    plan = suites.plan(cat, [A, B, C], rows)
    names = {code: [s.name for s in specs] for code, specs in plan.items()}
    assert names == {
        A.code: [
            f"{A.code}.department_feeds",
            f"{A.code}.stg_credit__admin_licenses",
            f"{A.code}.stg_credit__admin_penalties",
            f"{A.code}.stg_gov_service__cases",
        ],
        B.code: [f"{B.code}.department_feeds", f"{B.code}.stg_gov_service__cases"],
        # the 发改局 keeps the credit platform's repairs; it has no cases, so no case suite
        C.code: [f"{C.code}.department_feeds", f"{C.code}.stg_credit__credit_repairs"],
    }
    by_name = {s.name: s for specs in plan.values() for s in specs}
    licences = [r.id for r in by_name[f"{A.code}.stg_credit__admin_licenses"].rules]
    assert licences == [r.id for r in cat.rules_on("staging.stg_credit__admin_licenses")]
    # the market-supervision 20-day rule only where market_supervision is among the sources
    assert "CR-PEN-010" in [r.id for r in by_name[f"{A.code}.stg_credit__admin_penalties"].rules]
    # feeds rules follow the department's sources
    b_feeds = {r.id for r in by_name[f"{B.code}.department_feeds"].rules}
    assert {"GS-FEED-001", "GS-ITEM-005", "GS-CASE-013", "GS-EVAL-007", "GS-SYNC-001"} == b_feeds
    a_feeds = {r.id for r in by_name[f"{A.code}.department_feeds"].rules}
    assert {"MS-FEED-001", "CR-FEED-001", "MS-ENT-008"} <= a_feeds and "RI-FEED-001" not in a_feeds
    # one department only, when asked
    assert list(suites.plan(cat, [A, B, C], rows, departments=[B.code])) == [B.code]


def test_a_suite_is_a_gx_suite_with_one_expectation_per_rule(cat):
    plan = suites.plan(cat, [B], {"staging.stg_gov_service__cases": {B.code: 1}})
    (spec,) = plan[B.code]
    suite = suites.build_suite(spec)
    assert suite.name == f"{B.code}.stg_gov_service__cases"
    assert [e.meta["rule_id"] for e in suite.expectations] == [r.id for r in spec.rules]
    by_rule = {e.meta["rule_id"]: e for e in suite.expectations}
    phone = by_rule["GS-CASE-005"]
    assert phone.expectation_type == "expect_column_values_to_be_in_set"
    assert phone.mostly == 0.95 and phone.severity == "warning" and phone.column == "is_contact_phone_valid"
    assert by_rule["GS-CASE-003"].severity == "critical"
    assert by_rule["GS-CASE-003"].description.startswith("[GS-CASE-003] 申请人统一社会信用代码")
    assert by_rule["GS-CASE-012"].expectation_type == "expect_column_values_to_be_unique"


def test_a_rule_needs_a_time_limit_or_a_basis():
    rule = textwrap.dedent(
        """
        rules:
          - id: GS-CASE-001
            asset: staging.stg_gov_service__cases
            expectation: expect_column_values_to_not_be_null
            kwargs: {column: case_id}
            severity: 阻断
            level: row
            category: completeness
            description_zh: 编号不为空
            fix_zh: 补录
        """
    )
    head = BROKEN.split("    rules:")[0]
    with pytest.raises(CatalogueError) as err:
        catalogue.parse(head + rule)
    assert len(err.value.problems) == 1 and "deadline_zh (时限) 或 basis_zh (依据)" in err.value.problems[0]
    # either alone is enough, and each is kept as given
    only_basis = catalogue.parse(head + rule + "    basis_zh: 公民身份号码 GB 11643-1999\n").rules[0]
    assert (only_basis.deadline_zh, only_basis.basis_zh) == (None, "公民身份号码 GB 11643-1999")
    only_limit = catalogue.parse(head + rule + "    deadline_zh: 每日同步\n").rules[0]
    assert (only_limit.deadline_zh, only_limit.basis_zh) == ("每日同步", None)
