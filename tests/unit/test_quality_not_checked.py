"""What a quality run could not check, and why (issue #9): decided without a database."""

from __future__ import annotations

from pathlib import Path

from market_access.quality import catalogue as catalogue_mod
from market_access.quality.batches import AssetBatch, DirectoryDept
from market_access.quality.catalogue import FEEDS_ASSET
from market_access.quality.service import not_checked_relations

REPO = Path(__file__).resolve().parents[2]
CASES = "staging.stg_gov_service__cases"
COMPLAINTS = "staging.stg_submissions__barrier_complaints"
REPAIRS = "staging.stg_credit__credit_repairs"
ENTITIES = "staging.stg_market_supervision__entities"


def test_missing_and_empty_answered_relations_are_listed_nothing_else():
    cat = catalogue_mod.load(REPO / "config" / "quality_rules.yml")
    directory = [
        DirectoryDept("A", "甲局", "industry", ("gov_service", "barrier_complaints"), 2),
        DirectoryDept("B", "乙局", "industry", ("credit",), 2),
        DirectoryDept("C", "丙局", "bureau", (), 2),
    ]

    def batch(rel, rows=None, missing=False, unresolved=0):
        return AssetBatch(
            asset=cat.assets[rel],
            relation=rel,
            table="t",
            rules=[],
            rows=rows or {},
            missing=missing,
            unresolved=unresolved,
        )

    built = {
        CASES: batch(CASES, rows={"A": 3}),  # has records: checked
        COMPLAINTS: batch(COMPLAINTS),  # empty, A answers for it → not checked
        REPAIRS: batch(REPAIRS, missing=True),  # not built → not checked
        ENTITIES: batch(ENTITIES),  # empty, but nobody answers for market_supervision → fine
        FEEDS_ASSET: AssetBatch(asset=None, relation=FEEDS_ASSET, table="f", rules=[]),
    }
    got = {n["relation"]: n["reason"] for n in not_checked_relations(cat, built, directory)}
    assert got == {COMPLAINTS: "empty", REPAIRS: "missing"}
    # records only of departments outside the directory: the relation is not empty
    built[COMPLAINTS] = batch(COMPLAINTS, unresolved=2)
    got = {n["relation"]: n["reason"] for n in not_checked_relations(cat, built, directory)}
    assert got == {REPAIRS: "missing"}
    # a run for B only: A's empty complaints are not B's concern
    built[COMPLAINTS] = batch(COMPLAINTS)
    got = {n["relation"] for n in not_checked_relations(cat, built, directory, ["B"])}
    assert got == {REPAIRS}
