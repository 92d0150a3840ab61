"""The data-quality engine end to end: a simulated world landed in raw, known failures planted in
one department's 双公示 licences, staging built by dbt, a real run of every rule on Great
Expectations; counts, record ids and working days checked against values worked out by hand."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import psycopg
import pytest
from stdnum.cn import uscc as stdnum_uscc
from test_sync import make_servers, sync_everything  # sibling modules: pytest puts their folder on sys.path
from warehouse_world import REPO, parse_day, prepare, scratch_database

from market_access import directory, warehouse
from market_access.dbt import run_dbt
from market_access.quality import run_quality
from market_access.quality.batches import QualityConfigError
from market_access.settings import Settings
from market_access.simulators import submissions as sim_submissions
from market_access.simulators.world import World
from market_access.submissions.inbox import process_inbox

# the models the quality rules read: staging, and the working-day calendar (with its seeds)
BUILD = [
    "build",
    "--select",
    "staging",
    "+int_calendar__days",
    "--exclude",
    "resource_type:test",
    "resource_type:unit_test",
]
AS_OF = date(2026, 7, 1)  # the simulated world's clock: its data runs to 2026-06-30
DEPT = "1136042107147713X5"  # 区生态环境局: the department whose licences get the planted failures
PLACEHOLDER = "00000000000000000X"
LICENCES = "staging.stg_credit__admin_licenses"

# new 双公示 licences of DEPT: (decided_on, reported on, working days by hand, judged late?)
#   2025 National Day: holiday 10-01..10-08, make-up working days Sun 09-28 and Sat 10-11
#   2025 Spring Festival: holiday 01-28..02-04, make-up working days Sun 01-26 and Sat 02-08
#   2026 Dragon Boat: holiday Fri 06-19
TIMELINESS = {
    "QT-OCT-5WD": (date(2025, 9, 25), date(2025, 10, 9), 5, False),  # 9-26, 9-28*, 9-29, 9-30, 10-9
    "QT-OCT-7WD": (date(2025, 9, 25), date(2025, 10, 11), 7, False),  # … 10-10, Sat 10-11*
    "QT-OCT-8WD": (date(2025, 9, 25), date(2025, 10, 13), 8, True),
    "QT-SF-7WD": (
        date(2025, 1, 24),
        date(2025, 2, 10),
        7,
        False,
    ),  # Sun 1-26*, 1-27, 2-5..2-7, Sat 2-8*, 2-10
    "QT-SF-8WD": (date(2025, 1, 24), date(2025, 2, 11), 8, True),  # 12 weekdays without the calendar
    "QT-DW-7WD": (date(2026, 6, 11), date(2026, 6, 23), 7, False),  # 6-19 off: 8 weekdays, 7 working days
    "QT-OPEN-LATE": (date(2026, 6, 10), None, None, True),  # unpublished, 13 working days to 6-30
    "QT-OPEN-DUE": (date(2026, 6, 26), None, None, None),  # unpublished, 2 working days: not yet due
}


def norm_code(value) -> str | None:
    """A code as staging stores it (half-width, no spaces, upper case), independent of the SQL."""
    if value is None:
        return None
    v = re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(value))).upper()
    return v or None


def working_days(start: date, end: date) -> int:
    """Working days after `start` up to and including `end`, straight from chinese-calendar."""
    n, d = 0, start
    while d < end:
        d += timedelta(days=1)
        n += chinese_calendar.is_workday(d)
    return n


def valid_uscc(seed: str) -> str:
    body = "9136042" + str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:10]
    return body + stdnum_uscc.calc_check_digit(body)


def invalid_uscc(seed: str) -> str:
    good = valid_uscc(seed)
    wrong = next(c for c in "0123456789" if c != good[-1])
    return good[:-1] + wrong


def current_licences(conn) -> dict[str, dict]:
    rows = conn.execute(
        """select distinct on (record_id) record_id, is_deleted, payload from raw.credit__admin_licenses
           order by record_id, source_updated_at desc, raw_id desc"""
    ).fetchall()
    return {rid: payload for rid, deleted, payload in rows if not deleted}


def add_versions(conn, versions: dict[str, dict]) -> None:
    """New raw versions (newer than any delivered one): the newest version is a record's state."""
    batch = conn.execute("select nextval('ops.batch_id_seq')").fetchone()[0]
    with conn.cursor() as cur:
        cur.executemany(
            """insert into raw.credit__admin_licenses
                   (record_id, source_updated_at, is_deleted, payload, payload_md5, _batch_id)
               values (%s, timestamptz '2026-06-30 23:59:59+08', false, %s, %s, %s)""",
            [
                (
                    rid,
                    json.dumps(p, ensure_ascii=False),
                    str(uuid.UUID(hashlib.md5(json.dumps(p, sort_keys=True).encode()).hexdigest())),
                    batch,
                )
                for rid, p in versions.items()
            ],
        )


def plant(conn, dirs: directory.Directory) -> dict:
    """Make every licence clean for the two rules under test (published the day of the decision,
    a valid code where one is needed), then plant known failures in DEPT's licences only."""
    versions: dict[str, dict] = {}
    for rid, p in current_licences(conn).items():
        p = dict(p)
        decided = parse_day(p.get("decided_on"))
        p["reported_at"] = f"{decided or date(2026, 6, 1)} 10:00:00"
        code = norm_code(p.get("uscc"))
        if code and code != PLACEHOLDER and not stdnum_uscc.is_valid(code):
            p["uscc"] = valid_uscc(rid)
        versions[rid] = p
    ours = sorted(
        rid
        for rid, p in versions.items()
        if dirs.resolve(p.get("dept_code")) == DEPT
        and p.get("party_category") == "法人及非法人组织"
        and p.get("uscc")
    )
    assert len(ours) >= 4, "the world has too few organisation licences of the department"
    bad_codes = ours[:2]
    for rid in bad_codes:
        versions[rid]["uscc"] = invalid_uscc(rid)
    versions[ours[2]]["uscc"] = PLACEHOLDER  # accepted, counted separately
    template = versions[ours[3]]
    for i, (rid, (decided, reported, _, _)) in enumerate(TIMELINESS.items(), start=1):
        p = dict(template)
        p.update(
            id=rid,
            decision_no=f"示环保许字〔测〕{i}号",
            uscc=valid_uscc(rid),
            decided_on=decided.isoformat(),
            valid_from=decided.isoformat(),
            valid_until=decided.replace(year=decided.year + 3).isoformat(),
            reported_at=f"{reported} 10:00:00" if reported else None,
        )
        versions[rid] = p
    add_versions(conn, versions)
    return {"bad_codes": bad_codes, "licences": versions}


@pytest.fixture(scope="module")
def run(pg_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quality")
    env = pytest.MonkeyPatch()
    env.setenv("MARKET_ACCESS_LOCAL_DIR", str(tmp / "local"))
    for var in ("QUALITY_DATA_DOCS_DIR", "QUALITY_RULES", "QUALITY_WORKERS"):
        env.delenv(var, raising=False)
    world = World(seed=11, scale=0.02)
    servers = make_servers(world)
    try:
        with scratch_database(pg_server, "t_quality") as cfg, warehouse.connect(cfg, autocommit=True) as conn:
            dirs = prepare(conn)
            sync_everything(conn, servers)
            inbox = tmp / "inbox"
            sim_submissions.generate(inbox, seed=1, quarter="2026Q2", day=0, directory=dirs)
            process_inbox(conn, inbox, dirs, settle_seconds=0)
            planted = plant(conn, dirs)
            run_dbt(BUILD, cfg, target_path=tmp / "dbt-target")
            summary = run_quality(cfg, settings=Settings(), as_of=AS_OF)
            print(f"quality run: {summary.duration_seconds} s {summary.timings}")
            yield {"cfg": cfg, "conn": conn, "summary": summary, "planted": planted, "dirs": dirs, "env": env}
    finally:
        for s in servers.values():
            s.stop()
        env.undo()


def result(conn, run_id: str, rule_id: str, dept: str = DEPT) -> dict:
    cur = conn.execute(
        "select * from ops.quality_results where run_id = %s and rule_id = %s and dept_code = %s",
        (run_id, rule_id, dept),
    )
    row = cur.fetchone()
    assert row is not None, (rule_id, dept)
    return dict(zip([d.name for d in cur.description], row, strict=True))


def failing_records(conn, run_id: str, rule_id: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for dept, rid in conn.execute(
        "select dept_code, record_id from ops.quality_row_failures where run_id = %s and rule_id = %s",
        (run_id, rule_id),
    ):
        out.setdefault(dept, set()).add(rid)
    return out


def test_the_calendar_by_hand():
    """The working days the planted cases rely on, from chinese-calendar (not from the SQL)."""
    for d in ("2025-01-26", "2025-02-08", "2025-09-28", "2025-10-11"):  # make-up working days
        assert chinese_calendar.is_workday(date.fromisoformat(d)), d
    for d in ("2025-01-28", "2025-02-04", "2025-10-01", "2025-10-08", "2026-06-19"):
        assert not chinese_calendar.is_workday(date.fromisoformat(d)), d
    for rid, (decided, reported, days, _) in TIMELINESS.items():
        if reported:
            assert working_days(decided, reported) == days, rid
    assert working_days(date(2026, 6, 10), date(2026, 6, 30)) == 13
    assert working_days(date(2026, 6, 26), date(2026, 6, 30)) == 2


def test_the_run_is_stored_with_its_data_docs(run):
    conn, summary = run["conn"], run["summary"]
    row = conn.execute(
        "select status, data_date, finished_at is not null, data_docs_dir from ops.quality_runs where run_id = %s",
        (summary.run_id,),
    ).fetchone()
    assert row[:3] == ("succeeded", AS_OF, True)
    docs = Path(row[3])
    assert docs == Settings().quality_data_docs_dir and (docs / "index.html").exists()
    page = result(conn, summary.run_id, "CR-LIC-008")["data_docs_page"]
    assert page.startswith(f"validations/{DEPT}/stg_credit__admin_licenses/") and (docs / page).exists()
    dept_page = (docs / "departments" / f"{DEPT}.html").read_text(encoding="utf-8")
    assert "区生态环境局" in dept_page and "CR-LIC-008" in dept_page and "QT-OCT-8WD" in dept_page
    # the suites of the run: one per department and asset, in the department's folder
    suite = (
        Settings().quality_dir
        / "gx"
        / summary.run_id
        / "expectations"
        / DEPT
        / "stg_credit__admin_licenses.json"
    )
    assert summary.run_id in {p.name for p in (Settings().quality_dir / "gx").iterdir()} and suite.exists()
    assert summary.status == "succeeded" and summary.data_date == AS_OF
    ours = {d.dept_code: d for d in summary.departments}[DEPT]
    assert ours.rules_failed >= 2 and ours.rules_evaluated > 40


def test_planted_invalid_codes_fail_exactly_in_that_department(run):
    conn, run_id, planted = run["conn"], run["summary"].run_id, run["planted"]
    dirs = run["dirs"]
    ours = [p for p in planted["licences"].values() if dirs.resolve(p.get("dept_code")) == DEPT]
    codes = [norm_code(p.get("uscc")) for p in ours]
    checked = sum(1 for c in codes if c and c != PLACEHOLDER)
    placeholders = sum(1 for c in codes if c == PLACEHOLDER)
    r = result(conn, run_id, "CR-LIC-002")
    assert (r["success"], r["failed_count"], r["evaluated_count"]) == (False, 2, checked)
    assert r["severity"] == "blocking" and r["level"] == "row" and r["category"] == "validity"
    assert sorted(r["sample_record_ids"]) == sorted(planted["bad_codes"])
    assert float(r["failed_share"]) == pytest.approx(2 / checked, abs=1e-6)
    assert f"个体工商户占位代码 00000000000000000X {placeholders} 条" in r["observed"]
    assert failing_records(conn, run_id, "CR-LIC-002") == {DEPT: set(planted["bad_codes"])}


def test_publication_deadlines_count_working_days_across_holidays(run):
    conn, run_id, planted, dirs = run["conn"], run["summary"].run_id, run["planted"], run["dirs"]
    late = {rid for rid, (*_, is_late) in TIMELINESS.items() if is_late}
    assert late == {"QT-OCT-8WD", "QT-SF-8WD", "QT-OPEN-LATE"}
    # judged: every licence of the department decided by 2026-06-30 except the one not yet due
    ours = [p for p in planted["licences"].values() if dirs.resolve(p.get("dept_code")) == DEPT]
    judged = sum(1 for p in ours if (parse_day(p.get("decided_on")) or AS_OF) < AS_OF) - 1
    r = result(conn, run_id, "CR-LIC-008")
    assert (r["success"], r["failed_count"], r["evaluated_count"]) == (False, 3, judged)
    assert (r["severity"], r["category"]) == ("warning", "timeliness")
    assert sorted(r["sample_record_ids"]) == sorted(late)
    assert r["observed"].startswith(f"已到期 {judged} 条, 逾期 3 条")
    assert r["deadline_zh"] == "作出决定之日起 7 个工作日内公示"
    assert r["basis_zh"] == "“双公示” (国办发〔2015〕51号, 国发〔2016〕33号)"
    assert failing_records(conn, run_id, "CR-LIC-008") == {DEPT: late}


def test_other_departments_do_not_fail_the_planted_rules(run):
    conn, run_id = run["conn"], run["summary"].run_id
    for rule_id in ("CR-LIC-002", "CR-LIC-008"):
        rows = conn.execute(
            "select dept_code, success, failed_count from ops.quality_results "
            "where run_id = %s and rule_id = %s and dept_code <> %s",
            (run_id, rule_id, DEPT),
        ).fetchall()
        assert len(rows) >= 10, rule_id  # the other departments with licences were checked
        assert all(ok and n == 0 for _, ok, n in rows), (rule_id, [r for r in rows if not r[1]])


def test_one_result_per_applicable_department(run):
    conn, run_id, dirs = run["conn"], run["summary"].run_id, run["dirs"]
    with_licences = {
        d
        for (d,) in conn.execute(
            f"""select distinct n.dept_code from {LICENCES} as t
                join staging.stg_directory__department_names as n
                  on n.name_key = coalesce(t.dept_code, util.clean_name(t.dept_ref_raw))"""
        )
    }
    answering = {d.code for d in dirs.answering_for("credit")}
    got = {
        d
        for (d,) in conn.execute(
            "select dept_code from ops.quality_results where run_id = %s and rule_id = 'CR-LIC-001'",
            (run_id,),
        )
    }
    assert got == with_licences & answering
    # dataset-level: every department that answers for the system gets its feed checked
    fresh = conn.execute(
        "select count(*), count(*) filter (where observed_on = %s) from ops.quality_results "
        "where run_id = %s and rule_id = 'GS-FEED-001'",
        (AS_OF, run_id),
    ).fetchone()
    assert fresh == (len(dirs.answering_for("gov_service")),) * 2
    # the market-supervision 20-day rule applies to the market-supervision department only
    ms = {
        d
        for (d,) in conn.execute(
            "select dept_code from ops.quality_results where run_id = %s and rule_id = 'CR-PEN-010'",
            (run_id,),
        )
    }
    assert ms <= {d.code for d in dirs.answering_for("market_supervision")}


def test_results_are_for_the_transformer_not_for_analysts(run):
    conn = run["conn"]
    for role, allowed in (("transformer", True), ("analyst", False)):
        conn.execute(f"set role {role}")
        try:
            for table in ("ops.quality_runs", "ops.quality_results", "ops.quality_row_failures"):
                if allowed:
                    conn.execute(f"select count(*) from {table}").fetchone()
                else:
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        conn.execute(f"select 1 from {table} limit 1")
        finally:
            conn.execute("reset role")
    owner = conn.execute(
        "select tableowner from pg_tables where schemaname = 'ops' and tablename = 'quality_results'"
    )
    assert owner.fetchone()[0] == "loader"
    # the run's batch tables are gone
    left = conn.execute(
        "select count(*) from pg_tables where tablename like 'quality\\_batch\\_\\_%'"
    ).fetchone()[0]
    assert left == 0


def test_a_failed_run_keeps_its_run_row_and_nothing_else(run, tmp_path):
    conn, env = run["conn"], run["env"]
    broken = (REPO / "config" / "quality_rules.yml").read_text(encoding="utf-8")
    broken = broken.replace(
        "kwargs: {column: online_depth, min_value: 0, max_value: 4}", "kwargs: {column: depth}"
    )
    path = tmp_path / "rules.yml"
    path.write_text(broken, encoding="utf-8")
    env.setenv("QUALITY_RULES", str(path))
    try:
        with pytest.raises(QualityConfigError) as err:
            run_quality(run["cfg"], settings=Settings(), as_of=AS_OF)
    finally:
        env.delenv("QUALITY_RULES")
    assert "rule GS-ITEM-003: 资产 staging.stg_gov_service__service_items 没有列 depth" in str(err.value)
    run_id, status = conn.execute(
        "select run_id, status from ops.quality_runs order by started_at desc limit 1"
    ).fetchone()
    assert status == "failed" and run_id != run["summary"].run_id
    for table in ("ops.quality_results", "ops.quality_row_failures"):
        assert conn.execute(f"select count(*) from {table} where run_id = %s", (run_id,)).fetchone()[0] == 0


def test_the_command_line_checks_one_department(run, capsys):
    from market_access.quality.__main__ import main

    conn, env = run["conn"], run["env"]
    env.setenv("AIRFLOW_CONN_WAREHOUSE", run["cfg"].airflow_uri())
    try:
        assert main(["run", "--as-of", AS_OF.isoformat(), "--departments", DEPT]) == 0
    finally:
        env.delenv("AIRFLOW_CONN_WAREHOUSE")
    out = capsys.readouterr().out
    assert f"数据日期 as of {AS_OF}, succeeded" in out and "合计 total" in out
    assert f"区生态环境局 {DEPT}" in out and "区市场监督管理局" not in out
    run_id = conn.execute(
        "select run_id from ops.quality_runs where status = 'succeeded' order by started_at desc limit 1"
    ).fetchone()[0]
    assert run_id != run["summary"].run_id and run_id in out
    depts = {
        d
        for (d,) in conn.execute(
            "select distinct dept_code from ops.quality_results where run_id = %s", (run_id,)
        )
    }
    assert depts == {DEPT}
    assert result(conn, run_id, "CR-LIC-008")["failed_count"] == 3
    assert failing_records(conn, run_id, "CR-LIC-002") == {DEPT: set(run["planted"]["bad_codes"])}


def test_failing_records_from_gx_match_those_from_the_batch_tables(run, monkeypatch):
    """Where the batch table cannot list a rule's failing rows, GX is asked (COMPLETE): same ids."""
    from market_access.quality import failing_rows

    conn = run["conn"]
    monkeypatch.setattr(failing_rows, "predicate", lambda rule, table: None)
    summary = run_quality(run["cfg"], settings=Settings(), as_of=AS_OF, departments=[DEPT])
    for rule_id in ("CR-LIC-002", "CR-LIC-008"):
        assert failing_records(conn, summary.run_id, rule_id) == failing_records(
            conn, run["summary"].run_id, rule_id
        ), rule_id

    def failures(run_id: str) -> set[tuple[str, str]]:
        return set(
            conn.execute(
                "select rule_id, record_id from ops.quality_row_failures where run_id = %s and dept_code = %s",
                (run_id, DEPT),
            ).fetchall()
        )

    # every rule of the department, not only the planted ones
    assert failures(summary.run_id) == failures(run["summary"].run_id)


# --- issue 5's chain on the planted department: rules → mails → marts ---------------------------

# a department collapse the engine must notice: DEPT has licences, so "at most 0 licences" fails
COLLAPSE_RULE = {
    "id": "QT-FEED-001",
    "asset": "quality.department_feeds",
    "source": "credit",
    "departments": [DEPT],
    "category": "volume",
    "level": "dataset",
    "severity": "阻断",
    "expectation": "expect_column_values_to_be_between",
    "kwargs": {"column": "stg_credit__admin_licenses__rows", "max_value": 0},
    "description_zh": "测试: 部门数据集级阻断规则 (视同数据量骤降)",
    "deadline_zh": "次日",
    "fix_zh": "测试规则, 无需整改",
}


@pytest.fixture(scope="module")
def chained(run, tmp_path_factory):
    """A second run with only the two planted rules and a failing dataset rule for DEPT, mailed
    through a real SMTP server on loopback, then the marts built on its verdicts."""
    import yaml
    from aiosmtpd.controller import Controller
    from test_alerts import Received, free_port, smtp_uri

    from market_access.alerts import send_alerts

    tmp = tmp_path_factory.mktemp("chain")
    catalogue = yaml.safe_load((REPO / "config" / "quality_rules.yml").read_text(encoding="utf-8"))
    catalogue["rules"] = [r for r in catalogue["rules"] if r["id"] in ("CR-LIC-002", "CR-LIC-008")]
    catalogue["rules"].append(COLLAPSE_RULE)
    rules = tmp / "rules.yml"
    rules.write_text(yaml.safe_dump(catalogue, allow_unicode=True, sort_keys=False), encoding="utf-8")
    handler = Received()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=handler, auth_require_tls=False
    )
    controller.start()
    env = run["env"]
    env.setenv("QUALITY_RULES", str(rules))
    env.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_uri(port))
    try:
        summary = run_quality(run["cfg"], settings=Settings(), as_of=AS_OF)
        alerts = send_alerts(run["cfg"], summary.run_id, settings=Settings())
        messages = handler.take()
        run_dbt(
            [
                "build",
                "--exclude",
                "resource_type:test",
                "resource_type:unit_test",
            ],
            run["cfg"],
            target_path=tmp / "dbt-target",
        )
        yield {**run, "summary": summary, "alerts": alerts, "messages": messages}
    finally:
        controller.stop()
        env.delenv("QUALITY_RULES", raising=False)
        env.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)


def test_one_mail_to_the_planted_department_and_one_bureau_summary(chained):
    dirs, messages = chained["dirs"], chained["messages"]
    dept = dirs.get(DEPT)
    bureau = dirs.bureau
    dept_mails = [m for m in messages if "数据质量告警" in str(m["msg"]["Subject"])]
    assert len(dept_mails) == 1, [str(m["msg"]["Subject"]) for m in messages]
    mail = dept_mails[0]
    assert sorted(mail["rcpt"]) == sorted(dept.alert_emails)
    assert dept.name in str(mail["msg"]["Subject"])
    text = mail["msg"].get_body(preferencelist=("plain",)).get_content()
    # the three failing rules with their counts, by hand: 2 bad codes, 3 late licences, 1 department
    assert "CR-LIC-002" in text and "未通过：2 条" in text
    assert "CR-LIC-008" in text and "未通过：3 条" in text
    assert "QT-FEED-001" in text
    for rid in ("QT-OCT-8WD", "QT-SF-8WD", "QT-OPEN-LATE"):
        assert rid in text
    # what the engine stored reaches the mail: the standard under 依据, the time limit under 期限,
    # the source by its name (AS_OF 2026-07-01 is a Wednesday: an ordinary day, all three are new)
    assert "依据：法人和其他组织统一社会信用代码编码规则 GB 32100-2015" in text
    assert "期限：作出决定之日起 7 个工作日内公示；本问题请于" in text
    assert "检查对象：信用信息共享平台 · 行政许可（逐条记录检查" in text
    assert "staging.stg_" not in text  # (the Data Docs file path may name the asset)
    assert text.count("【新发现】") == 3
    others = [m for m in messages if m is not mail]
    assert len(others) == 1  # the bureau's summary, nothing to any other department
    assert sorted(others[0]["rcpt"]) == sorted(bureau.alert_emails)


def test_blocking_failures_are_enforced_in_the_marts(chained):
    conn, planted = chained["conn"], chained["planted"]
    bad = set(planted["bad_codes"])
    # the two bad-code licences are left out of 双公示及时率 and named by their rule
    excluded = conn.execute(
        "select asset, record_id, rule_ids from intermediate.int_quality__blocking_records"
    ).fetchall()
    assert {(a, r) for a, r, _ in excluded} == {(LICENCES, r) for r in bad}
    years = conn.execute(
        "select distinct extract(year from decided_on)::int from marts.fct_licences where license_id = any(%s)",
        (list(bad),),
    ).fetchall()
    for (year,) in years:
        in_year = conn.execute(
            """select count(*) from marts.fct_licences
               where license_id = any(%s) and extract(year from decided_on) = %s""",
            (list(bad), year),
        ).fetchone()[0]
        pending = (
            conn.execute(
                """select count(*) from marts.fct_licences where dept_code = %s and is_publication_pending
               and extract(year from decided_on) = %s and not license_id = any(%s)""",
                (DEPT, year, list(bad)),
            ).fetchone()[0]
            + conn.execute(
                """select count(*) from marts.fct_penalties where dept_code = %s and is_publication_pending
               and extract(year from decided_on) = %s""",
                (DEPT, year),
            ).fetchone()[0]
        )
        count, reasons = conn.execute(
            """select excluded_count, excluded_reasons from marts.mart_credit_supervision
               where dept_code = %s and indicator_code = 'CR01' and period_type = 'year' and period_label = %s""",
            (DEPT, str(year)),
        ).fetchone()
        assert count == in_year + pending
        assert "质量规则阻断 CR-LIC-002" in reasons
    # the dataset-level failure on the run's data date (2026-07-01) makes DEPT's 2026 figures 待核实
    rows = conn.execute(
        """select period_label, publication_status, provisional_rule_ids from marts.mart_credit_supervision
           where dept_code = %s and indicator_code = 'CR01' and period_type = 'year'""",
        (DEPT,),
    ).fetchall()
    status = {label: (s, r) for label, s, r in rows}
    assert status["2026"] == ("待核实", "QT-FEED-001")
    assert status.get("2025", ("已发布", None)) == ("已发布", None)
    others = conn.execute(
        """select count(*) from marts.mart_credit_supervision
           where dept_code not in (%s, 'DISTRICT') and publication_status <> '已发布'""",
        (DEPT,),
    ).fetchone()[0]
    assert others == 0


def test_a_source_that_lost_its_data_is_a_blocking_finding_of_its_departments(run, monkeypatch):
    """Issue #12: the credit platform answers with a fraction of its history; the sync holds the
    resource (lands nothing) and the quality run fails CR-SYNC-001, blocking, for the departments
    that answer for the credit system — and for no one else."""
    # the whole catalogue: the module-scoped `chained` fixture, when it ran before this test, points
    # QUALITY_RULES at its two-rule catalogue until the end of the module
    monkeypatch.delenv("QUALITY_RULES", raising=False)
    import sys
    from datetime import UTC, datetime

    from market_access.load.sync import sync_resource
    from market_access.quality.service import beijing_today
    from market_access.sources import catalog
    from market_access.sources.client import ContractClient
    from market_access.sources.connection import SourceConnection

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worlds"))
    from contract_server import ContractServer, ContractWorld

    conn, cfg, dirs = run["conn"], run["cfg"], run["dirs"]
    res = catalog.system("credit").resource("admin-penalties")
    # what the fixture's sync landed: every penalty of the simulated world once
    (landed,) = conn.execute("select count(distinct record_id) from raw.credit__admin_penalties").fetchone()
    versions = conn.execute("select count(*) from raw.credit__admin_penalties").fetchone()[0]
    left = max(1, landed // 10)  # the source keeps a tenth: well below half
    server = ContractServer(ContractWorld(per_resource=left)).start()
    try:
        client = ContractClient(
            SourceConnection.from_uri("credit", server.uri("credit")), sleep=lambda s: None
        )
        held = sync_resource(conn, client, res, until=datetime.now(UTC))
    finally:
        server.stop()
    assert held.status == "held" and held.rows_inserted == 0
    assert conn.execute("select count(*) from raw.credit__admin_penalties").fetchone()[0] == versions
    today = beijing_today()
    answering = sorted(d.code for d in dirs.answering_for("credit"))
    other = next(d.code for d in dirs.departments if d.code not in answering and d.sources)
    summary = run_quality(cfg, settings=Settings(), as_of=today, departments=[answering[0], other])
    got = conn.execute(
        "select dept_code, success, severity, observed from ops.quality_results where run_id = %s and rule_id = 'CR-SYNC-001'",
        (summary.run_id,),
    ).fetchall()
    assert [(d, s, sev) for d, s, sev, _ in got] == [(answering[0], False, "blocking")]
    assert f"行政处罚 (admin-penalties): 现 {left} 条, 此前 {landed} 条" in got[0][3]
    # the other systems' history rules pass where they apply
    passed = conn.execute(
        "select bool_and(success) from ops.quality_results where run_id = %s and rule_id like '%%-SYNC-001' "
        "and rule_id <> 'CR-SYNC-001'",
        (summary.run_id,),
    ).fetchone()[0]
    assert passed is not False
