"""The quality rules' SQL stays linear in the data: no per-record subquery in a batch's select list.

A rule's derived columns (and an asset's key, department, dates and metrics) become the select list
of the asset's batch table (quality.batches.batch_select). There PostgreSQL cannot turn a sublink
into a join: `x in (select k from S)` is a SubPlan, hashed only while S's keys fit in work_mem
(x hash_mem_multiplier), else a rescan of S per record — quadratic. With the stock work_mem of 4 MB
(the Docker stack's postgres:17) that happened for `has_case` (GS-EVAL-004) at about 100,000
case ids, i.e. below scale 1: EXPLAIN showed `SubPlan` over `Materialize` instead of `hashed
SubPlan`. A correlated `(select …)` or `exists (select …)` mentioning the record is the same per-row
rescan. References are checked through the asset's `joins` (a left join: a hash join that spills to
disk instead); an uncorrelated `exists (select …)` (an InitPlan, evaluated once) is fine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from market_access.quality import catalogue

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "config" / "quality_rules.yml"

SUBLINK = re.compile(r"\b(?:in|any|all|some)\s*\(\s*(?:array\s*\(\s*)?select\b", re.I)
RECORD = re.compile(r"\bt\.")


def subqueries(expr: str) -> list[str]:
    """The text inside every parenthesis that starts with `select` (nested ones too)."""
    found = []
    for match in re.finditer(r"\(\s*select\b", expr, re.I):
        depth, i = 0, match.start()
        while i < len(expr):
            if expr[i] == "(":
                depth += 1
            elif expr[i] == ")":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        found.append(expr[match.start() + 1 : i])
    return found


def select_list_expressions(cat: catalogue.Catalogue) -> list[tuple[str, str]]:
    out = []
    for rel, asset in cat.assets.items():
        parts = {
            "key": asset.key,
            "newest": asset.newest,
            **{f"metric {k}": v for k, v in asset.metrics.items()},
        }
        parts["department code"], parts["department ref"] = asset.department.code, asset.department.ref
        if asset.volume is not None:
            parts["volume date"] = asset.volume.date
        out += [(f"{rel} {name}", expr) for name, expr in parts.items() if expr]
    for rule in cat.rules:
        out += [(f"{rule.id} column {name}", expr) for name, expr in rule.columns.items()]
        out += [
            (f"{rule.id} counted separately {label}", expr) for label, expr in rule.counted_separately.items()
        ]
    return out


def test_the_scanner_sees_what_it_must_refuse():
    # the forms this file forbids, and the one it allows, spelt as the catalogue spelt them before
    assert SUBLINK.search("t.case_id in (select c.case_id from staging.stg_gov_service__cases as c)")
    assert SUBLINK.search("when t.uscc not in (\n select e.uscc from e)")
    assert SUBLINK.search("t.x = any(array(select k from s))")
    (inner,) = subqueries("case when exists (select from s where s.k = t.k) then 1 end")
    assert RECORD.search(inner)
    (inner,) = subqueries("case when exists (select from s as s where s.k is null) then null end")
    assert not RECORD.search(inner)
    assert len(subqueries("(select (select 1) from s)")) == 2


@pytest.mark.parametrize("where, expr", select_list_expressions(catalogue.load(RULES)))
def test_no_rule_rescans_a_table_per_record(where, expr):
    assert not SUBLINK.search(expr), (
        f"{where}: `in (select …)` — check the reference through the asset's joins"
    )
    for sub in subqueries(expr):
        assert not RECORD.search(sub), f"{where}: a subquery correlated with the record: {sub[:80]}…"
