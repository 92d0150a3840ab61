"""The sync DAGs run for real through `airflow dags test` against the simulators and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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


def test_wrong_secret_fails_the_dag_at_once_without_retries(airflow_db, warehouse_cfg, wconn, credit_server):
    _, srv = credit_server
    env = dict(os.environ)
    env["AIRFLOW_CONN_CREDIT"] = srv.url.replace("://", "://credit-client:WRONG@", 1)
    env["AIRFLOW_CONN_WAREHOUSE"] = warehouse_cfg.airflow_uri()
    env["SYNC_RETRY_DELAY_SECONDS"] = "30"  # a retry would show up as a 30 s wait
    t0 = time.monotonic()
    out = dags_test("sync_credit", env)
    assert out.returncode != 0
    assert time.monotonic() - t0 < 60
    log = out.stdout + out.stderr
    assert "认证失败" in log and "AIRFLOW_CONN_CREDIT" in log
    assert "up_for_retry" not in log
    assert "WRONG" not in log  # the secret never reaches the logs
    errors = [r[0] for r in wconn.execute("select last_error from ops.sync_state")]
    assert len(errors) == 4 and all("401" in e for e in errors)
