"""One Airflow task per model (and seed) that reports the model *and* its tests (issue #13).

Cosmos' watcher mode renders, with `TestBehavior.AFTER_EACH`, two watcher tasks per tested model:
`<model>.run` reads the model's result from the producer's one `dbt build`, `<model>.test` the
aggregate of its tests' results. Each watcher task costs Airflow a task run (about 0.17 s under
`airflow dags test`, the day's runs measured), and 68 of the two DAGs' 163 tasks were test tasks.

Here the task groups render with `TestBehavior.NONE` and each model's or seed's task is one of the
classes below:

- The producer still runs the tests: `dbt_task_group` takes back the `--resource-type` flags Cosmos
  adds to the producer for `TestBehavior.NONE`, so it runs the same `dbt build` as before.
- The node's task succeeds when the node built *and* every test the producer ran on it passed (a
  warning passes, as before). When one failed, the task fails, names the failed tests and logs
  dbt's message for each (the producer pushes a test's dbt event only when it failed).
- While the tests are still running, the task waits for their aggregate as it waits for the node:
  poking, or deferred to Cosmos' trigger (`is_test_sensor`).
- If the producer ended without reporting all the node's tests (it failed elsewhere first, so dbt
  skipped a test), the task runs `dbt test --select <node>` itself.
- Its retry, or an operator's clear, runs `dbt build --select <node>`: the node and its tests.
  Before, the model's retry ran `dbt run`, and the test task's ran `dbt test`.

Downstream models wait for this task, so a failed test blocks them in Airflow as the test task did
(in the producer's build, dbt skips them).
"""

from __future__ import annotations

from typing import Any

from cosmos.operators.watcher import DbtRunWatcherOperator, DbtSeedWatcherOperator

# dbt's unit tests check our SQL on fixed inputs in `make test`, not in a day's build (the producer's
# setup_operator_args exclude them too)
FALLBACK_FLAGS = ("--exclude-resource-type", "unit_test")


def test_name(unique_id: str) -> str:
    """`test.market_access.unique_x_id.abc123` → `unique_x_id` (`test.pkg.name`, optionally a hash)."""
    parts = unique_id.split(".")
    return parts[2] if len(parts) > 2 else unique_id


class _WithItsTests:
    """A watcher of a model or seed that also reports the tests the producer ran on it."""

    # a retry or a clear builds the node with its tests
    base_cmd = ["build"]
    # the unique ids of the tests the producer's `dbt build` runs on this node (dbt_task_group sets them)
    dbt_tests: tuple[str, ...] = ()

    def _fallback_to_non_watcher_run(self, try_number: int, context: Any) -> bool:
        self._built_itself = True  # its own `dbt build` ran the node's tests too
        return super()._fallback_to_non_watcher_run(try_number, context)

    def poke(self, context: Any) -> bool:
        self._built_itself = False
        if not super().poke(context):
            return False
        return self._built_itself or self._tests_passed(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> None:
        self._built_itself = False
        super().execute_complete(context, event)  # raises when the node failed or was skipped
        if self._built_itself or self._tests_passed(context):
            return
        from cosmos.operators._watcher.triggerer import WatcherTrigger

        # the node built, its tests are still running: wait for their aggregate as Cosmos' test task did
        self.defer(
            trigger=WatcherTrigger(
                model_unique_id=self.model_unique_id,
                producer_task_id=self.producer_task_id,
                dag_id=self.dag_id,
                run_id=context["run_id"],
                map_index=context["task_instance"].map_index,
                poke_interval=self.poke_interval,
                is_test_sensor=True,
            ),
            timeout=self.execution_timeout,
            method_name="tests_complete",
        )

    def tests_complete(self, context: Any, event: dict[str, Any]) -> None:
        """The deferred wait for the tests ended: the trigger's event says how (Cosmos' WatcherTrigger)."""
        from cosmos.listeners.dag_run_listener import EventStatus
        from cosmos.operators._watcher.triggerer import WatcherEventReason

        status, reason = event.get("status"), event.get("reason")
        if status == EventStatus.SUCCESS:
            return
        if reason == WatcherEventReason.NODE_FAILED:
            self._fail_with_failed_tests(context)
        # the producer failed or was skipped before all the node's tests reported
        self._run_tests_itself(context)

    def _tests_passed(self, context: Any) -> bool:
        """True once every test the producer ran on the node passed; False while they still run.
        Raises when one failed."""
        from cosmos.operators._watcher.aggregation import get_tests_status_xcom_key
        from cosmos.operators._watcher.state import (
            ProducerTaskState,
            get_xcom_val,
            is_dbt_node_status_success,
            is_producer_task_terminated,
        )

        if not self.dbt_tests:
            return True
        ti = context["ti"]
        status = get_xcom_val(ti, self.producer_task_id, get_tests_status_xcom_key(self.model_unique_id))
        if status is None:
            producer = self._get_producer_task_status(context)
            if not is_producer_task_terminated(producer):
                return False
            if producer == ProducerTaskState.SUCCESS:
                # dbt build exits non-zero on a failed test, so every test it ran passed
                return True
            self._run_tests_itself(context)
            return True
        if is_dbt_node_status_success(status):
            self.log.info("its %d test(s) passed in the producer's dbt build", len(self.dbt_tests))
            return True
        self._fail_with_failed_tests(context)
        return False  # not reached

    def _fail_with_failed_tests(self, context: Any) -> None:
        """Log dbt's message for each failed test of the node and fail the task, naming them."""
        from airflow.exceptions import AirflowException
        from cosmos.operators._watcher.state import (
            _log_dbt_event,
            get_dbt_event_xcom_key,
            get_xcom_val,
            is_dbt_node_status_success,
        )

        failed = []
        for uid in self.dbt_tests:
            event = get_xcom_val(context["ti"], self.producer_task_id, get_dbt_event_xcom_key(uid))
            if isinstance(event, dict) and not is_dbt_node_status_success(event.get("status")):
                self.log.error("dbt test %s: %s", test_name(uid), event.get("status"))
                _log_dbt_event(event)
                failed.append(test_name(uid))
        names = ", ".join(failed) or "see the producer's log"
        raise AirflowException(
            f"dbt tests of '{self.model_unique_id}' failed: {names}. The node itself built; "
            f"the producer task '{self.producer_task_id}' logged each test's query."
        )

    def _run_tests_itself(self, context: Any) -> None:
        """`dbt test --select <node>`: the producer ended before reporting all of the node's tests."""
        from cosmos.dbt.graph import DbtNode

        selector = DbtNode.get_resource_name_from_unique_id(self.model_unique_id)
        self.log.info(
            "the producer ended before reporting every test of '%s': running `dbt test --select %s`",
            self.model_unique_id,
            selector,
        )
        self.base_cmd = ["test"]
        try:
            self.build_and_run_cmd(context, cmd_flags=["--select", selector])
        finally:
            del self.base_cmd  # back to the class's `build`


class ModelWithItsTestsWatcher(_WithItsTests, DbtRunWatcherOperator):
    """A model's task: the model's result and its tests' (module docstring)."""


class SeedWithItsTestsWatcher(_WithItsTests, DbtSeedWatcherOperator):
    """A seed's task: the seed's result and its tests' (module docstring)."""


WITH_ITS_TESTS = {
    DbtRunWatcherOperator: ModelWithItsTestsWatcher,
    DbtSeedWatcherOperator: SeedWithItsTestsWatcher,
}


def report_tests(task: Any, tests: list[str] | tuple[str, ...]) -> Any:
    """Make the watcher Cosmos built for a model or seed report its tests as well (same state)."""
    cls = WITH_ITS_TESTS.get(type(task))
    if cls is None:
        raise TypeError(f"expected a Cosmos model or seed watcher, got {type(task).__name__}")
    task.__class__ = cls
    task.dbt_tests = tuple(tests)
    flags = list(task.dbt_cmd_flags or [])
    if not set(FALLBACK_FLAGS) <= set(flags):
        task.dbt_cmd_flags = flags + list(FALLBACK_FLAGS)
    return task
