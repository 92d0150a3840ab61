"""The warehouse restarted under a dbt build and under a quality run (issue 12, situation 4).

A real restart of a real embedded PostgreSQL (`pg_ctl restart`, warehouse.restart_embedded) of
this module's own (so no other test's connections are cut), while a model is mid-flight or a
quality run is validating or storing its results. Then the rerun: the warehouse and the quality
results must equal those of an uninterrupted build and run on the same raw data.

The raw layer is landed once (World(11, 0.02), a first build, one simulated day later synced
again) and copied twice with CREATE DATABASE … TEMPLATE: `clean` is built and checked without
interruption, `restarted` with the restarts. Expected values are those of `clean`, computed by the
same dbt project and quality engine on identical raw data — not by the run under test.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import psycopg
import pytest
from test_sync import make_servers, sync_everything  # sibling modules: pytest puts their folder on sys.path
from warehouse_world import prepare

from market_access import warehouse
from market_access.dbt import grant_transformer, run_dbt
from market_access.quality import run_quality
from market_access.settings import Settings
from market_access.simulators.world import World

AS_OF = date(2026, 7, 2)  # the world's clock after one simulated day
# the quality runs check one department (区市场监督管理局: four systems and three templates, none of
# them submitted here, so it has failures): the same engine at a fraction of a full run's time
DEPARTMENTS = ["113604210795604218"]
LAYERS = ("staging", "intermediate", "marts", "deid")
# the models and seeds; dbt's tests only read, and the other warehouse tests run them
BUILD = ["build", "--exclude", "resource_type:test", "resource_type:unit_test"]


class Restarter(threading.Thread):
    """Restarts the server the moment `ready(conn)` says so (polled every 20 ms on a superuser
    connection to `dbname`); `what` keeps what was in flight at that moment."""

    def __init__(self, pgdata: Path, cfg: warehouse.WarehouseConfig, ready: Callable, mode: str = "fast"):
        super().__init__(daemon=True)
        self.pgdata, self.cfg, self.ready, self.mode = pgdata, cfg, ready, mode
        self.what: str | None = None
        self.done = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        with warehouse.connect(self.cfg, autocommit=True) as conn:
            while not self.stop.is_set():
                found = self.ready(conn)
                if found:
                    self.what = found
                    break
                time.sleep(0.02)
        if self.what:
            warehouse.restart_embedded(self.pgdata, mode=self.mode)
        self.done.set()


def in_flight(pattern: str) -> Callable:
    """A statement of another session of this database matching `pattern` (a regex) is running."""

    def ready(conn) -> str | None:
        # dbt opens each statement with a /* {"app": "dbt", …} */ comment
        row = conn.execute(
            "select left(q, 160) from (select regexp_replace(query, '^\\s*/\\*.*?\\*/\\s*', '') as q "
            "from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() "
            "and state = 'active') as a where q ~* %s limit 1",
            (pattern,),
        ).fetchone()
        return row[0] if row else None

    return ready


def fingerprint(cfg: warehouse.WarehouseConfig) -> dict[str, tuple[int, str]]:
    """Every table and view of the built layers: (rows, md5 of its rows sorted as text)."""
    out = {}
    with warehouse.connect(cfg, autocommit=True) as conn:
        rels = conn.execute(
            "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = any(%s) and c.relkind in ('r', 'v', 'm', 'p') order by 1, 2",
            (list(LAYERS),),
        ).fetchall()
        for schema, name in rels:
            out[f"{schema}.{name}"] = conn.execute(
                f'select count(*), md5(coalesce(string_agg(t::text, chr(10) order by t::text), \'\')) '
                f'from "{schema}"."{name}" as t'
            ).fetchone()
    return out


def results_of(cfg: warehouse.WarehouseConfig, run_id: str) -> tuple[list, list]:
    """A run's verdicts without what names the run itself (run id, Data Docs page)."""
    with warehouse.connect(cfg, autocommit=True) as conn:
        results = conn.execute(
            "select rule_id, dept_code, asset, severity, success, evaluated_count, failed_count, failed_share, "
            "sample_record_ids, observed_on, observed from ops.quality_results where run_id = %s order by 1, 2",
            (run_id,),
        ).fetchall()
        failures = conn.execute(
            "select rule_id, asset, dept_code, record_id, severity from ops.quality_row_failures "
            "where run_id = %s order by 1, 4",
            (run_id,),
        ).fetchall()
    return results, failures


def runs(cfg) -> list[tuple]:
    with warehouse.connect(cfg, autocommit=True) as conn:
        return conn.execute(
            "select run_id, status, error, (select count(*) from ops.quality_results r where r.run_id = q.run_id) "
            "from ops.quality_runs q order by started_at"
        ).fetchall()


@pytest.fixture(scope="module")
def server():
    """An embedded PostgreSQL of this module's own: it is restarted under the tests."""
    pgdata = Path(tempfile.mkdtemp(prefix="market-access-restart-"))
    cfg = warehouse.start_embedded(pgdata)
    yield pgdata, cfg
    warehouse.stop_embedded(pgdata)
    shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture(scope="module")
def world_dbs(server, tmp_path_factory):
    """`clean` and `restarted`: the same raw layer (a day after a first build), and the first build."""
    pgdata, root = server
    tmp = tmp_path_factory.mktemp("restart")
    base = dataclasses.replace(root, dbname="base")
    with warehouse.connect(root, autocommit=True) as conn:
        conn.execute("create database base")
    world = World(seed=11, scale=0.02)
    servers = make_servers(world)
    try:
        with warehouse.connect(base, autocommit=True) as conn:
            prepare(conn)
            sync_everything(conn, servers)
        run_dbt(BUILD, base, target_path=tmp / "dbt-base")
        world.advance(1)  # new, corrected and deleted records: the next build is incremental
        with warehouse.connect(base, autocommit=True) as conn:
            sync_everything(conn, servers)
    finally:
        for s in servers.values():
            s.stop()
    dbs = {}
    with warehouse.connect(root, autocommit=True) as conn:
        for name in ("clean", "restarted"):
            conn.execute(f"create database {name} template base")
            dbs[name] = dataclasses.replace(root, dbname=name)
    for cfg in dbs.values():
        with warehouse.connect(cfg, autocommit=True) as conn:
            grant_transformer(conn)  # a grant on the database itself is not copied from the template
    return {"pgdata": pgdata, "tmp": tmp, **dbs}


@pytest.fixture(scope="module")
def builds(world_dbs):
    """`clean` built once; `restarted` built with a restart while a model is mid-flight, then rebuilt."""
    tmp = world_dbs["tmp"]
    started = time.monotonic()
    run_dbt(BUILD, world_dbs["clean"], target_path=tmp / "dbt-clean")
    print(f"uninterrupted incremental build: {time.monotonic() - started:.1f} s")
    # a CREATE … AS (a model's or an incremental's temp table) or a MERGE of another session
    restarter = Restarter(
        world_dbs["pgdata"],
        world_dbs["restarted"],
        in_flight(r"^\s*(merge\s+into|create\s+(temporary|temp)\s+table)"),  # an incremental model's
        mode="immediate",  # as after a crash: no shutdown checkpoint, recovery from the WAL
    )
    restarter.start()
    interrupted = run_dbt(BUILD, world_dbs["restarted"], target_path=tmp / "dbt-restarted", check=False)
    restarter.stop.set()
    restarter.join(timeout=120)
    rerun = run_dbt(BUILD, world_dbs["restarted"], target_path=tmp / "dbt-restarted", check=False)
    return {"interrupted": interrupted, "rerun": rerun, "what": restarter.what, **world_dbs}


def test_a_build_interrupted_by_a_restart_reruns_to_the_uninterrupted_state(builds):
    print(f"restarted while running: {builds['what']}")
    assert builds["what"], "the build finished before any model was caught mid-flight"
    assert builds["interrupted"].returncode != 0, "a build whose server restarted under it must fail"
    assert builds["rerun"].returncode == 0, builds["rerun"].stdout[-3000:]
    clean, restarted = fingerprint(builds["clean"]), fingerprint(builds["restarted"])
    # the whole project, with data: 41 table, 17 incremental and 3 view models, 7 seeds (dbt's own
    # count of this project) and the key table deid.hmac_keys
    assert len(clean) >= 69 and sum(n for n, _ in clean.values()) > 10_000
    assert set(restarted) == set(clean)
    differ = sorted(rel for rel in clean if clean[rel] != restarted[rel])
    assert not differ, {rel: (clean[rel], restarted[rel]) for rel in differ}


@pytest.fixture(scope="module")
def quality(builds, tmp_path_factory):
    env = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("quality")
    env.setenv("MARKET_ACCESS_LOCAL_DIR", str(tmp / "local"))
    for var in ("QUALITY_DATA_DOCS_DIR", "QUALITY_RULES", "QUALITY_WORKERS"):
        env.delenv(var, raising=False)
    yield builds
    env.undo()


def test_a_quality_run_interrupted_by_a_restart_fails_and_its_rerun_equals_an_uninterrupted_run(quality):
    clean, restarted, pgdata = quality["clean"], quality["restarted"], quality["pgdata"]
    assert quality["rerun"].returncode == 0
    uninterrupted = run_quality(clean, settings=Settings(), as_of=AS_OF, departments=DEPARTMENTS)
    print(f"uninterrupted quality run: {uninterrupted.duration_seconds} s {uninterrupted.timings}")

    # 1. the server restarts while Great Expectations sets up and validates (a second after its
    #    working copy appears)
    gx_dir = Settings().quality_dir / "gx"
    known = set(os.listdir(gx_dir)) if gx_dir.exists() else set()

    def validating(conn) -> str | None:
        fresh = set(os.listdir(gx_dir)) - known if gx_dir.exists() else set()
        if fresh:
            time.sleep(1.0)
            return f"validating ({sorted(fresh)[0]})"
        return None

    restarter = Restarter(pgdata, restarted, validating)
    restarter.start()
    with pytest.raises(Exception):  # noqa: B017 — whatever the broken session raises
        run_quality(restarted, settings=Settings(), as_of=AS_OF, departments=DEPARTMENTS)
    restarter.join(timeout=120)
    assert restarter.what, "the run ended before it could be interrupted"
    ((first_id, status, error, stored),) = runs(restarted)
    assert (status, stored) == ("failed", 0) and error, (status, error)

    # 2. the server restarts while the results are being stored: once the run has started, this
    #    test locks ops.quality_row_failures (reads still pass); the run's store transaction writes
    #    its results, then waits at the COPY of the failing records; the restart rolls it back
    def block_the_store() -> None:
        with warehouse.connect(restarted, autocommit=True) as blocker:
            while not blocker.execute("select 1 from ops.quality_runs where status = 'running'").fetchone():
                time.sleep(0.05)
            blocker.execute("begin")
            blocker.execute("lock table ops.quality_row_failures in exclusive mode")
            try:
                blocker.execute("select pg_sleep(600)")  # held until the restart ends this session
            except psycopg.Error:
                pass

    threading.Thread(target=block_the_store, daemon=True).start()
    storing = Restarter(pgdata, restarted, in_flight(r"^\s*copy\s+ops\.quality_row_failures"))
    storing.start()
    with pytest.raises(psycopg.Error):
        run_quality(restarted, settings=Settings(), as_of=AS_OF, departments=DEPARTMENTS)
    storing.join(timeout=120)
    assert storing.what and storing.what.lower().startswith("copy ops.quality_row_failures"), storing.what
    history = runs(restarted)
    assert [(s, n) for _, s, _, n in history] == [("failed", 0), ("failed", 0)], history

    # publish_marts' verdicts in force: no run of `restarted` has any (both failed, nothing stored)
    target = quality["tmp"] / "dbt-restarted"
    run_dbt(["run", "--select", "stg_quality__runs", "int_quality__latest_run"], restarted, target_path=target)
    with warehouse.connect(restarted, autocommit=True) as conn:
        assert conn.execute("select run_id from intermediate.int_quality__latest_run").fetchall() == []

    # 3. the rerun: exactly the verdicts of the uninterrupted run on the same data
    rerun = run_quality(restarted, settings=Settings(), as_of=AS_OF, departments=DEPARTMENTS)
    assert rerun.status == uninterrupted.status
    expected_results, expected_failures = results_of(clean, uninterrupted.run_id)
    got_results, got_failures = results_of(restarted, rerun.run_id)
    assert len(expected_results) > 20 and any(not r[4] for r in expected_results)
    assert got_results == expected_results
    assert got_failures == expected_failures
    assert [(r[0], r[1], r[3]) for r in runs(restarted)] == [
        (first_id, "failed", 0),
        (history[1][0], "failed", 0),
        (rerun.run_id, rerun.status, len(expected_results)),
    ]
    run_dbt(["run", "--select", "stg_quality__runs", "int_quality__latest_run"], restarted, target_path=target)
    with warehouse.connect(restarted, autocommit=True) as conn:
        assert conn.execute("select run_id from intermediate.int_quality__latest_run").fetchall() == [
            (rerun.run_id,)
        ]
