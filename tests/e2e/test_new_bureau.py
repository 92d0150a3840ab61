"""A new bureau from a fresh start (issue #9): its own warehouse (PostgreSQL 15, issue #10,
reached through AIRFLOW_CONN_WAREHOUSE), four systems served by an independent contract server
(AIRFLOW_CONN_<SYSTEM>), a directory of eight departments and an inbox with files from only one of
them. Three `make run`s — faults on; a day later; quiet — all exit 0 with every DAG through
`airflow dags test`, and the marts, the composite evaluation included, are built.

Secrets (issue #12, situation 5): distinctive client secrets, warehouse password, SMTP password (a
real SMTP server with AUTH on loopback) and pseudonym key are planted; after the three runs no file
under the run's folders — Airflow task logs and metadata DB (XCom, rendered template fields), dbt
target/ and logs/, the Cosmos cache, Data Docs, receipts, the mails as received — holds any of them."""

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
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from contract_server import DEPARTMENTS, SYSTEMS, ContractServer, ContractWorld, directory_csv  # noqa: E402
from first_inbox import write_inbox  # noqa: E402
from secret_scan import scan_airflow_db, scan_files  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
# distinctive values: nothing else in a run can contain them by chance
CLIENT_SECRET = "QsClientSecret-7Hx2Vb9Q"
SMTP_USER, SMTP_PASSWORD = "alerts@qingshan.example.cn", "QsSmtpPassword-4Kd8Rm2W"
HMAC_KEY = "QsHmacKey-Zp3nV8cR-" + "5e1f" * 8

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


@pytest.fixture
def smtp_server(tmp_path):
    """A real SMTP server on loopback that wants AUTH; every message it accepts is kept as an .eml."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    received = tmp_path / "smtp"
    received.mkdir()

    class Handler:
        count = 0

        async def handle_DATA(self, server, session, envelope):
            Handler.count += 1
            (received / f"{Handler.count:04d}.eml").write_bytes(bytes(envelope.content))
            return "250 Message accepted for delivery"

        def __call__(self, server, session, envelope, mechanism, auth):
            return AuthResult(
                success=(auth.login.decode(), auth.password.decode()) == (SMTP_USER, SMTP_PASSWORD)
            )

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = Handler()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=handler, auth_require_tls=False
    )
    controller.start()
    from urllib.parse import quote

    yield (
        f"smtp://{quote(SMTP_USER, safe='')}:{quote(SMTP_PASSWORD, safe='')}@127.0.0.1:{port}"
        f"?disable_ssl=true&disable_tls=true&from_email={quote(SMTP_USER, safe='')}",
        received,
    )
    controller.stop()


def test_three_make_runs_of_a_new_bureau(own_warehouse, smtp_server, tmp_path):
    world = ContractWorld(seed=9, per_resource=30)
    server = ContractServer(world, client_secret=CLIENT_SECRET, faults=True).start()
    smtp_uri, received = smtp_server
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
        MARKET_ACCESS_HMAC_KEY=HMAC_KEY,
        MARKET_ACCESS_HMAC_KEY_ID="qs-e2e-1",
        AIRFLOW_CONN_SMTP_DEFAULT=smtp_uri,
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
    assert list(received.glob("*.eml")), "no mail reached the SMTP server"

    # situation 5: no planted secret in any file the runs wrote, nor in Airflow's metadata tables
    planted = {
        "client secret": CLIENT_SECRET,
        "warehouse password": cfg.password,
        "SMTP password": SMTP_PASSWORD,
        "pseudonym key": HMAC_KEY,
    }
    local = tmp_path / "local"
    folders = [
        local,
        received,
        inbox,
        REPO / "dbt_project" / "target",
        REPO / "dbt_project" / "logs",
        REPO / "expectations",
    ]
    assert (local / "airflow").is_dir() and (local / "logs").is_dir()
    leaks = scan_files(folders, planted)
    leaks += scan_airflow_db(next((local / "airflow").glob("*.db")), planted)
    leaks += [
        f"make run output: {name}"
        for name, v in planted.items()
        for out in (first, second, third)
        if v in out
    ]
    assert leaks == [], "secrets found:\n" + "\n".join(leaks)
