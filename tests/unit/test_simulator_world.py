"""Unit tests of the simulated county: determinism, ordering, the day-by-day life, PI and dirt."""

from __future__ import annotations

import csv
import random
import re
from datetime import date, datetime
from pathlib import Path

import orjson
import pytest
from stdnum.cn import ric, uscc

from market_access.simulators.reference import departments
from market_access.simulators.world import World
from market_access.sources.catalog import systems

BASE_CLOCK = "2026-07-01 00:00:00"
TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
STRICT_USCC = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")
STRICT_RIC = re.compile(r"^\d{17}[\dX]$")
MOBILE = re.compile(r"^1[3-9]\d{9}$")
PHONE_IN_TEXT = re.compile(r"1[3-9]\d{9}")
RIC_IN_TEXT = re.compile(r"\d{17}[\dXx]")
FULLWIDTH_ALNUM = re.compile(r"[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
PLACEHOLDER = "00000000000000000X"

USCC_FIELDS = {
    ("market_supervision", "entities"): ["uscc"],
    ("market_supervision", "abnormal-operations"): ["uscc"],
    ("credit", "admin-licenses"): ["uscc"],
    ("credit", "admin-penalties"): ["uscc"],
    ("credit", "credit-repairs"): ["uscc"],
    ("credit", "risk-ratings"): ["uscc"],
    ("random_inspection", "object-pool"): ["uscc"],
    ("random_inspection", "results"): ["uscc"],
}
RIC_FIELDS = {
    ("market_supervision", "entities"): ["legal_rep_cert_no"],
    ("credit", "admin-licenses"): ["cert_no"],
    ("credit", "admin-penalties"): ["cert_no"],
    ("random_inspection", "inspectors"): ["cert_no"],
}
PHONE_FIELDS = {
    ("gov_service", "cases"): ["contact_phone"],
    ("market_supervision", "entities"): ["phone"],
    ("random_inspection", "inspectors"): ["phone"],
}
DEPT_FIELDS = {
    ("gov_service", "service-items"): ["dept_code"],
    ("gov_service", "cases"): ["dept_code"],
    ("gov_service", "evaluations"): ["dept_code"],
    ("market_supervision", "entities"): ["reg_authority_code"],
    ("market_supervision", "abnormal-operations"): ["authority_code"],
    ("credit", "admin-licenses"): ["dept_code"],
    ("credit", "admin-penalties"): ["dept_code"],
    ("random_inspection", "inspection-items"): ["dept_code"],
    ("random_inspection", "object-pool"): ["dept_code"],
    ("random_inspection", "inspectors"): ["dept_code"],
    ("random_inspection", "plans"): ["dept_code"],
    ("random_inspection", "tasks"): ["lead_dept_code"],
}
DATE_FIELDS = {
    ("market_supervision", "entities"): ["established_on", "status_changed_on"],
    ("market_supervision", "abnormal-operations"): ["listed_on", "removed_on"],
    ("credit", "admin-licenses"): ["decided_on", "valid_from", "valid_until"],
    ("credit", "admin-penalties"): ["decided_on", "publicity_until"],
    ("credit", "credit-repairs"): ["applied_on", "finished_on"],
    ("credit", "risk-ratings"): ["rated_on"],
    ("random_inspection", "plans"): ["created_on"],
    ("random_inspection", "tasks"): ["starts_on", "ends_on"],
    ("random_inspection", "results"): ["inspected_on", "published_on"],
}
# fields that record something that already happened (planned dates such as ends_on may lie ahead)
EVENT_FIELDS = {
    "submitted_at",
    "accepted_at",
    "finished_at",
    "rated_at",
    "rectified_at",
    "established_on",
    "status_changed_on",
    "listed_on",
    "removed_on",
    "decided_on",
    "valid_from",
    "reported_at",
    "applied_on",
    "finished_on",
    "rated_on",
    "created_on",
    "inspected_on",
    "published_on",
}


def resources():
    return [(s.name, r.name) for s in systems().values() for r in s.resources]


def values(world: World, fields_by_resource: dict) -> list[str]:
    out = []
    for (system, resource), fields in fields_by_resource.items():
        for rec in world.truth(system, resource).values():
            out += [rec[f] for f in fields if isinstance(rec[f], str)]
    return out


def as_iso(value) -> str | None:
    """A date or timestamp in any of the formats the sources use, as ISO text (None if absent)."""
    if not isinstance(value, str) or not value.strip():
        return None
    m = re.match(r"^(\d{4})[-/]?(\d{2})[-/]?(\d{2})(.*)$", value.strip())
    assert m, f"unreadable date {value!r}"
    return f"{m[1]}-{m[2]}-{m[3]}{m[4]}"


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=20260701, scale=0.05)


@pytest.fixture(scope="module")
def small() -> World:
    return World(seed=20260701, scale=0.01)


# --- determinism ------------------------------------------------------------------------------
def test_same_seed_gives_identical_records(small):
    again = World(seed=20260701, scale=0.01)
    for system, resource in resources():
        assert again.truth(system, resource) == small.truth(system, resource), resource
        a, b = again.store(system, resource), small.store(system, resource)
        assert a.slice(0, len(a)) == b.slice(0, len(b)), f"{resource}: bytes differ"


def test_different_seed_gives_different_records(small):
    other = World(seed=1, scale=0.01)
    assert other.truth("gov_service", "cases") != small.truth("gov_service", "cases")
    assert other.truth("market_supervision", "entities") != small.truth("market_supervision", "entities")


def test_advancing_in_steps_equals_advancing_at_once():
    a, b = World(seed=5, scale=0.01), World(seed=5, scale=0.01)
    a.advance(3)
    for _ in range(3):
        b.advance(1)
    assert a.day == b.day == 3
    for system, resource in resources():
        assert a.truth(system, resource) == b.truth(system, resource), resource


# --- shape, order and time ------------------------------------------------------------------------
def test_every_record_has_the_contract_fields_and_a_clean_envelope(small):
    for system in systems().values():
        for res in system.resources:
            for rec in small.truth(system.name, res.name).values():
                assert list(rec) == list(res.fields), res.name
                assert isinstance(rec["id"], str) and rec["id"] == rec["id"].strip() and rec["id"]
                assert TS.match(rec["updated_at"])
                assert isinstance(rec["is_deleted"], bool)


def test_stores_are_ordered_by_updated_at_then_id(world):
    for system, resource in resources():
        store = world.store(system, resource)
        assert len(store) > 0, f"{resource} is empty at scale 0.05"
        keys = [(r["updated_at"], r["id"]) for r in map(orjson.loads, store.slice(0, len(store)))]
        assert keys == sorted(keys), resource
        assert len({k[1] for k in keys}) == len(keys), f"{resource}: repeated id"


def test_updated_at_lies_between_business_dates_and_the_clock(world):
    assert world.clock == datetime(2026, 7, 1) and world.day == 0
    for system, resource in resources():
        for rec in world.truth(system, resource).values():
            ua = rec["updated_at"]
            assert ua <= BASE_CLOCK, (resource, rec["id"])
            for f in EVENT_FIELDS & rec.keys():
                when = as_iso(rec[f])
                if when:
                    assert when[: len(ua)] <= ua[: len(when)], (resource, rec["id"], f, rec[f], ua)


# --- the day-by-day life --------------------------------------------------------------------------
def _content(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in ("updated_at", "is_deleted")}


def test_advance_adds_corrects_and_deletes_with_newer_updated_at():
    w = World(seed=20260701, scale=0.05)
    before = {key: w.truth(*key) for key in resources()}
    high = {key: max((r["updated_at"] for r in recs.values()), default="") for key, recs in before.items()}
    w.advance(30)
    assert w.day == 30 and w.clock == datetime(2026, 7, 31)
    added = changed = deleted = 0
    for key, old in before.items():
        now = w.truth(*key)
        assert set(old) <= set(now), f"{key}: a record vanished instead of becoming a tombstone"
        for rid, rec in now.items():
            assert rec["updated_at"] <= "2026-07-31 00:00:00"
            if rid in old and rec == old[rid]:
                continue
            assert rec["updated_at"] > high[key], f"{key} {rid}: written without a newer updated_at"
            if rid not in old:
                added += 1
            elif rec["is_deleted"] and not old[rid]["is_deleted"]:
                deleted += 1
            elif _content(rec) != _content(old[rid]):
                changed += 1
    # 30 days at scale 0.05: ~1,800 cases arrive, in-flight cases finish, a few records are revoked
    assert added > 1000
    assert changed > 20
    assert deleted >= 1
    old_cases = before[("gov_service", "cases")]
    progressed = [
        rid
        for rid, r in w.truth("gov_service", "cases").items()
        if rid in old_cases and old_cases[rid]["status"] in ("在办", "补正") and r["status"] == "办结"
    ]
    assert progressed, "no in-flight case was finished by advance()"


def test_a_tombstone_keeps_its_content():
    w = World(seed=20260701, scale=0.05)
    old = w.truth("credit", "admin-penalties")
    w.advance(60)
    now = w.truth("credit", "admin-penalties")
    gone = [rid for rid in old if now[rid]["is_deleted"] and not old[rid]["is_deleted"]]
    assert gone, "no penalty was revoked in 60 days"
    assert all(now[rid]["decision_no"] == old[rid]["decision_no"] for rid in gone)


def test_touch_writes_strictly_after_everything_in_the_resource():
    w = World(seed=3, scale=0.01)
    store = w.store("gov_service", "cases")
    high = store.max_updated_at
    touched = w.touch("gov_service", "cases", 5, random.Random(1))
    stamps = [w.truth("gov_service", "cases")[rid]["updated_at"] for rid in touched]
    assert len(touched) == 5
    assert all(s > high for s in stamps)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(set(touched))


# --- personal information and codes ----------------------------------------------------------------
def test_departments_file():
    path = Path(__file__).resolve().parents[2] / "include/market_access/simulators/reference/departments.csv"
    rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    assert len(rows) == 30 == len(departments())
    assert list(rows[0]) == ["dept_code", "dept_name", "aliases", "alert_emails", "role"]
    by_name = {r["dept_name"]: r for r in rows}
    for r in rows:
        assert r["dept_code"].startswith("11") and uscc.is_valid(r["dept_code"]), r
        assert r["role"] in ("bureau", "ndrc", "industry")
        assert all(re.match(r"^[a-z]+@demo-county\.gov\.cn$", m) for m in r["alert_emails"].split(";"))
        assert 1 <= len(r["aliases"].split(";")) <= 3
    assert "区市场监管局" in by_name["区市场监督管理局"]["aliases"].split(";")
    assert by_name["区数据管理局"]["role"] == "bureau"
    assert by_name["区发展和改革局"]["role"] == "ndrc"
    assert len({r["dept_code"] for r in rows}) == 30


def test_codes_have_valid_check_characters_unless_dirtied(world):
    codes = [v for v in values(world, USCC_FIELDS) if STRICT_USCC.match(v) and v != PLACEHOLDER]
    bad = [v for v in codes if not uscc.is_valid(v)]
    assert len(codes) > 5000
    assert 0 < len(bad) < 0.01 * len(codes), f"{len(bad)} of {len(codes)} 统一社会信用代码 fail the check"
    ids = [v for v in values(world, RIC_FIELDS) if STRICT_RIC.match(v)]
    bad_ids = [v for v in ids if ric.calc_check_digit(v) != v[-1]]
    assert len(ids) > 1000
    assert 0 < len(bad_ids) < 0.01 * len(ids)
    # a number with a good check character is a real-looking one: known area code, possible birth date
    assert all(ric.is_valid(v) for v in ids if v not in bad_ids)
    cases = world.truth("gov_service", "cases").values()
    people = [c["applicant_cert_no"] for c in cases if c["applicant_cert_type"] == "身份证"]
    strict = [v for v in people if STRICT_RIC.match(v)]
    assert sum(ric.is_valid(v) for v in strict) > 0.98 * len(strict)


def test_phones_are_mobile_numbers_unless_dirtied(world):
    phones = values(world, PHONE_FIELDS)
    clean = [p for p in phones if MOBILE.match(p)]
    assert len(clean) > 0.95 * len(phones)


def test_people_have_chinese_names(world):
    names = [
        r["legal_rep_name"].strip()
        for r in world.truth("market_supervision", "entities").values()
        if r["legal_rep_name"].strip()
    ]
    assert all(re.match(r"^[\u4e00-\u9fff]{2,4}$", n) for n in names)
    shops = [
        r for r in world.truth("market_supervision", "entities").values() if r["entity_type"] == "个体工商户"
    ]
    with_owner = [
        r for r in shops if r["legal_rep_name"].strip() and r["legal_rep_name"].strip() in r["name"]
    ]
    assert len(with_owner) > 0.3 * len(shops), "个体工商户 names should often carry the owner's name"


# --- dirt (contract §1.3) -------------------------------------------------------------------------------
def test_every_kind_of_dirt_occurs(world):
    uscc_values = values(world, USCC_FIELDS)
    ric_values = values(world, RIC_FIELDS)
    phones = values(world, PHONE_FIELDS)
    dates = values(world, DATE_FIELDS)
    depts = values(world, DEPT_FIELDS)
    everything = [
        v
        for s, r in resources()
        for rec in world.truth(s, r).values()
        for v in rec.values()
        if isinstance(v, str)
    ]
    names = {d.name for d in departments()}
    aliases = {a for d in departments() for a in d.aliases}
    entities = world.truth("market_supervision", "entities").values()

    assert any(v == "" for v in everything), "empty strings for missing values"
    assert any(v != v.strip(" ") and v.strip(" ") for v in everything), "leading/trailing spaces"
    assert any("\u3000" in v for v in everything), "全角 spaces"
    assert any(FULLWIDTH_ALNUM.search(v) for v in uscc_values + ric_values + depts), (
        "全角 digits/letters in codes"
    )
    assert any(re.search(r"[a-z]", v) for v in uscc_values), "lowercase 统一社会信用代码"
    assert any(re.match(r"^\d{17}x$", v) for v in ric_values), "lowercase x in 身份证号"
    assert any(re.match(r"^\d{15}$", v) for v in ric_values), "15-digit 身份证号"
    assert any(STRICT_USCC.match(v) and v != PLACEHOLDER and not uscc.is_valid(v) for v in uscc_values)
    assert any(STRICT_RIC.match(v) and ric.calc_check_digit(v) != v[-1] for v in ric_values)
    assert any(e["uscc"] == PLACEHOLDER and e["entity_type"] == "个体工商户" for e in entities)
    assert any(re.match(r"^\+86 1\d{2}-\d{4}-\d{4}$", p) for p in phones), "+86 138-0013-8000"
    assert any(re.match(r"^1\d{2} \d{4} \d{4}$", p) for p in phones), "phones with spaces"
    assert any(re.match(r"^\d{4}/\d{2}/\d{2}$", d) for d in dates), "2026/03/05"
    assert any(re.match(r"^\d{8}$", d) for d in dates), "20260305"
    assert any(v in names for v in depts), "department names in place of codes"
    assert any(v in aliases for v in depts), "short aliases in place of codes"
    assert "区市场监管局" in depts


def test_free_text_carries_personal_information(world):
    comments = [r["comment"] for r in world.truth("gov_service", "evaluations").values()]
    facts = [r for r in world.truth("credit", "admin-penalties").values()]
    assert any(PHONE_IN_TEXT.search(c) for c in comments)
    assert any(RIC_IN_TEXT.search(c) for c in comments)
    assert any(re.search(r"工作人员[\u4e00-\u9fff]{2,4}", c) for c in comments)
    assert any(RIC_IN_TEXT.search(f["violation_facts"]) for f in facts)
    people = [f for f in facts if f["party_category"] == "自然人" and f["party_name"].strip()]
    assert any(f["party_name"].strip() in f["violation_facts"] for f in people)


def test_envelope_is_never_dirty(world):
    for system, resource in resources():
        for rid, rec in world.truth(system, resource).items():
            assert rid == rec["id"] and re.match(r"^[0-9A-Z]+$", rid), (resource, rid)
            assert TS.match(rec["updated_at"]) and isinstance(rec["is_deleted"], bool)


# --- volumes and realism ------------------------------------------------------------------------
def test_counts_follow_the_scale(world, small):
    big = world.counts()
    # scale 0.05 of one county-year: 300k cases, 60k evaluations, 40k entities, 20k licences, 5k penalties
    assert 14_000 <= big["gov_service"]["cases"] <= 16_000
    assert 2_500 <= big["gov_service"]["evaluations"] <= 3_500
    assert 1_900 <= big["market_supervision"]["entities"] <= 2_100
    assert 900 <= big["credit"]["admin-licenses"] <= 1_100
    assert 200 <= big["credit"]["admin-penalties"] <= 300
    assert 85 <= big["gov_service"]["service-items"] <= 110  # 1,500 × 0.05, but at least 3 per department
    assert 600 <= big["random_inspection"]["results"] <= 1_000
    assert big["credit"]["risk-ratings"] > 0.5 * big["market_supervision"]["entities"]
    assert big["credit"]["credit-repairs"] >= 3
    ratio = big["gov_service"]["cases"] / small.counts()["gov_service"]["cases"]
    assert 4.5 <= ratio <= 5.5
    assert len(world.depts) == len(small.depts) == 30


def test_cases_look_like_a_service_hall(world):
    from market_access.simulators.workdays import calendar

    cal = calendar()
    cases = list(world.truth("gov_service", "cases").values())
    window = [c for c in cases if c["channel"] == "窗口"]
    for c in window:
        t = datetime.fromisoformat(c["submitted_at"])
        assert cal.is_workday(t.date()) and ("09:00" <= f"{t:%H:%M}" < "17:30"), c["submitted_at"]
    done = [c for c in cases if c["status"] == "办结"]
    assert 0.85 < len(done) / len(cases) < 0.97
    assert {c["status"] for c in cases} == {"在办", "办结", "不予受理", "补正", "撤回"}
    assert {c["channel"] for c in cases} == {"窗口", "网上", "移动端", "自助终端"}
    on_time = [
        c
        for c in done
        if c["accepted_at"]
        and cal.count(date.fromisoformat(c["accepted_at"][:10]), date.fromisoformat(c["finished_at"][:10]))
        <= c["promised_limit_days"]
    ]
    assert 0.85 < len(on_time) / len(done) < 0.99
    evaluations = list(world.truth("gov_service", "evaluations").values())
    bad = [e for e in evaluations if e["rating"] <= 2]
    assert sum(e["rating"] == 5 for e in evaluations) > 0.75 * len(evaluations)
    assert bad and sum(bool(e["rectified_at"]) for e in bad) > 0.6 * len(bad)


def test_inspection_results_fall_inside_their_tasks(world):
    tasks = world.truth("random_inspection", "tasks")
    inspectors = set(world.truth("random_inspection", "inspectors"))
    for r in world.truth("random_inspection", "results").values():
        t = tasks[r["task_id"]]
        assert as_iso(t["starts_on"]) <= as_iso(r["inspected_on"]) <= as_iso(t["ends_on"])
        assert set(r["inspector_ids"]) <= inspectors


def test_single_resource_world_for_benchmarks():
    w = World.single("gov_service", "cases", 40_000, seed=9)
    counts = w.counts()
    assert counts["gov_service"]["cases"] == 40_000
    assert sum(n for s in counts.values() for n in s.values()) == 40_000
    store = w.store("gov_service", "cases")
    keys = [(r["updated_at"], r["id"]) for r in map(orjson.loads, store.slice(0, len(store)))]
    assert keys == sorted(keys) and keys[-1][0] <= BASE_CLOCK
    assert len({rid for _, rid in keys}) == 40_000


def test_dirt_comes_at_small_rates(world):
    from market_access.simulators.dirty import KINDS

    by_kind: dict[str, int] = {}
    for (_resource, kind), n in world.dirt_counts.items():
        by_kind[kind] = by_kind.get(kind, 0) + n
    # the showcase adds at most four of a kind; the rest comes from the per-value rates
    for kind in set(KINDS) - {"placeholder", "pi_in_text"}:
        assert by_kind.get(kind, 0) >= 8, kind
    codes = values(world, USCC_FIELDS)
    clean = [v for v in codes if STRICT_USCC.match(v)]
    assert len(clean) > 0.95 * len(codes), "most codes arrive clean"
