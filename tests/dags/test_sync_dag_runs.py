"""The sync DAGs run for real through `airflow dags test` against the simulators and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from market_access.simulators.server import SimulatorServer
from market_access.simulators.world import World
from market_access.sources import catalog

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def dags_test(dag_id: str, env: dict) -> subprocess.CompletedProcess:
    airflow = str(Path(sys.executable).with_name("airflow"))
    return subprocess.run([airflow, "dags", "test", dag_id], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def credit_server():
    world = World(seed=21, scale=0.01)
    srv = SimulatorServer(world, "credit", port=0, client_id="credit-client", client_secret="right").start()
    yield world, srv
    srv.stop()


def test_sync_credit_dag_lands_every_resource(airflow_db, warehouse_cfg, wconn, credit_server):
    world, srv = credit_server
    env = dict(os.environ)
    env["AIRFLOW_CONN_CREDIT"] = srv.url.replace("://", "://credit-client:right@", 1)
    env["AIRFLOW_CONN_WAREHOUSE"] = warehouse_cfg.airflow_uri()
    out = dags_test("sync_credit", env)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    for res in catalog.system("credit").resources:
        n = wconn.execute(f"select count(distinct record_id) from {res.qualified_table}").fetchone()[0]
        assert n == len(world.truth("credit", res.name)), res.name
    statuses = {r[0] for r in wconn.execute("select last_status from ops.sync_state")}
    assert statuses == {"succeeded"}


def test_wrong_secret_fails_the_dag_at_once_without_retries(
    airflow_db, warehouse_cfg, wconn, credit_server, tmp_path
):
    _, srv = credit_server
    env = dict(os.environ)
    env["AIRFLOW_CONN_CREDIT"] = srv.url.replace("://", "://credit-client:WRONG@", 1)
    env["AIRFLOW_CONN_WAREHOUSE"] = warehouse_cfg.airflow_uri()
    # a retry would show up as a 10-minute wait (long enough to tell from a slow, shared machine)
    env["SYNC_RETRY_DELAY_SECONDS"] = "600"
    outbox = tmp_path / "outbox"
    env.pop("AIRFLOW_CONN_SMTP_DEFAULT", None)
    env["ALERT_MAIL_DIR"] = str(outbox)  # no relay: the failure mail is an .eml file
    t0 = time.monotonic()
    out = dags_test("sync_credit", env)
    assert out.returncode != 0
    assert time.monotonic() - t0 < 400
    log = out.stdout + out.stderr
    assert "认证失败" in log and "AIRFLOW_CONN_CREDIT" in log
    assert "up_for_retry" not in log
    assert "WRONG" not in log  # the secret never reaches the logs
    errors = [r[0] for r in wconn.execute("select last_error from ops.sync_state")]
    assert len(errors) == 4 and all("401" in e for e in errors)

    # four tasks failed; the 数据管理局 gets one mail about the DAG, naming the first failing task
    (eml,) = outbox.glob("*.eml")
    msg = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert [a.addr_spec for a in msg["To"].addresses] == ["sjglj@demo-county.gov.cn"]  # role bureau
    assert msg["To"].addresses[0].display_name == "区数据管理局"
    assert msg["X-Market-Access-Kind"] == "dag_failure"
    task_ids = {f"sync_{r.name.replace('-', '_')}" for r in catalog.system("credit").resources}
    subject = msg["Subject"]
    assert subject.startswith("【运行失败】sync_credit ") and subject.split("任务 ")[1].split(" ")[0] in task_ids
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    task_id = subject.split("任务 ")[1].split(" ")[0]
    assert "DAG：sync_credit" in text and f"失败的任务：{task_id}" in text
    error = next(ln for ln in text.splitlines() if ln.strip().startswith("错误："))
    assert "认证失败" in error and "AIRFLOW_CONN_CREDIT" in error  # the task's first error line
    assert "/dags/sync_credit/runs/" in text and f"/tasks/{task_id}" in text  # the log in the Airflow UI
    assert "WRONG" not in eml.read_text(errors="replace") and "sync_credit" in html
    (row,) = wconn.execute("select dag_id, task_id, message_id from ops.dag_failure_alerts").fetchall()
    assert row[:2] == ("sync_credit", task_id) and row[2] == msg["Message-ID"]

    # the same DAG failing again the same (Beijing) day: no second mail
    out = dags_test("sync_credit", env)
    assert out.returncode != 0
    assert len(list(outbox.glob("*.eml"))) == 1
    assert "bureau mail already_sent" in out.stdout + out.stderr


def test_one_process_runs_each_dag_in_turn_and_a_failure_stops_no_other(
    airflow_db, warehouse_cfg, wconn, credit_server
):
    """`make run`'s runner (orchestration/dagtest.py): several `dags test` in one process, each
    framed by its markers; a DAG that cannot be found fails alone, and a DAG run a second time in the
    same process pulls nothing twice."""
    from market_access.orchestration.dagtest import MARK

    world, srv = credit_server
    env = dict(os.environ)
    env["AIRFLOW_CONN_CREDIT"] = srv.url.replace("://", "://credit-client:right@", 1)
    env["AIRFLOW_CONN_WAREHOUSE"] = warehouse_cfg.airflow_uri()
    out = subprocess.run(
        [sys.executable, "-m", "market_access.orchestration.dagtest", "sync_credit", "no_such_dag", "sync_credit"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    marks = [ln[len(MARK) :].split() for ln in out.stdout.splitlines() if ln.startswith(MARK)]
    ends = [(m[1], m[2]) for m in marks if m[0] == "end"]
    assert [m[:2] for m in marks if m[0] == "start"] == [
        ["start", "sync_credit"],
        ["start", "no_such_dag"],
        ["start", "sync_credit"],
    ]
    assert ends == [("sync_credit", "rc=0"), ("no_such_dag", "rc=1"), ("sync_credit", "rc=0")], (
        out.stdout[-4000:] + out.stderr[-2000:]
    )
    assert out.returncode == 1
    assert "no_such_dag" in out.stdout + out.stderr
    for res in catalog.system("credit").resources:
        versions, records = wconn.execute(
            f"select count(*), count(distinct record_id) from {res.qualified_table}"
        ).fetchone()
        assert records == len(world.truth("credit", res.name)), res.name
        assert versions == records, res.name  # the second run in the same process added nothing
