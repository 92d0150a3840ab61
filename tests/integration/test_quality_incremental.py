"""The incremental quality run gives what a full run gives (issue 13).

A small simulated world is landed, staging built and a full quality run made (and mailed) for
2026-07-01. Then a new load batch changes the data of three departments only: two departments'
双公示 licences and a third one's 办件. Staging is rebuilt incrementally, and the warehouse is
copied (`create database … template …`). On the next day, 2026-07-02, one copy gets the
incremental run, the other a forced full run; each is mailed through a real SMTP server on
loopback and gets its quality scorecard built by dbt. Results, failing records, mails and
scorecard rows must be the same, minus run ids, timestamps and the Data Docs file names (they
carry GX's run time); and the incremental run must have validated the `records` rules of exactly
the three changed (asset, department) pairs, and every dated and whole-dataset rule.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import uuid
from datetime import date

import psycopg
import pytest
from stdnum.cn import uscc as stdnum_uscc
from test_sync import make_servers, sync_everything  # sibling modules: pytest puts their folder on sys.path
from warehouse_world import prepare, scratch_database

from market_access import directory, warehouse
from market_access.dbt import grant_transformer, run_dbt
from market_access.quality import catalogue as catalogue_mod
from market_access.quality import incremental, run_quality
from market_access.settings import Settings
from market_access.simulators import submissions as sim_submissions
from market_access.simulators.world import World
from market_access.submissions.inbox import process_inbox

# the module's fixture makes three quality runs and three dbt builds: more than the suite's 900 s
# per test on a busy machine
pytestmark = pytest.mark.timeout(1800)

BUILD = [
    "build",
    "--select",
    "staging",
    "+int_calendar__days",
    "--exclude",
    "resource_type:test",
    "resource_type:unit_test",
]
SCORECARD = ["run", "--select", "+mart_data_quality_scorecard"]
BASE_DAY = date(2026, 7, 1)  # the world's data runs to 2026-06-30
DAY = date(2026, 7, 2)  # the next day, a Thursday: not the digest weekday (Monday)
LICENCES = "staging.stg_credit__admin_licenses"
CASES = "staging.stg_gov_service__cases"
PLACEHOLDER = "00000000000000000X"


def current(conn, table: str) -> dict[str, dict]:
    rows = conn.execute(
        f"""select distinct on (record_id) record_id, is_deleted, payload from {table}
            order by record_id, source_updated_at desc, raw_id desc"""
    ).fetchall()
    return {rid: payload for rid, deleted, payload in rows if not deleted}


def land(conn, table: str, versions: dict[str, dict]) -> None:
    """One new load batch of new versions (newer than any delivered one)."""
    batch = conn.execute("select nextval('ops.batch_id_seq')").fetchone()[0]
    with conn.cursor() as cur:
        cur.executemany(
            f"""insert into {table} (record_id, source_updated_at, is_deleted, payload, payload_md5, _batch_id)
                values (%s, timestamptz '2026-07-01 09:00:00+08', false, %s, %s, %s)""",
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


def change_three_departments(conn, dirs) -> dict[tuple[str, str], str]:
    """Change the data of three departments only; returns (asset, dept_code) → what changed."""
    licences = current(conn, "raw.credit__admin_licenses")
    by_dept: dict[str, list[str]] = {}
    for rid, p in sorted(licences.items()):
        code = p.get("uscc")
        if p.get("party_category") == "法人及非法人组织" and code and stdnum_uscc.is_valid(code):
            dept = dirs.resolve(p.get("dept_code"))
            if dept:
                by_dept.setdefault(dept, []).append(rid)
    a, b = sorted(by_dept, key=lambda d: (-len(by_dept[d]), d))[:2]
    versions = {}
    rid = by_dept[a][0]  # a valid code with a wrong check character: CR-LIC-002 fails
    good = licences[rid]["uscc"]
    versions[rid] = dict(licences[rid], uscc=good[:-1] + next(c for c in "0123456789" if c != good[-1]))
    rid = by_dept[b][0]  # the 个体工商户 placeholder: counted separately by CR-LIC-002
    versions[rid] = dict(licences[rid], uscc=PLACEHOLDER)
    land(conn, "raw.credit__admin_licenses", versions)

    cases = current(conn, "raw.gov_service__cases")
    case_depts = sorted(
        {dirs.resolve(p.get("dept_code")) for p in cases.values()} - {a, b, None},
    )
    c = case_depts[0]
    rid = next(r for r, p in sorted(cases.items()) if dirs.resolve(p.get("dept_code")) == c)
    land(conn, "raw.gov_service__cases", {rid: dict(cases[rid], supplement_count=-1)})  # GS-CASE-008
    return {
        (LICENCES, a): "invalid code",
        (LICENCES, b): "placeholder code",
        (CASES, c): "supplement_count -1",
    }


def clone(pg_server, source: warehouse.WarehouseConfig, name: str) -> warehouse.WarehouseConfig:
    with warehouse.connect(pg_server, autocommit=True) as conn:
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
            (source.dbname,),
        )
        conn.execute(f'create database "{name}" template "{source.dbname}"')
    twin = dataclasses.replace(source, dbname=name)
    with warehouse.connect(twin, autocommit=True) as conn:
        grant_transformer(conn)  # a database's own grants are not copied from its template
    return twin


def drop(pg_server, name: str) -> None:
    with warehouse.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="module")
def twins(pg_server, tmp_path_factory):
    from aiosmtpd.controller import Controller
    from test_alerts import Received, free_port, smtp_uri

    from market_access.alerts import send_alerts

    tmp = tmp_path_factory.mktemp("quality_incremental")
    env = pytest.MonkeyPatch()
    env.setenv("MARKET_ACCESS_LOCAL_DIR", str(tmp / "local"))
    for var in (
        "QUALITY_DATA_DOCS_DIR",
        "QUALITY_RULES",
        "QUALITY_WORKERS",
        "QUALITY_FULL_RUN",
        "QUALITY_AS_OF",
    ):
        env.delenv(var, raising=False)
    handler = Received()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=handler, auth_require_tls=False
    )
    controller.start()
    env.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_uri(port))
    world = World(seed=11, scale=0.02)
    servers = make_servers(world)
    twin = None
    try:
        with scratch_database(pg_server, "t_qinc") as cfg:
            with warehouse.connect(cfg, autocommit=True) as conn:
                dirs = prepare(conn)
                sync_everything(conn, servers)
                inbox = tmp / "inbox"
                sim_submissions.generate(inbox, seed=1, quarter="2026Q2", day=0, directory=dirs)
                process_inbox(conn, inbox, dirs, settle_seconds=0)
            run_dbt(BUILD, cfg, target_path=tmp / "dbt-target")
            env.setenv("QUALITY_DATA_DOCS_DIR", str(tmp / "docs-incremental"))
            base = run_quality(cfg, settings=Settings(), as_of=BASE_DAY)
            send_alerts(cfg, base.run_id, settings=Settings())
            handler.take()
            with warehouse.connect(cfg, autocommit=True) as conn:
                changed = change_three_departments(conn, dirs)
            run_dbt(BUILD, cfg, target_path=tmp / "dbt-target")  # incremental: the new batch only
            twin = clone(pg_server, cfg, f"{cfg.dbname}_full")
            out = {"base": base, "changed": changed, "dirs": dirs, "tmp": tmp, "env": env}
            for label, where, full in (("incremental", cfg, False), ("full", twin, True)):
                env.setenv("QUALITY_DATA_DOCS_DIR", str(tmp / f"docs-{label}"))
                summary = run_quality(where, settings=Settings(), as_of=DAY, full=full)
                send_alerts(where, summary.run_id, settings=Settings())
                messages = handler.take()
                run_dbt(SCORECARD, where, target_path=tmp / f"dbt-target-{label}")
                out[label] = {"cfg": where, "summary": summary, "messages": messages}
            yield out
    finally:
        if twin is not None:
            drop(pg_server, twin.dbname)
        for s in servers.values():
            s.stop()
        controller.stop()
        env.undo()


def rows(cfg, query: str, *params) -> list[tuple]:
    with warehouse.connect(cfg, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def docs_page(page: str | None) -> str | None:
    """A Data Docs page without the GX run name and time in its file name."""
    return re.sub(r"^(validations/[^/]+/[^/]+)/.*$", r"\1/…", page) if page else page


RESULT_COLUMNS = (
    "rule_id, dept_code, asset, source, level, category, severity, success, evaluated_count, failed_count, "
    "failed_share, sample_record_ids, observed_on, observed, description_zh, fix_zh, deadline_zh, basis_zh, "
    "data_docs_page"
)


def results(side: dict) -> list[tuple]:
    got = rows(
        side["cfg"],
        f"select {RESULT_COLUMNS} from ops.quality_results where run_id = %s order by dept_code, rule_id",
        side["summary"].run_id,
    )
    return [(*r[:-1], docs_page(r[-1])) for r in got]


def test_the_incremental_run_carries_and_the_full_run_does_not(twins):
    inc, full = twins["incremental"]["summary"], twins["full"]["summary"]
    assert (
        twins["base"].mode == "full" and twins["base"].base_run_id is None
    )  # the first run: nothing before it
    assert (inc.mode, inc.base_run_id) == ("incremental", twins["base"].run_id)
    assert inc.carried > 0 and inc.revalidated > 0
    assert (full.mode, full.carried, full.base_run_id) == ("full", 0, None)
    assert "forced" in full.mode_reason_zh
    assert inc.status == full.status and inc.not_checked == full.not_checked
    assert inc.revalidated + inc.carried == full.revalidated  # every result, one way or the other
    mode, base, info = rows(
        twins["incremental"]["cfg"],
        "select mode, base_run_id, validation from ops.quality_runs where run_id = %s",
        inc.run_id,
    )[0]
    assert (mode, base) == ("incremental", twins["base"].run_id)
    assert (info["revalidated"], info["carried"]) == (inc.revalidated, inc.carried)


def test_results_and_failing_records_are_those_of_a_full_run(twins):
    inc, full = twins["incremental"], twins["full"]
    assert results(inc) == results(full)
    assert len(results(full)) == full["summary"].revalidated
    query = (
        "select rule_id, asset, dept_code, record_id, severity from ops.quality_row_failures "
        "where run_id = %s order by 1, 2, 3, 4"
    )
    assert rows(inc["cfg"], query, inc["summary"].run_id) == rows(full["cfg"], query, full["summary"].run_id)
    # the planted changes are in both: the wrong check character fails CR-LIC-002, -1 fails GS-CASE-008
    assert sorted(twins["changed"].values()) == ["invalid code", "placeholder code", "supplement_count -1"]
    for (_asset, dept), what in twins["changed"].items():
        rule = {
            "invalid code": "CR-LIC-002",
            "placeholder code": "CR-LIC-002",
            "supplement_count -1": "GS-CASE-008",
        }[what]
        (ok, failed, observed) = rows(
            inc["cfg"],
            "select success, failed_count, observed from ops.quality_results where run_id = %s "
            "and rule_id = %s and dept_code = %s",
            inc["summary"].run_id,
            rule,
            dept,
        )[0]
        if what == "placeholder code":
            assert "个体工商户占位代码 00000000000000000X" in observed
        else:
            assert not ok and failed >= 1, (what, observed)


def test_it_revalidated_only_the_changed_departments_and_every_dated_and_whole_dataset_rule(twins):
    inc = twins["incremental"]
    catalogue = catalogue_mod.load(Settings().quality_rules_file)
    classes = incremental.classes(catalogue)
    got = rows(
        inc["cfg"],
        "select rule_id, asset, dept_code, carried_from from ops.quality_results where run_id = %s",
        inc["summary"].run_id,
    )
    base = twins["base"].run_id
    revalidated_records = {
        (a, d) for r, a, d, carried in got if carried is None and classes[r] == incremental.RECORDS
    }
    assert revalidated_records == set(twins["changed"])
    for rule_id, asset, dept, carried in got:
        if classes[rule_id] != incremental.RECORDS:
            assert carried is None, (rule_id, dept)  # dated and whole-dataset rules: validated today
        elif (asset, dept) in twins["changed"]:
            assert carried is None, (rule_id, dept)
        else:
            assert carried == base, (rule_id, dept)
    # the operator sees it: the department's page marks each result, and the run says so
    (info,) = rows(
        inc["cfg"], "select validation from ops.quality_runs where run_id = %s", inc["summary"].run_id
    )[0]
    assert set(info["records_revalidated"]) == {f"{a}|{d}" for a, d in twins["changed"]}
    dept = next(d for (a, d) in twins["changed"])
    page = twins["tmp"] / "docs-incremental" / "departments" / f"{dept}.html"
    text = page.read_text(encoding="utf-8")
    assert "本次检查" in text and f"沿用 {base}" in text


@pytest.mark.xfail(
    reason="open: one carried result's Data Docs page (of the base run) was not found after the "
    "incremental run (seen once, 2026-12-01, not yet explained)",
    strict=False,
)
def test_carried_results_keep_their_data_docs_pages(twins):
    inc = twins["incremental"]
    page = twins["tmp"] / "docs-incremental" / "departments" / "index.html"
    carried_pages = rows(
        inc["cfg"],
        "select distinct data_docs_page from ops.quality_results where run_id = %s and carried_from is not null",
        inc["summary"].run_id,
    )
    assert carried_pages
    for (p,) in carried_pages:
        assert (page.parent.parent / p).exists(), p


def mail(m: dict, run_ids: set[str], docs: list[str]) -> tuple:
    msg = m["msg"]
    parts = []
    for kind in ("plain", "html"):
        body = msg.get_body(preferencelist=(kind,))
        text = body.get_content() if body is not None else ""
        for rid in run_ids:
            text = text.replace(rid, "<run>")
        for d in docs:  # each twin has its own Data Docs folder
            text = text.replace(d, "<docs>")
        # the bureau summary states when each run started and finished: the twins ran one after the other
        text = re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?= (开始|结束))", "<time>", text)
        # Data Docs links name GX's run time; the incremental run's carried ones name the base run's
        text = re.sub(r"(validations/[^/\s\"'<>]+/[^/\s\"'<>]+)/[^\s\"'<>]*", r"\1/…", text)
        parts.append(text)
    subject = str(msg["Subject"])
    for rid in run_ids:
        subject = subject.replace(rid, "<run>")
    return (tuple(sorted(m["rcpt"])), str(msg["Cc"] or ""), subject, *parts)


def test_the_mails_are_those_of_a_full_run(twins):
    inc, full = twins["incremental"], twins["full"]
    ids = {inc["summary"].run_id, full["summary"].run_id, twins["base"].run_id}
    docs = [str(twins["tmp"] / "docs-incremental"), str(twins["tmp"] / "docs-full")]
    got = sorted(mail(m, ids, docs) for m in inc["messages"])
    want = sorted(mail(m, ids, docs) for m in full["messages"])
    assert len(want) >= 2  # the bureau's summary and at least the department with a new failure
    assert got == want
    # the department whose licence got a wrong check character is told about it (new, same day)
    (a,) = [d for (asset, d), what in twins["changed"].items() if what == "invalid code"]
    name = twins["dirs"].get(a).name
    mine = [m for m in got if name in m[2]]
    assert mine and "CR-LIC-002" in mine[0][3]


def test_the_scorecard_rows_are_those_of_a_full_run(twins):
    inc, full = twins["incremental"], twins["full"]
    query = (
        "select scorecard_row_id, dept_code, dept_name, source, quality_date, rules_evaluated, rules_passed, "
        "rules_failed, blocking_rules_failed, failed_rows, evaluated_rows, on_time_share, failed_rule_ids "
        "from marts.mart_data_quality_scorecard order by scorecard_row_id"
    )
    got, want = rows(inc["cfg"], query), rows(full["cfg"], query)
    assert [r for r in want if r[4] == DAY] and got == want


def test_doubt_makes_a_full_run(twins):
    """Each reason for doubt, asked of the decision on the incremental run's warehouse."""
    inc = twins["incremental"]
    with warehouse.connect(inc["cfg"], autocommit=True) as conn:
        fp = conn.execute(
            "select config_fingerprint from ops.quality_runs where run_id = %s", (inc["summary"].run_id,)
        ).fetchone()[0]
        assert fp == incremental.config_fingerprint(conn, Settings().quality_rules_file)

        def decide(as_of=DAY, fp=fp, **kw):
            kw.setdefault("force_full", False)
            kw.setdefault("departments", None)
            return incremental.decide(conn, "q-next", as_of, fp, **kw)

        assert decide().mode == "incremental" and decide().base_run_id == inc["summary"].run_id
        assert decide(force_full=True).mode == "full"
        assert decide(departments=["113604210795604218"]).mode == "full"
        assert decide(fp="another catalogue").mode == "full"  # catalogue, directory or code changed
        assert decide(as_of=date(2026, 8, 1)).mode == "full"  # a month boundary
        assert decide(as_of=BASE_DAY).mode == "full"  # earlier than the previous run
        # the directory is part of the fingerprint (the change is rolled back)
        with conn.transaction():
            conn.execute("update raw.directory__departments set freshness_days = freshness_days + 1")
            assert incremental.config_fingerprint(conn, Settings().quality_rules_file) != fp
            raise psycopg.Rollback()
        assert incremental.config_fingerprint(conn, Settings().quality_rules_file) == fp
        # …but not the directory's load: reloaded as it is (a new batch, a new load time, as every
        # `make run` does), the fingerprint stays and the next run is still incremental
        directory.load_into_warehouse(conn, twins["dirs"])
        assert incremental.config_fingerprint(conn, Settings().quality_rules_file) == fp
        assert decide().mode == "incremental"
    with warehouse.connect(inc["cfg"], autocommit=True) as conn:
        conn.execute("set role loader")
        # a previous run that failed (or is still running): full
        conn.execute(
            "insert into ops.quality_runs (run_id, started_at, data_date, status) "
            "values ('q-failed', now(), %s, 'failed')",
            (DAY,),
        )
        try:
            d = incremental.decide(conn, "q-next", DAY, fp, force_full=False, departments=None)
            assert d.mode == "full" and "q-failed" in d.reason_zh
        finally:
            conn.execute("delete from ops.quality_runs where run_id = 'q-failed'")


def test_a_run_that_validated_nothing_does_not_say_succeeded(twins, tmp_path):
    """A catalogue of one records rule: its first run is full (the catalogue changed), the second
    finds nothing changed and carries everything — it validated nothing itself: incomplete."""
    import yaml

    inc, env = twins["incremental"], twins["env"]
    doc = yaml.safe_load(Settings().quality_rules_file.read_text(encoding="utf-8"))
    doc["rules"] = [r for r in doc["rules"] if r["id"] == "CR-LIC-002"]
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env.setenv("QUALITY_RULES", str(rules))
    env.setenv("QUALITY_DATA_DOCS_DIR", str(twins["tmp"] / "docs-incremental"))
    try:
        first = run_quality(inc["cfg"], settings=Settings(), as_of=DAY)
        second = run_quality(inc["cfg"], settings=Settings(), as_of=DAY)
    finally:
        env.delenv("QUALITY_RULES")
    assert (first.mode, first.status) == ("full", "succeeded") and first.revalidated > 0
    assert (second.mode, second.revalidated, second.carried) == ("incremental", 0, first.revalidated)
    assert second.status == "incomplete"
    assert [n["reason"] for n in second.not_checked] == ["no_rules"]
