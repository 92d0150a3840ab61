"""Quiet and first-day worlds (issue #9): a new bureau's own directory of eight departments, an
empty warehouse and inbox; then its first weeks — an independent contract server over HTTP (with
labels the simulators never send and a resource that returns zero records), files from only one
department (one 整改台账 rejected, no 隐性壁垒投诉 from anyone) — and a department added mid-year.

Each world runs what the DAGs run, in their order, on the real components: the warehouse build
(dbt, the build_warehouse selection), the quality run (Great Expectations), the alert mails (.eml
outbox), the marts (the publish_marts selection). What is asserted is what a person would check:
the quality run's status and why, who got mail, mart rows 无数据 where there is no data.
"""

from __future__ import annotations

import sys
from datetime import datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from warehouse_world import KEY, KEY_ID, scratch_database

from market_access import deid, directory, warehouse
from market_access.alerts import send_alerts
from market_access.dbt import ensure_sources, grant_transformer, run_dbt
from market_access.load.sync import sync_resource
from market_access.orchestration.warehouse import BUILD_EXCLUDE, BUILD_SELECT, PUBLISH_SELECT
from market_access.quality import run_quality
from market_access.settings import BEIJING, Settings
from market_access.sources import catalog
from market_access.sources.client import ContractClient
from market_access.sources.connection import SourceConnection
from market_access.submissions.inbox import process_inbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worlds"))
from contract_server import DEPARTMENTS, ContractServer, ContractWorld, Dept, directory_csv, with_check  # noqa: E402
from first_inbox import write_inbox  # noqa: E402

NO_UNIT = ["--exclude", "resource_type:unit_test"]
CAUTIOUS = ["--indirect-selection", "cautious"]  # as Cosmos runs the DAGs' tests
BUREAU, NDRC, SCJ, SPJ, JTJ, WLJ, YJJ, JYJ = DEPARTMENTS  # JYJ (教育局): no sources
WITH_SOURCES = [d for d in DEPARTMENTS if d.sources]
UNTIL = datetime(2030, 1, 1, tzinfo=BEIJING)


def build(cfg, target: Path) -> None:
    """build_warehouse's selection, then (after the quality run) publish_marts' — as the DAGs do."""
    run_dbt(
        [
            "build",
            *CAUTIOUS,
            "--select",
            *BUILD_SELECT,
            "--exclude",
            *BUILD_EXCLUDE,
            "resource_type:unit_test",
        ],
        cfg,
        target_path=target,
    )


def publish(cfg, target: Path) -> None:
    run_dbt(["build", *CAUTIOUS, "--select", *PUBLISH_SELECT, *NO_UNIT], cfg, target_path=target)


def mails(outbox: Path) -> list:
    return [
        BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in sorted(outbox.glob("*.eml"))
    ]


def body(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def prepare_bureau(conn, csv_path: Path) -> directory.Directory:
    ensure_sources(conn)
    grant_transformer(conn)
    deid.install_key(conn, KEY, KEY_ID)
    depts = directory.load(csv_path)
    directory.load_into_warehouse(conn, depts)
    return depts


def one_world(pg_server, tmp: Path, name: str):
    env = pytest.MonkeyPatch()
    env.setenv("MARKET_ACCESS_LOCAL_DIR", str(tmp / "local"))
    env.setenv("ALERT_MAIL_DIR", str(tmp / "outbox"))
    for var in ("QUALITY_DATA_DOCS_DIR", "QUALITY_RULES", "AIRFLOW_CONN_SMTP_DEFAULT"):
        env.delenv(var, raising=False)
    csv_path = tmp / "departments.csv"
    csv_path.write_text(directory_csv(), encoding="utf-8")
    return env, csv_path


def run_chain(cfg, tmp: Path, label: str) -> dict:
    """build → quality → mails → marts; the mails of this pass only."""
    build(cfg, tmp / "dbt-target")
    summary = run_quality(cfg, settings=Settings(), as_of=datetime.now(BEIJING).date())
    outbox = tmp / "outbox"
    before = set(outbox.glob("*.eml")) if outbox.exists() else set()
    alerts = send_alerts(cfg, summary.run_id, settings=Settings())
    new = [
        BytesParser(policy=policy.default).parsebytes(p.read_bytes())
        for p in sorted(set(outbox.glob("*.eml")) - before)
    ]
    publish(cfg, tmp / "dbt-target")
    return {"summary": summary, "alerts": alerts, "mails": new}


# --- world 1: an empty warehouse and an empty inbox ------------------------------------------------


@pytest.fixture(scope="module")
def empty_world(pg_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("empty-world")
    env, csv_path = one_world(pg_server, tmp, "empty")
    try:
        with scratch_database(pg_server, "t_empty") as cfg, warehouse.connect(cfg, autocommit=True) as conn:
            depts = prepare_bureau(conn, csv_path)
            inbox = tmp / "inbox"
            inbox.mkdir()
            assert process_inbox(conn, inbox, depts, settle_seconds=0)["files"] == 0
            yield {"cfg": cfg, "conn": conn, **run_chain(cfg, tmp, "empty")}
    finally:
        env.undo()


def test_empty_world_quality_run_is_incomplete_and_says_why(empty_world):
    conn, summary = empty_world["conn"], empty_world["summary"]
    status, not_checked = conn.execute(
        "select status, not_checked from ops.quality_runs where run_id = %s", (summary.run_id,)
    ).fetchone()
    assert status == summary.status == "incomplete"
    reasons = {n["relation"]: n["reason"] for n in not_checked}
    # every staging relation some department answers for is empty: all 15 system resources and the
    # 4 templates (the directory lists each of them somewhere)
    assert len(reasons) == 15 + 4 and set(reasons.values()) == {"empty"}
    assert "staging.stg_submissions__barrier_complaints" in reasons
    # the bureau's summary lists them; no department without sources is mailed
    bureau = [m for m in empty_world["mails"] if BUREAU.email in str(m["To"])]
    assert len(bureau) == 1
    text = body(bureau[0])
    assert "本次检查不完整" in text and "staging.stg_gov_service__cases" in text and "关系为空" in text


def test_empty_world_missing_feeds_are_findings_of_the_departments_that_answer_for_them(empty_world):
    conn, run_id = empty_world["conn"], empty_world["summary"].run_id
    failing = {
        (d, r)
        for d, r in conn.execute(
            "select dept_code, rule_id from ops.quality_results where run_id = %s and not success", (run_id,)
        )
    }
    # by hand from the directory: a feed rule per system / template in each department's sources
    feed_rule = {
        "gov_service": "GS-FEED-001",
        "market_supervision": "MS-FEED-001",
        "credit": "CR-FEED-001",
        "random_inspection": "RI-FEED-001",
        "violation_cases": "SB-FEED-001",
        "barrier_complaints": "SB-FEED-002",
        "rectification_ledger": "SB-FEED-003",
        "satisfaction_survey": "SB-FEED-004",
    }
    expected = {(d.code, feed_rule[s]) for d in WITH_SOURCES for s in d.sources.split(";")}
    assert expected <= failing
    assert not {d for d, _ in failing} & {BUREAU.code, JYJ.code}
    mailed = {str(m["To"]) for m in empty_world["mails"] if "数据质量告警" in str(m["Subject"])}
    assert len(mailed) == len(WITH_SOURCES)
    assert not any(JYJ.email in t for t in mailed)
    # the 发改局's mail names its missing 满意度调查 file in Chinese
    ndrc = next(
        m for m in empty_world["mails"] if NDRC.email in str(m["To"]) and "数据质量告警" in str(m["Subject"])
    )
    assert "SB-FEED-004" in body(ndrc) and "满意度调查" in body(ndrc)


def test_empty_world_marts_and_composite_exist_with_no_data_rows(empty_world):
    conn = empty_world["conn"]
    for mart in (
        "mart_approval_efficiency",
        "mart_service_quality",
        "mart_supervision",
        "mart_credit_supervision",
        "mart_negative_list",
        "mart_satisfaction",
        "mart_rectification",
        "mart_composite_evaluation",
        "mart_data_quality_scorecard",
    ):
        assert conn.execute("select to_regclass(%s)", (f"marts.{mart}",)).fetchone()[0] is not None, mart
    # AE02 applies to the departments listing gov_service (市监局, 审批局, 交通局, 文旅局) and the district
    rows = conn.execute(
        """select dept_code, value, numerator, data_status from marts.mart_approval_efficiency
           where indicator_code = 'AE02' and period_type = 'year'"""
    ).fetchall()
    assert {d for d, *_ in rows} == {SCJ.code, SPJ.code, JTJ.code, WLJ.code, "DISTRICT"}
    assert {(v, n, s) for _, v, n, s in rows} == {(None, None, "无数据")}
    # no department has anything to grade: no composite rows for them (not a score of 0); only the
    # district's 清单执行 (NL01 reads the negative-list seed, not a source) and its overall row
    graded = conn.execute("select dept_code, area from marts.mart_composite_evaluation").fetchall()
    assert sorted(graded) == [("DISTRICT", "negative_list"), ("DISTRICT", "overall")]
    # the scorecard carries the missing feeds (incomplete runs count)
    failed = conn.execute(
        "select coalesce(sum(rules_failed), 0) from marts.mart_data_quality_scorecard where dept_code = %s",
        (NDRC.code,),
    ).fetchone()[0]
    assert failed >= 3  # CR-FEED-001, SB-FEED-001, SB-FEED-004


# --- world 2: the first weeks — an independent server, files from one department -------------------


@pytest.fixture(scope="module")
def first_weeks(pg_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("first-weeks")
    env, csv_path = one_world(pg_server, tmp, "first")
    server = ContractServer(ContractWorld(seed=3, per_resource=25)).start()
    try:
        with scratch_database(pg_server, "t_first") as cfg, warehouse.connect(cfg, autocommit=True) as conn:
            depts = prepare_bureau(conn, csv_path)
            for res in catalog.all_resources():
                client = ContractClient(SourceConnection.from_uri(res.system, server.uri(res.system)))
                sync_resource(conn, client, res, until=UNTIL, page_size=10)
            today = datetime.now(BEIJING).date()
            inbox = tmp / "inbox"
            write_inbox(inbox, NDRC, today)
            outcomes = process_inbox(conn, inbox, depts, settle_seconds=0)
            first = run_chain(cfg, tmp, "first")
            # a new department joins the directory mid-year
            newcomer = Dept(
                with_check("11441203MB2C00099"),
                "青山区数据要素发展中心",
                "青山区数据中心",
                "sjzx@qingshan.example.cn",
                "industry",
                "gov_service;rectification_ledger",
            )
            csv_path.write_text(directory_csv((*DEPARTMENTS, newcomer)), encoding="utf-8")
            directory.load_into_warehouse(conn, directory.load(csv_path))
            second = run_chain(cfg, tmp, "second")
            yield {
                "cfg": cfg,
                "conn": conn,
                "server": server,
                "outcomes": outcomes,
                "first": first,
                "second": second,
                "newcomer": newcomer,
            }
    finally:
        server.stop()
        env.undo()


def test_first_weeks_inbox_two_files_accepted_one_ledger_rejected(first_weeks):
    statuses = sorted((f["template"] or "?", f["status"]) for f in first_weeks["outcomes"]["outcomes"])
    assert statuses == [
        ("rectification_ledger", "rejected"),
        ("satisfaction_survey", "accepted"),
        ("violation_cases", "accepted"),
    ]


def test_first_weeks_zero_record_resource_and_open_labels(first_weeks):
    conn = first_weeks["conn"]
    # credit-repairs: zero records from the server, an empty staging model, no crash
    assert conn.execute("select count(*) from raw.credit__credit_repairs").fetchone()[0] == 0
    assert conn.execute("select count(*) from staging.stg_credit__credit_repairs").fetchone()[0] == 0
    # 25 evaluations, one third each PC端 / 移动端 / 二维码 (i % 3): none lost
    assert conn.execute("select count(*) from staging.stg_gov_service__evaluations").fetchone()[0] == 25
    summary = first_weeks["first"]["summary"]
    reasons = {n["relation"]: n["reason"] for n in summary.not_checked}
    # by hand: credit-repairs (zero records) and the templates nobody sent a usable file of
    assert reasons == {
        "staging.stg_credit__credit_repairs": "empty",
        "staging.stg_submissions__barrier_complaints": "empty",
        "staging.stg_submissions__rectification_ledger": "empty",
    }
    assert summary.status == "incomplete"


def test_first_weeks_templates_without_a_file_are_findings(first_weeks):
    conn, run_id = first_weeks["conn"], first_weeks["first"]["summary"].run_id
    got = {
        (d, r): ok
        for d, r, ok in conn.execute(
            "select dept_code, rule_id, success from ops.quality_results where run_id = %s and rule_id like 'SB-FEED-%%'",
            (run_id,),
        )
    }
    # the 发改局 sent 违规案例 and 满意度调查 (accepted): no finding; 市监局 and 应急局 answer for
    # 隐性壁垒投诉 and nobody sent one; the rejected 整改台账 does not count
    assert got[(NDRC.code, "SB-FEED-001")] is True and got[(NDRC.code, "SB-FEED-004")] is True
    assert got[(SCJ.code, "SB-FEED-002")] is False and got[(YJJ.code, "SB-FEED-002")] is False
    assert got[(SCJ.code, "SB-FEED-003")] is False and got[(SPJ.code, "SB-FEED-003")] is False
    assert not any(d in (BUREAU.code, JYJ.code) for d, _ in got)
    # the satisfaction survey lands in SAT02 of the rated 审批局: one answer, score 4
    value, status = conn.execute(
        """select value, data_status from marts.mart_satisfaction where dept_code = %s and indicator_code = 'SAT02'
           and period_type = 'year' and period_label = %s""",
        (SPJ.code, str(datetime.now(BEIJING).year)),
    ).fetchone()
    assert (float(value), status) == (4.0, "有数据")
    # the 交通局 answers for 整改台账 and has none: RC01 无数据 (not 0 %)
    rows = conn.execute(
        "select value, data_status from marts.mart_rectification where dept_code = %s and indicator_code = 'RC01'",
        (JTJ.code,),
    ).fetchall()
    assert rows and set(rows) == {(None, "无数据")}
    assert conn.execute("select count(*) from marts.mart_composite_evaluation").fetchone()[0] > 0


def test_a_department_added_mid_year_appears_with_no_data(first_weeks):
    conn, new = first_weeks["conn"], first_weeks["newcomer"]
    assert (
        conn.execute(
            "select count(*) from marts.dim_department where dept_code = %s", (new.code,)
        ).fetchone()[0]
        == 1
    )
    statuses = conn.execute(
        """select distinct indicator_code, data_status from marts.mart_approval_efficiency where dept_code = %s
           union select distinct indicator_code, data_status from marts.mart_rectification where dept_code = %s""",
        (new.code, new.code),
    ).fetchall()
    # AE01–AE06 (gov_service) and RC01–RC02 (rectification_ledger), every one 无数据
    assert sorted(statuses) == sorted(
        [(f"AE0{i}", "无数据") for i in range(1, 7)] + [("RC01", "无数据"), ("RC02", "无数据")]
    )
    # its missing feeds are its findings, in its own mail
    second = first_weeks["second"]
    mine = [m for m in second["mails"] if new.email in str(m["To"])]
    assert len(mine) == 1 and "GS-FEED-001" in body(mine[0]) and "SB-FEED-003" in body(mine[0])
    assert second["summary"].status == "incomplete"
