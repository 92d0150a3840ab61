"""Every DAG file imports cleanly and follows the house rules (tags, retries, owner, docs, no cycles)."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(p.stem for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_one_dag_per_file_named_after_it(dagbag):
    assert sorted(dagbag.dag_ids) == DAG_FILES
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id


def test_sync_dags_cover_every_resource(dagbag):
    from market_access.sources import catalog

    for name, system in catalog.systems().items():
        dag = dagbag.dags.get(f"sync_{name}")
        assert dag is not None
        outlets = {o.name for t in dag.tasks for o in t.outlets}
        assert outlets == {r.asset_name for r in system.resources}
        assert {t.task_id for t in dag.tasks} == {
            f"sync_{r.name.replace('-', '_')}" for r in system.resources
        }


@pytest.mark.parametrize("dag_id", DAG_FILES)
def test_house_rules(dagbag, dag_id):
    from market_access.orchestration.notify import on_task_failure

    dag = dagbag.dags.get(dag_id)
    assert dag.tags, "DAG needs tags"
    assert dag.doc_md and len(dag.doc_md) > 100, "DAG needs a real Markdown doc"
    assert dag.catchup is False
    assert dag.start_date is not None
    for task in dag.tasks:
        # Cosmos' watcher producer skips itself on a second attempt; its models' tasks retry instead
        if not task.task_id.endswith(".dbt_producer_watcher"):
            assert task.retries >= 1, f"{task.task_id} has no retries"
        assert task.owner and task.owner != "airflow", f"{task.task_id} has no responsible owner"
        # a task failing for good tells the 数据管理局 (one mail per DAG and day)
        callbacks = task.on_failure_callback or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        assert on_task_failure in callbacks, f"{task.task_id} does not report its failure"
    # no cycles: a topological sort visits every task
    assert len(dag.topological_sort()) == len(dag.tasks)


def test_dag_files_do_no_work_at_import():
    """No connection, Variable or DB access at parse time: parsing with unreachable connections works
    and takes well under a second per file."""
    import importlib.util
    import time

    for stem in DAG_FILES:
        spec = importlib.util.spec_from_file_location(f"_dagfile_{stem}", REPO / "dags" / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        t0 = time.perf_counter()
        spec.loader.exec_module(module)
        assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize("dag_id", ["build_warehouse", "publish_marts"])
def test_watcher_mode_wiring(dagbag, dag_id):
    """Issue #13: one producer per Cosmos DAG; every watcher runs after it (`airflow dags test` runs one
    task at a time), even when it failed (`one_done`); no test tasks, each model's task reports its
    tests, and only those the producer runs; the preparing task directly upstream of the DAG's last
    task; the producer pushes only what its watchers read."""
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    from market_access.orchestration import warehouse as wh
    from market_access.orchestration.producer import ProducerPushingWhatWatchersRead
    from market_access.orchestration.watchers import WITH_ITS_TESTS

    dag = dagbag.dags[dag_id]
    producers = [t for t in dag.tasks if isinstance(t, DbtProducerWatcherOperator)]
    assert [p.task_id for p in producers] == ["dbt.dbt_producer_watcher"]
    producer = producers[0]
    assert type(producer) is ProducerPushingWhatWatchersRead
    assert producer.retries == 0
    in_group = {t.task_id for t in dag.tasks if t.task_id.startswith("dbt.")}
    watchers = [t for t in dag.tasks if t.task_id in in_group and t is not producer]
    assert len(watchers) > 30
    for t in watchers:
        assert t.upstream_task_ids & in_group, f"{t.task_id} can start before the producer"
        assert producer.task_id in t.get_flat_relative_ids(upstream=True), t.task_id
        if producer.task_id in t.upstream_task_ids and not t.task_id.endswith("_done"):
            assert t.trigger_rule == "one_done", t.task_id
    assert not [t.task_id for t in dag.tasks if ".detached_" in t.task_id or t.task_id.endswith("__test")]
    last = [t for t in dag.tasks if not t.downstream_task_ids]
    assert len(last) == 1 and "install_deid_key" in last[0].upstream_task_ids
    select, exclude = (
        (wh.BUILD_SELECT, wh.BUILD_EXCLUDE) if dag_id == "build_warehouse" else (wh.PUBLISH_SELECT, [])
    )
    ran = wh.producer_tests(select, exclude)
    # the producer's build runs the tests (Cosmos' `--resource-type` flags for TestBehavior.NONE are
    # taken back); no test tasks: each model's or seed's task reports the tests the producer runs on
    # it, every such test is reported, and no task waits for a test the producer does not run
    assert "--resource-type" not in producer.dbt_cmd_flags
    assert not [
        t.task_id for t in dag.tasks if t.task_id.endswith(".test") or "TestWatcher" in type(t).__name__
    ]
    assert {t for tests in producer.tests_per_model.values() for t in tests} == ran
    nodes = [t for t in watchers if type(t) in WITH_ITS_TESTS.values()]
    assert {t.model_unique_id for t in nodes} >= set(producer.tests_per_model)
    for t in nodes:
        assert list(t.dbt_tests) == producer.tests_per_model.get(t.model_unique_id, []), t.task_id
        assert t.base_cmd == ["build"] and t.dbt_cmd_flags[-2:] == ["--exclude-resource-type", "unit_test"]
    others = {type(t).__name__ for t in watchers if t not in nodes}
    assert others <= {"DbtSourceWatcherOperator", "EmptyOperator"}, others
