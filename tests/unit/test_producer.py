"""Issue #13: the watcher producer pushes only the XComs its watchers read (orchestration/producer.py).

dbt's own event classes, serialised as Cosmos' dbt-runner callback serialises them, go through
Cosmos' parser twice: as Cosmos calls it, and behind our filter. The XComs a watcher reads (the last
value under each key) must be the same; only the overwritten lifecycle pushes go. A model's task
reads those XComs for its model and its tests (orchestration/watchers.py), poking or deferred.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("cosmos")

from dbt.events.types import (  # noqa: E402
    MainReportVersion,
    NodeCompiling,
    NodeExecuting,
    NodeFinished,
    NodeStart,
    RunResultError,
)
from dbt_common.events.base_types import msg_from_base_event  # noqa: E402
from google.protobuf.json_format import MessageToJson  # noqa: E402

from market_access.orchestration import producer as prod  # noqa: E402

MODEL = "model.market_access.stg_demo"
BROKEN = "model.market_access.stg_broken"
TEST = "test.market_access.not_null_stg_demo_id.abc123"


class RecordingTI:
    """What Cosmos' parser needs of a task instance: xcom_push / xcom_pull, every push recorded."""

    def __init__(self):
        self.pushes: list[tuple[str, object]] = []
        self.values: dict[str, object] = {}

    def xcom_push(self, key, value):
        self.pushes.append((key, value))
        self.values[key] = value

    def xcom_pull(self, task_ids=None, key=None, **_):
        return self.values.get(key)


def line(event) -> str:
    """An event as Cosmos' dbt-runner callback hands it to the parser."""
    return MessageToJson(msg_from_base_event(event), preserving_proto_field_name=True)


def node_info(uid: str, status: str, resource_type: str, finished: str = "") -> dict:
    return {
        "unique_id": uid,
        "node_status": status,
        "resource_type": resource_type,
        "node_path": uid.split(".")[-1] + ".sql" if resource_type == "model" else "",
        "node_started_at": "2026-12-01T08:00:00.000000",
        "node_finished_at": finished,
    }


def lifecycle(uid: str, resource_type: str, final: str, message: str) -> list[str]:
    done = "2026-12-01T08:00:03.000000"
    return [
        line(NodeStart(node_info=node_info(uid, "started", resource_type))),
        line(NodeCompiling(node_info=node_info(uid, "compiling", resource_type))),
        line(NodeExecuting(node_info=node_info(uid, "executing", resource_type))),
        line(
            NodeFinished(
                node_info=node_info(uid, final, resource_type, done),
                run_result={"status": final, "message": message},
            )
        ),
    ]


@pytest.fixture
def dbt_log(tmp_path):
    """A build's events: startup, a model that succeeds with its test, a model that fails."""
    for uid in (MODEL, BROKEN):
        compiled = (
            tmp_path / "target" / "compiled" / "market_access" / "models" / (uid.split(".")[-1] + ".sql")
        )
        compiled.parent.mkdir(parents=True, exist_ok=True)
        compiled.write_text(f"select 1 as id -- {uid}\n", encoding="utf-8")
    lines = [line(MainReportVersion(version="1.11.0", log_version=3))]
    lines += lifecycle(MODEL, "model", "success", "SELECT 3")
    lines += lifecycle(TEST, "test", "pass", "PASS")
    lines += lifecycle(BROKEN, "model", "error", 'column "nope" does not exist')
    lines.append(
        line(
            RunResultError(msg='column "nope" does not exist', node_info=node_info(BROKEN, "error", "model"))
        )
    )
    return tmp_path, lines


def run_parser(parse, project_dir, lines) -> RecordingTI:
    ti = RecordingTI()
    extra = {"context": {"ti": ti}, "project_dir": str(project_dir)}
    for text in lines:
        parse(text, extra)
    return ti


def cosmos_parser():
    import functools

    from cosmos.operators._watcher.base import store_dbt_resource_status_from_log

    return functools.partial(
        store_dbt_resource_status_from_log,
        tests_per_model={MODEL: [TEST]},
        test_results_per_model={},
        model_outlet_uris={},
        dataset_namespace=None,
        should_generate_model_uris=False,
        upstream_failure_skipped_ids=set(),
    )


def test_the_events_dropped_are_dbts_lifecycle_events_before_the_finish():
    names = [json.loads(text)["info"]["name"] for text in lifecycle(MODEL, "model", "success", "")]
    assert names == ["NodeStart", "NodeCompiling", "NodeExecuting", "NodeFinished"]
    assert set(names[:-1]) == prod.UNREAD_NODE_EVENTS


def test_lines_that_are_not_dbt_events_reach_cosmos_unchanged():
    seen = []
    parse = prod.read_events_only(lambda line, extra: seen.append(line))
    for text in ("not json", "[1, 2]", "{}", '{"info": "x"}'):
        parse(text, {})
    assert seen == ["not json", "[1, 2]", "{}", '{"info": "x"}']


def test_the_watchers_read_the_same_xcoms_with_fewer_pushes(dbt_log):
    project_dir, lines = dbt_log
    everything = run_parser(cosmos_parser(), project_dir, lines)
    filtered = run_parser(prod.read_events_only(cosmos_parser()), project_dir, lines)

    # what the watchers read: the last value under each key — identical, but for the test's own dbt
    # event, which no watcher reads (a test task logs its model's)
    test_event = "test__market_access__not_null_stg_demo_id__abc123_dbt_event"
    assert test_event in everything.values and test_event not in filtered.values
    assert filtered.values == {k: v for k, v in everything.values.items() if k != test_event}
    # the keys watchers poll, with their values
    assert filtered.values["model__market_access__stg_demo_status"]["status"] == "success"
    assert filtered.values["model__market_access__stg_broken_status"]["status"] == "error"
    assert filtered.values["model__market_access__stg_demo_tests_status"] == "pass"
    assert (
        filtered.values["model__market_access__stg_broken_dbt_event"]["msg"] == 'column "nope" does not exist'
    )
    assert filtered.values["model__market_access__stg_demo_dbt_event"]["status"] == "success"
    assert "select 1 as id" in filtered.values["model__market_access__stg_demo_compiled_sql"]
    # three lifecycle pushes fewer per node (two models and a test) and the test's finished event
    assert len(everything.pushes) - len(filtered.pushes) == 3 * 3 + 1
    dropped = [p for p in everything.pushes if p not in filtered.pushes]
    assert {key for key, _ in dropped} == {
        "model__market_access__stg_demo_dbt_event",
        "model__market_access__stg_broken_dbt_event",
        test_event,
    }
    assert sorted(value["status"] for key, value in dropped if key == test_event) == [
        "compiling",
        "executing",
        "pass",
        "started",
    ]
    assert {value["status"] for key, value in dropped if key != test_event} == {
        "started",
        "compiling",
        "executing",
    }
    # the test's result still counts: its model's test task reads the aggregate
    assert ("model__market_access__stg_demo_tests_status", "pass") in filtered.pushes


def test_a_test_event_is_dropped_only_for_its_own_key():
    ti = RecordingTI()
    without = prod._WithoutKey(ti, "test__x_dbt_event")
    without.xcom_push(key="test__x_dbt_event", value=1)
    without.xcom_push(key="model__m_tests_status", value="pass")
    assert ti.pushes == [("model__m_tests_status", "pass")]
    assert without.xcom_pull(key="model__m_tests_status") == "pass"  # the rest is the task instance's


def test_adopt_keeps_the_producer_and_changes_only_its_parser():
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    producer = DbtProducerWatcherOperator(project_dir="/tmp", profile_config=None, task_id="p")
    producer.tests_per_model = {MODEL: [TEST]}
    same = prod.adopt(producer)
    assert same is producer and isinstance(producer, DbtProducerWatcherOperator)
    assert type(producer) is prod.ProducerPushingWhatWatchersRead
    assert producer.tests_per_model == {MODEL: [TEST]}
    parse = producer._make_parse_callable()
    assert parse.__name__ == "parse_read_events"
    with pytest.raises(TypeError):
        prod.adopt(producer)  # only Cosmos' own class is adopted, once


def failing_test_build() -> list[str]:
    """A build's events: a model that succeeds, and its test that fails (dbt's own message)."""
    return lifecycle(MODEL, "model", "success", "SELECT 3") + lifecycle(
        TEST, "test", "fail", "Got 1 result, configured to fail if != 0"
    )


def test_a_failed_tests_event_is_kept_for_its_models_task(tmp_path):
    filtered = run_parser(prod.read_events_only(cosmos_parser()), tmp_path, failing_test_build())
    event = filtered.values["test__market_access__not_null_stg_demo_id__abc123_dbt_event"]
    assert event["status"] == "fail" and event["msg"] == "Got 1 result, configured to fail if != 0"
    assert filtered.values["model__market_access__stg_demo_tests_status"] == "fail"


def model_task(tests: list[str]):
    from cosmos.operators.watcher import DbtRunWatcherOperator

    from market_access.orchestration.watchers import report_tests

    watcher = DbtRunWatcherOperator(
        project_dir="/tmp", task_id="m_run", extra_context={"dbt_node_config": {"unique_id": MODEL}}
    )
    return report_tests(watcher, tests)


def test_a_models_task_fails_naming_its_failed_test_with_dbts_message(tmp_path, caplog):
    from airflow.exceptions import AirflowException

    ti = run_parser(prod.read_events_only(cosmos_parser()), tmp_path, failing_test_build())
    task = model_task([TEST])
    with caplog.at_level("INFO"), pytest.raises(AirflowException) as failed:
        task._tests_passed({"ti": ti})
    assert f"dbt tests of '{MODEL}' failed: not_null_stg_demo_id." in str(failed.value)
    assert "Got 1 result, configured to fail if != 0" in caplog.text


def test_a_models_task_passes_when_its_tests_passed(dbt_log):
    project_dir, lines = dbt_log
    ti = run_parser(prod.read_events_only(cosmos_parser()), project_dir, lines)
    assert model_task([TEST])._tests_passed({"ti": ti}) is True
    assert model_task([])._tests_passed({"ti": RecordingTI()}) is True  # no tests: nothing to wait for


def test_only_a_model_or_seed_watcher_reports_its_tests():
    from cosmos.operators.watcher import DbtProducerWatcherOperator, DbtSeedWatcherOperator

    from market_access.orchestration import watchers

    task = model_task([TEST])
    assert type(task) is watchers.ModelWithItsTestsWatcher and task.dbt_tests == (TEST,)
    assert task.base_cmd == ["build"] and task.dbt_cmd_flags == ["--exclude-resource-type", "unit_test"]
    seed = watchers.report_tests(DbtSeedWatcherOperator(project_dir="/tmp", task_id="s_seed"), [])
    assert type(seed) is watchers.SeedWithItsTestsWatcher and seed.base_cmd == ["build"]
    with pytest.raises(TypeError):
        watchers.report_tests(DbtProducerWatcherOperator(project_dir="/tmp", task_id="p"), [])
    assert watchers.test_name(TEST) == "not_null_stg_demo_id"


def producer_is(task, state: str) -> None:
    """The producer's task state as the watcher reads it from Airflow: its one call to Airflow here
    (the real one runs in tests/dags/test_failing_model.py)."""
    task._get_producer_task_status = lambda context: state


def deferred_context(ti) -> dict:
    ti.map_index = -1
    return {"ti": ti, "task_instance": ti, "run_id": "manual__2026-12-01"}


def test_deferred_a_models_task_waits_for_its_tests_then_reports_them(tmp_path):
    """Under a scheduler the watcher defers to Cosmos' trigger: when the model's event comes and its
    tests are still running, it defers again, on the tests' aggregate (is_test_sensor)."""
    from airflow.exceptions import AirflowException
    from airflow.sdk.exceptions import TaskDeferred

    # the model finished; its test has not reported yet
    ti = run_parser(prod.read_events_only(cosmos_parser()), tmp_path, failing_test_build()[:4])
    assert "model__market_access__stg_demo_tests_status" not in ti.values
    task = model_task([TEST])
    producer_is(task, "running")
    with pytest.raises(TaskDeferred) as deferred:
        task.execute_complete(deferred_context(ti), {"status": "success"})
    assert deferred.value.method_name == "tests_complete"
    assert deferred.value.trigger.is_test_sensor and deferred.value.trigger.model_unique_id == MODEL

    # the trigger fired: the test failed
    ti = run_parser(prod.read_events_only(cosmos_parser()), tmp_path, failing_test_build())
    with pytest.raises(AirflowException, match="failed: not_null_stg_demo_id"):
        task.tests_complete(deferred_context(ti), {"status": "failed", "reason": "node_failed"})
    assert task.tests_complete(deferred_context(ti), {"status": "success"}) is None


def test_deferred_a_models_task_whose_tests_already_reported_does_not_wait(dbt_log):
    from airflow.exceptions import AirflowException

    project_dir, lines = dbt_log
    ti = run_parser(prod.read_events_only(cosmos_parser()), project_dir, lines)
    task = model_task([TEST])
    producer_is(task, "running")
    assert task.execute_complete(deferred_context(ti), {"status": "success"}) is None  # passed
    with pytest.raises(AirflowException):  # the model itself failed: its own error, tests unread
        task.execute_complete(deferred_context(ti), {"status": "failed", "reason": "node_failed"})
