"""A new bureau from a fresh start (issue #9): its own warehouse (PostgreSQL 15, issue #10,
reached through AIRFLOW_CONN_WAREHOUSE), four systems served by an independent contract server
(AIRFLOW_CONN_<SYSTEM>), a directory of eight departments and an inbox with files from only one of
them. Three `make run`s — faults on; a day later; quiet — all exit 0 with every DAG through
`airflow dags test`, and the marts, the composite evaluation included, are built."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from market_access import warehouse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worlds"))
from contract_server import DEPARTMENTS, SYSTEMS, ContractServer, ContractWorld, directory_csv  # noqa: E402
from first_inbox import write_inbox  # noqa: E402

# three `make run`s through Airflow: each takes minutes
pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(3600)]

BUREAU, NDRC, SCJ, SPJ, JTJ, WLJ, YJJ, JYJ = DEPARTMENTS


@pytest.fixture
def own_warehouse(pg15_server):
    """A warehouse of the bureau's own: a `warehouse` database on an operator's PostgreSQL 15
    (Debian's server, tests/pg_servers.py), where the platform logs in as a non-superuser with a
    password over TCP, reached only through its postgresql:// URI."""
    name = f"warehouse_{uuid.uuid4().hex[:6]}"
    with warehouse.connect(pg15_server, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    yield dataclasses.replace(pg15_server, dbname=name)
    with warehouse.connect(pg15_server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def make_run(env: dict[str, str]) -> tuple[str, float]:
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "market_access", "run"], env=env, capture_output=True, text=True, timeout=1500
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    return out.stdout, time.monotonic() - started


def test_three_make_runs_of_a_new_bureau(own_warehouse, tmp_path):
    world = ContractWorld(seed=9, per_resource=30)
    server = ContractServer(world, faults=True).start()
    (tmp_path / "departments.csv").write_text(directory_csv(), encoding="utf-8")
    inbox = tmp_path / "inbox"
    from datetime import datetime

    from contract_server import BEIJING

    today = datetime.now(BEIJING).date()
    write_inbox(inbox, NDRC, today)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SYNC_", "SIM_", "QUALITY_"))}
    env.update(
        MARKET_ACCESS_LOCAL_DIR=str(tmp_path / "local"),
        AIRFLOW_CONN_WAREHOUSE=own_warehouse.airflow_uri(),
        DEPARTMENTS_CSV=str(tmp_path / "departments.csv"),
        SUBMISSIONS_INBOX=str(inbox),
        MARKET_ACCESS_HMAC_KEY="qingshan-e2e-key-" + "0123456789abcdef" * 2,
        MARKET_ACCESS_HMAC_KEY_ID="qs-e2e-1",
        **{f"AIRFLOW_CONN_{s.upper()}": server.uri(s) for s in SYSTEMS},
    )
    timings = {}
    try:
        first, timings["faults on"] = make_run(env)
        assert server.faults_served, "the faults switch served no fault"
        server.faults = False
        changes = world.advance()
        second, timings["a day later"] = make_run(env)
        world.advance(quiet=True)
        third, timings["quiet"] = make_run(env)
    finally:
        server.stop()
        print("make run timings (s):", {k: round(v) for k, v in timings.items()})
    for out in (first, second, third):
        assert "✓ all DAGs succeeded" in out
    cfg = own_warehouse
    for out in (first, second, third):
        assert f"{warehouse.ENV_VAR} is set → {cfg.display()}" in out  # no embedded server was started
    with warehouse.connect(cfg, autocommit=True) as conn:
        # the operator's PostgreSQL 15, and the platform's login is no superuser
        assert conn.info.server_version // 10000 == 15
        assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone() == (False,)
        # every record the server holds landed (credit-repairs: zero records, an empty table)
        for (system, resource), recs in world.records.items():
            table = f"raw.{system}__{resource.replace('-', '_')}"
            n = conn.execute(f"select count(distinct record_id) from {table}").fetchone()[0]
            assert n == len(recs), table
        assert changes["new"] > 0
        # the quality runs: honest about what they could not check (credit-repairs, the templates
        # nobody sent a usable file of), never "succeeded" with nothing checked
        runs = conn.execute("select status, not_checked from ops.quality_runs order by started_at").fetchall()
        assert [s for s, _ in runs] == ["incomplete"] * 3
        assert {n["relation"] for n in runs[-1][1]} >= {"staging.stg_credit__credit_repairs"}
        # the marts, the composite evaluation included
        assert conn.execute("select count(*) from marts.mart_composite_evaluation").fetchone()[0] > 0
        # the evaluations with labels our simulators never send: all of them kept
        assert conn.execute("select count(*) from staging.stg_gov_service__evaluations").fetchone()[0] == sum(
            1 for r in world.records[("gov_service", "evaluations")].values() if not r["is_deleted"]
        )
        # 教育局 (no sources) has no indicator rows and got no mail
        assert (
            conn.execute(
                "select count(*) from marts.mart_approval_efficiency where dept_code = %s", (JYJ.code,)
            ).fetchone()[0]
            == 0
        )
        mailed = {
            a
            for (to,) in conn.execute("select to_addrs from ops.alert_messages").fetchall()
            for a in (to or [])
        }
        assert JYJ.email not in mailed and SCJ.email in mailed
    assert "not checked" in third
