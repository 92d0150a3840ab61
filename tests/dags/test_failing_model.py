"""A failing model fails its own Airflow task, with dbt's error in that task's log (issue #13), and once
the cause is fixed, clearing that task and what it blocks and running them again succeeds.

Real Airflow and dbt on an empty warehouse (the smallest scale: every staging model builds on empty
raw tables): `airflow dags test build_warehouse` (Cosmos' watcher mode, as `make run` runs it), then
a clear of the failed task and its downstream (Airflow's `clear_task_instances`, what the UI and
the REST API call), then the cleared tasks of the same DAG run are run by Airflow's own `dag.test()`
loop on that run (tests/dags/rerun_cleared.py) — what a scheduler would do.

The faults are in the environment the models read, not in a mock:
- the raw table `raw.credit__risk_ratings` gets its `payload` column as text instead of jsonb, so
  PostgreSQL refuses `payload ->> '…'` in stg_credit__risk_ratings ("operator does not exist: text
  ->> unknown"): the model fails;
- `raw.directory__departments` loses its keys and gets a second row for one department, so
  stg_directory__departments builds but its `unique` test fails: the model's task (which reports its
  tests, orchestration/watchers.py) fails and names the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from warehouse_world import KEY, KEY_ID, prepare

from market_access import deid

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(3000)]

DAG = "build_warehouse"
BROKEN = "dbt.stg_credit__risk_ratings_run"
UNTESTED = "dbt.stg_directory__departments_run"  # builds, and its unique test fails
UNIQUE_TEST = "unique_stg_directory__departments_dept_code"
TWICE = "11360421004073071R"  # a department of config/departments.csv, given a second row
HERE = Path(__file__).parent


def airflow(env, *args, timeout=1400) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).with_name("airflow"))
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=timeout)


def latest_run_id() -> str:
    from airflow import settings
    from airflow.models.dagrun import DagRun

    with settings.Session() as session:
        return session.query(DagRun).filter_by(dag_id=DAG).order_by(DagRun.id.desc()).first().run_id


def states(run_id: str) -> dict[str, str]:
    """Each task's state in the DAG run, from Airflow's metadata database (this session's AIRFLOW_HOME)."""
    from airflow import settings
    from airflow.models.taskinstance import TaskInstance

    with settings.Session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=DAG, run_id=run_id).all()
        return {ti.task_id: str(ti.state.value if hasattr(ti.state, "value") else ti.state) for ti in tis}


def task_log(home: Path, run_id: str, task_id: str) -> str:
    logs = sorted((home / "logs" / f"dag_id={DAG}").glob(f"run_id={run_id}/task_id={task_id}/attempt=*.log"))
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in logs)


def task_output(out: str, task_id: str) -> str:
    """What `airflow dags test` printed while it ran the task (each attempt), from its own markers."""
    parts = out.split("[DAG TEST] starting task_id=")
    return "\n".join(part for part in parts[1:] if part.startswith(task_id + " "))


def test_failing_model_fails_its_task_and_a_cleared_rerun_succeeds(airflow_db, warehouse_cfg, wconn):
    prepare(wconn)
    wconn.execute("alter table raw.credit__risk_ratings alter column payload type text using payload::text")
    wconn.execute(
        "alter table raw.directory__departments drop constraint directory__departments_pkey cascade, "
        "drop constraint directory__departments_dept_name_key"
    )
    wconn.execute(
        "insert into raw.directory__departments select * from raw.directory__departments where dept_code = %s",
        (TWICE,),
    )
    env = {
        **os.environ,
        "AIRFLOW_CONN_WAREHOUSE": warehouse_cfg.airflow_uri(),
        deid.KEY_ENV: KEY.hex(),
        deid.KEY_ID_ENV: KEY_ID,
        # one retry of a failed model task (its own `dbt run`), one second apart
        "SYNC_TASK_RETRIES": "1",
        "SYNC_RETRY_DELAY_SECONDS": "1",
    }
    first = airflow(env, "dags", "test", DAG, "2026-07-01")
    out = first.stdout + first.stderr
    assert first.returncode != 0, out[-4000:]  # the DAG run failed
    run_id = latest_run_id()

    st = states(run_id)
    # the broken model's own task failed; the models it feeds did not run; every other model built
    assert st[BROKEN] == "failed", st
    assert st[UNTESTED] == "failed", st
    assert st["dbt.stg_credit__admin_penalties_run"] == "success"
    assert st["dbt.stg_gov_service__cases_run"] == "success"
    assert st["dbt.stg_directory__department_names_run"] == "success"  # shares a passing test with it
    assert not [t for t in st if t.endswith(".test") or t.endswith("_test")]  # no test tasks
    assert st["staging_ready"] == "upstream_failed"  # no Asset for data_quality from a broken build
    # freshness only warns: on this empty warehouse every source is "infinitely old" (dbt: WARN), and
    # every Cosmos freshness task (the producer ran `dbt source freshness`) succeeded
    sources = [t for t in st if t.endswith("_source")]
    assert len(sources) >= 19 and all(st[t] == "success" for t in sources), {t: st[t] for t in sources}
    failed = sorted(t for t, s in st.items() if s == "failed")
    assert failed == sorted([BROKEN, UNTESTED, "dbt.dbt_producer_watcher"]), failed
    # dbt's own error, in the failed model's task log (its first attempt reports the producer's
    # result, its retry runs the model again by itself)
    log = task_log(airflow_db, run_id, BROKEN) or out
    assert "operator does not exist: text ->> unknown" in log, log[-4000:]
    # the model whose test failed: its first attempt names the test and logs dbt's message for it,
    # its retry (`dbt build --select` the model) runs the model and its tests again and fails again
    log = task_log(airflow_db, run_id, UNTESTED) or task_output(out, UNTESTED)
    first, _, retry = log.partition("Retry attempt #1")
    assert f"dbt tests of 'model.market_access.stg_directory__departments' failed: {UNIQUE_TEST}" in first, (
        log[-4000:]
    )
    assert "Got 1 result, configured to fail if != 0" in first, first[-4000:]
    assert "['build', " in retry and f"Failure in test {UNIQUE_TEST}" in retry, retry[-4000:]

    # the cause fixed, the operator clears the failed task and everything it blocks, and reruns them
    wconn.execute("alter table raw.credit__risk_ratings alter column payload type jsonb using payload::jsonb")
    wconn.execute(
        "with twice as (delete from raw.directory__departments where dept_code = %s returning *) "
        "insert into raw.directory__departments select distinct on (dept_code) * from twice",
        (TWICE,),
    )
    wconn.execute(
        "alter table raw.directory__departments add primary key (dept_code), add unique (dept_name)"
    )
    rerun = subprocess.run(
        [sys.executable, str(HERE / "rerun_cleared.py"), DAG, run_id, BROKEN, UNTESTED],
        env=env,
        capture_output=True,
        text=True,
        timeout=1400,
    )
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-4000:]
    st = states(run_id)
    assert st[BROKEN] == "success", st
    assert st[UNTESTED] == "success", st
    assert st["staging_ready"] == "success"
    assert not [t for t, s in st.items() if s not in ("success", "failed")], st
    # the model exists now, built by the rerun
    assert wconn.execute("select to_regclass('staging.stg_credit__risk_ratings') is not null").fetchone()[0]
