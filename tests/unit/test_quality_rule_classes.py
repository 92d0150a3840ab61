"""Every rule of the catalogue has an incremental class (quality/incremental.py), and the classes
follow from what the rule reads: the date, other records, or only the department's own records."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from market_access.quality import catalogue as catalogue_mod
from market_access.quality import incremental

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def catalogue():
    return catalogue_mod.load(REPO / "config" / "quality_rules.yml")


def test_every_rule_has_a_class(catalogue):
    classes = incremental.classes(catalogue)
    assert set(classes) == {r.id for r in catalogue.rules}
    unclassed = {rid: c for rid, c in classes.items() if c not in incremental.RULE_CLASSES}
    assert unclassed == {}
    for rule in catalogue.rules:
        kind, why = incremental.classify(rule, catalogue)
        assert why.strip(), rule.id  # the reason is stated
        assert kind in incremental.CLASS_ZH


def test_what_must_run_every_day_is_never_carried(catalogue):
    for rule in catalogue.rules:
        kind, _ = incremental.classify(rule, catalogue)
        text = " ".join([*rule.columns.values(), *rule.counted_separately.values()])
        if rule.asset == catalogue_mod.FEEDS_ASSET:  # freshness, volume, files: the date and all records
            assert kind == incremental.DATASET, rule.id
        elif any(h in text for h in ("as_of", "yesterday", "lag_workdays", "lag_days", "out_of_range")):
            assert kind == incremental.DATED, rule.id
        elif rule.level == "dataset" or (rule.mostly or 1) < 1 or " over (" in text.lower():
            assert kind == incremental.DATASET, rule.id
        elif catalogue.assets[rule.asset].joins:
            # a joined relation matters to the rules that read it, or when the department comes from it
            asset = catalogue.assets[rule.asset]
            aliases = re.findall(r"as (\w+) on", asset.joins)
            dept = f"{asset.department.code or ''} {asset.department.ref or ''}"
            if any(f"{a}." in text or f"{a}." in dept for a in aliases):
                assert kind == incremental.DATASET, rule.id


def test_a_join_does_not_make_every_rule_of_its_asset_dataset(catalogue):
    # config/quality_rules.yml: the licences asset joins the service items only for CR-LIC-006's
    # has_service_item; CR-LIC-002 (a check digit) reads the licence alone. Inspection results take
    # their department from the joined task (task.lead_dept_code): every rule there is dataset.
    assert catalogue.assets["staging.stg_credit__admin_licenses"].joins
    assert incremental.classify(catalogue.by_id["CR-LIC-002"], catalogue)[0] == incremental.RECORDS
    assert incremental.classify(catalogue.by_id["CR-LIC-006"], catalogue)[0] == incremental.DATASET
    assert incremental.classify(catalogue.by_id["RI-RES-001"], catalogue)[0] == incremental.DATASET


def test_known_rules_by_hand(catalogue):
    # read off config/quality_rules.yml: CR-LIC-002 checks a code's check digit (the record alone),
    # CR-LIC-008 counts working days to yesterday, GS-FEED-001 is a feed's freshness, GS-CASE-005
    # tolerates 5 % (mostly 0.95), CR-LIC-006 looks its service item up in another relation (a sub-query),
    # RI-RES-001's asset joins the inspection tasks
    expected = {
        "CR-LIC-002": incremental.RECORDS,
        "CR-LIC-008": incremental.DATED,
        "GS-FEED-001": incremental.DATASET,
        "GS-CASE-005": incremental.DATASET,
        "CR-LIC-006": incremental.DATASET,
        "RI-RES-001": incremental.DATASET,
    }
    got = {rid: incremental.classify(catalogue.by_id[rid], catalogue)[0] for rid in expected}
    assert got == expected


def test_a_new_rule_with_a_date_is_dated():
    text = (REPO / "config" / "quality_rules.yml").read_text(encoding="utf-8")
    cat = catalogue_mod.parse(
        text.replace(
            "\nrules:\n",
            """
rules:
  - id: QT-DATE-001
    asset: staging.stg_credit__admin_licenses
    expectation: expect_column_values_to_be_null
    columns: {qt_future: "case when t.decided_on > {{ as_of }} then 'x' end"}
    kwargs: {column: qt_future}
    severity: 警告
    level: row
    category: validity
    description_zh: 测试
    basis_zh: 测试
    fix_zh: 测试
  - id: QT-REC-001
    asset: staging.stg_credit__admin_licenses
    expectation: expect_column_values_to_not_be_null
    kwargs: {column: decided_on}
    severity: 警告
    level: row
    category: completeness
    description_zh: 测试
    basis_zh: 测试
    fix_zh: 测试
""",
            1,
        )
    )
    assert incremental.classify(cat.by_id["QT-DATE-001"], cat)[0] == incremental.DATED
    assert incremental.classify(cat.by_id["QT-REC-001"], cat)[0] == incremental.RECORDS
