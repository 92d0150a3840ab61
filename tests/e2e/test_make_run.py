"""`make run`'s engine end to end: embedded PostgreSQL + simulators + every DAG via `airflow dags test`,
twice; the second run pulls exactly what one simulated day changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from pi_scan import find_leaks  # tests/: shared with the staging test

from market_access import warehouse
from market_access.simulators.world import World
from market_access.sources import catalog

# two `make run`s with every DAG through `airflow dags test` (about 5 minutes each on an idle machine,
# up to 15 on a loaded one): more than
# the suite-wide 900 s limit of a single test
pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(3600)]

SEED, SCALE = 5, 0.01


def platform_env(local_dir: Path) -> dict[str, str]:
    # nothing of the caller's Airflow, sync or simulator settings: the embedded defaults only
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SYNC_", "SIM_"))}
    env.update(MARKET_ACCESS_LOCAL_DIR=str(local_dir), SIM_SEED=str(SEED), SIM_SCALE=str(SCALE),
               SIM_FAULTS="network")
    return env


def make_run(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-m", "market_access", "run"], env=env, capture_output=True,
                         text=True, timeout=1500)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    return out.stdout


def raw_current(cfg) -> dict[str, dict[str, dict]]:
    state = {}
    with warehouse.connect(cfg, autocommit=True) as conn:
        for res in catalog.all_resources():
            rows = conn.execute(
                f"select distinct on (record_id) record_id, payload::text from {res.qualified_table} "
                "order by record_id, source_updated_at desc, raw_id desc"
            ).fetchall()
            state[res.table] = {rid: orjson.loads(p) for rid, p in rows}
    return state


def truth(world: World) -> dict[str, dict[str, dict]]:
    return {r.table: world.truth(r.system, r.name) for r in catalog.all_resources()}


@pytest.fixture
def local_dir(tmp_path_factory):
    d = Path(tmp_path_factory.mktemp("platform"))
    yield d
    warehouse.stop_embedded(d / "pgdata")


def test_make_run_twice(local_dir):
    env = platform_env(local_dir)
    first = make_run(env)
    assert "✓ all DAGs succeeded" in first
    for res in catalog.all_resources():
        assert f"{res.system}/{res.name}" in first  # the summary lists every resource
    cfg = warehouse.WarehouseConfig(host=str(local_dir / "pgdata"), port=None, dbname="warehouse", user="postgres")

    world = World(seed=SEED, scale=SCALE)
    day0 = truth(world)
    assert raw_current(cfg) == day0

    with warehouse.connect(cfg, autocommit=True) as conn:
        batches_before = conn.execute("select max(batch_id) from ops.load_batches").fetchone()[0]
        versions_before = conn.execute(
            "select sum(rows_loaded) from ops.sync_state").fetchone()[0]

    second = make_run(env)
    assert "clock advanced 1 day" in second
    world.advance(1)
    day1 = truth(world)
    assert raw_current(cfg) == day1

    changed = sum(1 for t, recs in day1.items() for rid, rec in recs.items() if day0[t].get(rid) != rec)
    assert changed > 0
    with warehouse.connect(cfg, autocommit=True) as conn:
        new_rows = conn.execute(
            "select coalesce(sum(rows_inserted), 0) from ops.load_batches where batch_id > %s", (batches_before,)
        ).fetchone()[0]
        windows = conn.execute(
            "select count(*) from ops.load_batches where batch_id > %s and window_since is null", (batches_before,)
        ).fetchone()[0]
        versions_after = conn.execute("select sum(rows_loaded) from ops.sync_state").fetchone()[0]
    assert new_rows == changed          # exactly the day's new, corrected and deleted records
    assert versions_after - versions_before == changed
    assert windows == 0                 # every second-run window started at a watermark

    # the whole chain ran on both days: quality run, mails captured locally, marts published
    assert "数据质量与告警" in second and "via eml" in second, second[-3000:]
    with warehouse.connect(cfg, autocommit=True) as conn:
        # incomplete: a run that could not check some relation (at this small scale a resource may
        # have no records at all) — it still judged everything else
        runs = conn.execute(
            "select count(*) from ops.quality_runs where status in ('succeeded', 'incomplete')"
        ).fetchone()[0]
        days = conn.execute("select count(distinct quality_date) from marts.mart_data_quality_scorecard").fetchone()[0]
        composite = conn.execute("select count(*) from marts.mart_composite_evaluation").fetchone()[0]
        outbox = list((local_dir / "mail" / "outbox").rglob("*.eml"))
        # no personal information in clear in any de-identified layer, including submissions' PI
        submitted_names = {
            v
            for (v,) in conn.execute(
                """select payload ->> 'complainant_name' from raw.submissions__barrier_complaints
                   union select payload ->> 'lead_official' from raw.submissions__rectification_ledger"""
            ).fetchall()
            if v
        }
        leaks = find_leaks(conn, world, extra_names=submitted_names, min_names=100, min_values=1_000)
    assert runs >= 2 and days >= 1 and composite > 0
    assert outbox
    assert not leaks, leaks[:20]
