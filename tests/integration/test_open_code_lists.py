"""Open code lists (issue #9): evaluation channels the simulator never sends land in raw, `dbt build`
(with its tests) still succeeds, staging keeps every label, maps the known synonyms through the
seed code_lists and puts the rest under `other`; the quality run warns only the department that
sent the unknown labels (rule GS-EVAL-003)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date

import pytest
from test_sync import make_servers, sync_everything
from warehouse_world import prepare, scratch_database

from market_access import warehouse
from market_access.dbt import run_dbt
from market_access.quality import run_quality
from market_access.settings import Settings
from market_access.simulators.world import World

BUILD = ["build", "--select", "staging", "+int_calendar__days"]
AS_OF = date(2026, 7, 1)
# label sent → (channel, is_channel_mapped) expected, from seeds/staging/code_lists.csv by hand
PLANTED = {
    "PC端": ("online", True),
    " 移动端\u3000": ("mobile", True),  # trimmed, then the contract's own label
    "二维码": ("qr_code", True),
    "微信公众号": ("mobile", True),
    "": (None, None),  # nothing sent: no label, no code (a completeness rule's business)
    "意见箱": ("other", False),
    "线下信箱": ("other", False),
}
UNMAPPED = {"意见箱", "线下信箱"}


@pytest.fixture(scope="module")
def world_run(pg_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("codes")
    env = pytest.MonkeyPatch()
    env.setenv("MARKET_ACCESS_LOCAL_DIR", str(tmp / "local"))
    for var in ("QUALITY_DATA_DOCS_DIR", "QUALITY_RULES", "QUALITY_WORKERS"):
        env.delenv(var, raising=False)
    servers = make_servers(World(seed=11, scale=0.01))
    try:
        with scratch_database(pg_server, "t_codes") as cfg, warehouse.connect(cfg, autocommit=True) as conn:
            dirs = prepare(conn)
            sync_everything(conn, servers)
            planted = plant(conn, dirs)
            proc = run_dbt(BUILD, cfg, target_path=tmp / "dbt-target")  # raises if any model or test fails
            summary = run_quality(cfg, settings=Settings(), as_of=AS_OF)
            yield {"conn": conn, "planted": planted, "summary": summary, "dbt": proc}
    finally:
        for s in servers.values():
            s.stop()
        env.undo()


def plant(conn, dirs) -> dict[str, tuple[str, str]]:
    """New versions of seven evaluations of one department, one per label; returns id → (label, dept)."""
    rows = conn.execute(
        """select distinct on (record_id) record_id, payload from raw.gov_service__evaluations
           where not is_deleted order by record_id, source_updated_at desc, raw_id desc"""
    ).fetchall()
    by_dept: dict[str, list] = {}
    for rid, p in rows:
        dept = dirs.resolve(p.get("dept_code"))
        if dept:
            by_dept.setdefault(dept, []).append((rid, p))
    dept, records = max(by_dept.items(), key=lambda kv: len(kv[1]))
    batch = conn.execute("select nextval('ops.batch_id_seq')").fetchone()[0]
    planted = {}
    with conn.cursor() as cur:
        for (rid, p), label in zip(sorted(records, key=lambda r: r[0]), PLANTED, strict=False):
            p = {**p, "channel": label}
            body = json.dumps(p, ensure_ascii=False)
            cur.execute(
                """insert into raw.gov_service__evaluations
                       (record_id, source_updated_at, is_deleted, payload, payload_md5, _batch_id)
                   values (%s, timestamptz '2026-06-30 23:59:59+08', false, %s, %s, %s)""",
                (rid, body, str(uuid.UUID(hashlib.md5(body.encode()).hexdigest())), batch),
            )
            planted[rid] = (label, dept)
    assert len(planted) == len(PLANTED)
    return planted


def test_staging_keeps_the_labels_and_maps_what_it_knows(world_run):
    conn = world_run["conn"]
    for rid, (label, _) in world_run["planted"].items():
        got = conn.execute(
            """select channel_label, channel, is_channel_mapped
               from staging.stg_gov_service__evaluations where evaluation_id = %s""",
            (rid,),
        ).fetchone()
        cleaned = label.strip(" \u3000") or None
        assert got == (cleaned, *PLANTED[label]), (label, got)


def test_the_build_ran_every_test_and_none_failed(world_run):
    out = world_run["dbt"].stdout
    assert "accepted_values_stg_gov_service__evaluations_channel" in out
    assert "ERROR=0 " in out and "Completed successfully" in out, out[-2000:]


def test_unmapped_labels_warn_only_the_department_that_sent_them(world_run):
    conn, summary = world_run["conn"], world_run["summary"]
    dept = next(iter(world_run["planted"].values()))[1]
    ours = {rid for rid, (label, _) in world_run["planted"].items() if label in UNMAPPED}
    rows = conn.execute(
        """select dept_code, success, severity, failed_count from ops.quality_results
           where run_id = %s and rule_id = 'GS-EVAL-003'""",
        (summary.run_id,),
    ).fetchall()
    by_dept = {d: (ok, sev, n) for d, ok, sev, n in rows}
    # the simulator sends only 窗口 / 网上 / 移动端 / 短信 (all in code_lists): just the two planted fail
    assert by_dept[dept] == (False, "warning", 2)
    assert all(ok for d, (ok, _, _) in by_dept.items() if d != dept), by_dept
    failing = {
        r[0]
        for r in conn.execute(
            "select record_id from ops.quality_row_failures where run_id = %s and rule_id = 'GS-EVAL-003'",
            (summary.run_id,),
        )
    }
    assert failing == ours
