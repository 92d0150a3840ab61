"""`make run` once against an operator's PostgreSQL 15 (Debian's server, tests/pg_servers.py): the
platform logs in as a non-superuser with a password over TCP (AIRFLOW_CONN_WAREHOUSE), every DAG
runs through Airflow, the raw layer equals the simulators' truth and the marts are published."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from test_make_run import SCALE, SEED, platform_env, raw_current, truth  # sibling module

from market_access import warehouse
from market_access.simulators.world import World
from market_access.sources import catalog

# one `make run` with every DAG through `airflow dags test`: about 6 minutes on an idle machine
pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(2400)]


@pytest.fixture
def pg15_warehouse(pg15_server):
    """A `warehouse` database of the platform's own login on the PostgreSQL 15 cluster."""
    name = f"warehouse_{uuid.uuid4().hex[:6]}"
    with warehouse.connect(pg15_server, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    yield dataclasses.replace(pg15_server, dbname=name)
    with warehouse.connect(pg15_server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def test_make_run_on_postgresql_15(pg15_warehouse, tmp_path_factory):
    cfg = pg15_warehouse
    local_dir = Path(tmp_path_factory.mktemp("platform-pg15"))
    env = platform_env(local_dir)
    env.update(
        {
            warehouse.ENV_VAR: cfg.airflow_uri(),
            # an external warehouse gets no generated key: the operator sets one (README)
            "MARKET_ACCESS_HMAC_KEY": "0123456789abcdef" * 4,  # 32 bytes in hex
            "MARKET_ACCESS_HMAC_KEY_ID": "pg15-e2e",
        }
    )
    # its own time limit: on a busy machine one run has taken more than test_make_run's 900 s
    proc = subprocess.run(
        [sys.executable, "-m", "market_access", "run"], env=env, capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "✓ all DAGs succeeded" in out
    assert f"{warehouse.ENV_VAR} is set → {cfg.display()}" in out  # no embedded server was started
    assert not (local_dir / "pgdata").exists()

    with warehouse.connect(cfg, autocommit=True) as conn:
        assert conn.info.server_version // 10000 == 15
        assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone() == (
            False,
        )
    assert raw_current(cfg) == truth(World(seed=SEED, scale=SCALE))

    with warehouse.connect(cfg, autocommit=True) as conn:
        runs = conn.execute("select count(*) from ops.quality_runs where status = 'succeeded'").fetchone()[0]
        composite = conn.execute("select count(*) from marts.mart_composite_evaluation").fetchone()[0]
        staged = {
            res.table: conn.execute(f"select count(*) from staging.stg_{res.table}").fetchone()[0]
            for res in catalog.all_resources()
        }
        # every mart has rows, and the analyst role can read them (grants work for a non-superuser)
        marts = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        ]
        conn.execute("set role analyst")
        empty = [m for m in marts if conn.execute(f'select count(*) from marts."{m}"').fetchone()[0] == 0]
        conn.execute("reset role")
    assert runs >= 1 and composite > 0
    assert all(n > 0 for n in staged.values()), staged
    assert len(marts) >= 19 and not empty, empty
