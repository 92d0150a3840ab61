"""Marts end to end: simulators → raw → `dbt build` of everything; indicator values against the simulator truth."""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections import Counter
from datetime import date, timedelta

import chinese_calendar
import psycopg
import pytest
from test_sync import make_servers, sync_everything  # sibling modules: pytest puts their folder on sys.path
from warehouse_world import DEPARTMENTS_CSV, parse_day, prepare, scratch_database

from market_access import directory, warehouse
from market_access.dbt import run_dbt
from market_access.simulators.submissions import generate as generate_submissions
from market_access.simulators.world import World
from market_access.submissions.inbox import process_inbox

MARTS = (
    "dim_department",
    "dim_date",
    "dim_service_item",
    "dim_entity",
    "fct_cases",
    "fct_ratings",
    "fct_licences",
    "fct_penalties",
    "fct_inspection_tasks",
    "fct_inspection_results",
    "mart_approval_efficiency",
    "mart_service_quality",
    "mart_supervision",
    "mart_credit_supervision",
    "mart_negative_list",
    "mart_satisfaction",
    "mart_rectification",
    "mart_evaluation_weights",
    "mart_composite_evaluation",
)


@pytest.fixture(scope="module")
def built(warehouse_server, tmp_path_factory):
    """World(11, 0.02) landed in raw, the department directory loaded, a full `dbt build` run."""
    target = tmp_path_factory.mktemp("dbt-target")
    world = World(seed=11, scale=0.02)
    servers = make_servers(world)
    try:
        with scratch_database(warehouse_server, "t_marts") as cfg, warehouse.connect(cfg, autocommit=True) as conn:
            depts = prepare(conn)
            sync_everything(conn, servers)
            # the departments' files (违规案例, 投诉, 整改台账, 满意度调查) through the real inbox
            inbox = tmp_path_factory.mktemp("inbox")
            generate_submissions(inbox, seed=11, directory=depts)
            process_inbox(conn, inbox, depts, settle_seconds=0)
            started = time.monotonic()
            run_dbt(["build"], cfg, target_path=target)
            print(f"full dbt build: {time.monotonic() - started:.1f} s")
            yield {"cfg": cfg, "conn": conn, "world": world, "target": target}
    finally:
        for s in servers.values():
            s.stop()


def nth_workday_after(d: date, n: int) -> date:
    """Straight from chinese-calendar, one day at a time (independent of the SQL calendar)."""
    while n:
        d += timedelta(days=1)
        n -= chinese_calendar.is_workday(d)
    return d


def district(conn, mart: str, indicator: str, period_type: str, label: str):
    return conn.execute(
        f"""select numerator, denominator, value, excluded_count from marts.{mart}
            where dept_code = 'DISTRICT' and indicator_code = %s and period_type = %s and period_label = %s""",
        (indicator, period_type, label),
    ).fetchone()


def test_every_mart_is_built_and_readable_by_analyst(built):
    conn = built["conn"]
    for mart in MARTS:
        conn.execute("set role analyst")
        try:
            n = conn.execute(f"select count(*) from marts.{mart}").fetchone()[0]
        finally:
            conn.execute("reset role")
        assert n > 0, mart
    for relation in ("intermediate.int_calendar__days", "intermediate.int_entities_unified"):
        conn.execute("set role analyst")
        try:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"select 1 from {relation} limit 1")
        finally:
            conn.execute("reset role")


def test_calendar_matches_chinese_calendar(built):
    conn = built["conn"]
    rows = conn.execute(
        "select date_day, is_workday from marts.dim_date where date_day < '2027-01-01'"
    ).fetchall()
    assert len(rows) == 366 + 365 + 365
    assert all(chinese_calendar.is_workday(d) == w for d, w in rows)


def test_joint_inspection_share_per_year(built):
    conn, world = built["conn"], built["world"]
    dirs = directory.load(DEPARTMENTS_CSV)
    joint, total = Counter(), Counter()
    for rec in world.truth("random_inspection", "tasks").values():
        starts = parse_day(rec.get("starts_on"))
        if rec["is_deleted"] or starts is None or dirs.resolve(rec.get("lead_dept_code")) is None:
            continue
        total[starts.year] += 1
        joint[starts.year] += bool(rec.get("joint_dept_codes"))
    assert total
    for year, n in total.items():
        num, den, value, _ = district(conn, "mart_supervision", "SV02", "year", str(year))
        assert (num, den) == (joint[year], n), year
        assert float(value) == round(joint[year] / n, 4)


def test_double_publicity_timeliness_per_year(built):
    conn, world = built["conn"], built["world"]
    dirs = directory.load(DEPARTMENTS_CSV)
    on_time, total = Counter(), Counter()
    for resource in ("admin-licenses", "admin-penalties"):
        live = [rec for rec in world.truth("credit", resource).values() if not rec["is_deleted"]]
        as_of = max(parse_day(rec["updated_at"]) for rec in live)  # the data's own cut-off day
        for rec in live:
            decided = parse_day(rec.get("decided_on"))
            if decided is None or dirs.resolve(rec.get("dept_code")) is None:
                continue
            reported = parse_day(rec.get("reported_at"))  # Beijing time: its date part is the day
            if reported is None and nth_workday_after(decided, 7) > as_of:
                continue  # not yet late: excluded as 公示期限未到
            total[decided.year] += 1
            on_time[decided.year] += reported is not None and reported <= nth_workday_after(decided, 7)
    assert total
    for year, n in total.items():
        num, den, _, _ = district(conn, "mart_credit_supervision", "CR01", "year", str(year))
        assert (num, den) == (on_time[year], n), year
    # departments add up to the district
    mismatched = conn.execute(
        """select d.period_label from marts.mart_credit_supervision d
           join (select indicator_code, period_type, period_label, sum(numerator) as n, sum(denominator) as m
                 from marts.mart_credit_supervision where not is_district group by 1, 2, 3) s
             using (indicator_code, period_type, period_label)
           where d.is_district and d.indicator_code = 'CR01' and (d.numerator, d.denominator) <> (s.n, s.m)"""
    ).fetchall()
    assert not mismatched


def test_departments_resolve_through_the_directory(built):
    conn = built["conn"]
    unresolved = conn.execute(
        "select count(*) from marts.fct_inspection_tasks where dept_code is null"
    ).fetchone()[0]
    assert unresolved == 0
    n_depts = conn.execute("select count(*) from marts.dim_department where not is_district").fetchone()[0]
    assert n_depts == len(directory.load(DEPARTMENTS_CSV))


def test_unit_tests_pass(built):
    """`dbt test --select test_type:unit`: the hand-computed indicator and working-day cases."""
    run_dbt(
        ["test", "--select", "test_type:unit"], built["cfg"], target_path=built["target"]
    )  # raises on failure
    results = json.loads((built["target"] / "run_results.json").read_text())["results"]
    statuses = Counter(r["status"] for r in results if r["unique_id"].startswith("unit_test."))
    manifest = json.loads((built["target"] / "manifest.json").read_text())
    defined = [u for u in manifest["unit_tests"] if u.startswith("unit_test.")]
    # every unit test the project defines ran and passed (none silently skipped)
    assert len(defined) >= 21
    assert statuses == {"pass": len(defined)}, statuses


def test_inspection_results_published_within_20_working_days(built):
    """SV04 by the task's 发起部门 and the inspection year; results still inside their window are excluded."""
    conn, world = built["conn"], built["world"]
    dirs = directory.load(DEPARTMENTS_CSV)
    tasks = {rid: t for rid, t in world.truth("random_inspection", "tasks").items() if not t["is_deleted"]}
    live = [r for r in world.truth("random_inspection", "results").values() if not r["is_deleted"]]
    as_of = max(parse_day(r["updated_at"]) for r in live)
    on_time, total = Counter(), Counter()
    for rec in live:
        inspected = parse_day(rec.get("inspected_on"))
        task = tasks.get(unicodedata.normalize("NFKC", rec.get("task_id") or "").strip().upper())
        if inspected is None or task is None or dirs.resolve(task.get("lead_dept_code")) is None:
            continue
        published, deadline = parse_day(rec.get("published_on")), nth_workday_after(inspected, 20)
        if published is None and deadline > as_of:
            continue
        total[inspected.year] += 1
        on_time[inspected.year] += published is not None and published <= deadline
    assert total
    for year, n in total.items():
        num, den, _, _ = district(conn, "mart_supervision", "SV04", "year", str(year))
        assert (num, den) == (on_time[year], n), year


CJK = re.compile(r"[\u4e00-\u9fff]")


def test_docs_generate_and_every_mart_column_described_in_chinese(built):
    """`dbt docs generate` works against the built warehouse, and every mart (and every column of
    it, as the database has it) carries a Chinese description."""
    run_dbt(["docs", "generate"], built["cfg"], target_path=built["target"])
    catalog = json.loads((built["target"] / "catalog.json").read_text())
    manifest = json.loads((built["target"] / "manifest.json").read_text())
    marts = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }
    assert {n["name"] for n in marts.values()} >= set(MARTS)
    missing = []
    for uid, node in marts.items():
        if not CJK.search(node.get("description") or ""):
            missing.append((node["name"], "(model)"))
        described = {c.lower(): (c_node.get("description") or "") for c, c_node in node["columns"].items()}
        for column in catalog["nodes"][uid]["columns"]:
            if not CJK.search(described.get(column.lower(), "")):
                missing.append((node["name"], column))
    assert not missing, missing
