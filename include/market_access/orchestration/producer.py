"""The watcher producer of our Cosmos task groups, pushing only the XComs its watchers read.

Cosmos' producer (`DbtProducerWatcherOperator`, WATCHER mode) hands every dbt event to one parser,
which pushes a node's "dbt event" XCom (status, start, finish, message) on each of its lifecycle
events: NodeStart, NodeCompiling, NodeExecuting and NodeFinished. Each push goes through Airflow's
execution API, from inside dbt's worker threads, one at a time. A watcher reads that XCom once,
after its node has finished (`poke` and `execute_complete` log it then), so the value it reads is
the last one pushed, the NodeFinished one (or an error event after it). The three earlier pushes
per node are overwritten unread: this producer drops those three events before the parser sees
them, and passes every other event on unchanged (NodeFinished, the error events, the skip events
Cosmos uses to turn an upstream failure into a failed watcher, and the startup events).

A test's dbt event is read only when the test failed: a model's task reads the test results'
aggregate, and when it says "fail" it logs the dbt event of each of the model's tests that failed
(orchestration/watchers.py). So for a test's NodeFinished the parser still records the result (the
aggregate is pushed once all of a model's tests have finished), but its push under the test's own
dbt-event key is dropped unless the test failed.

Cosmos has no option for this and builds its producer itself, so `dbt_task_group` turns the
producer it built into this subclass (`adopt`). tests/unit/test_producer.py feeds events made
with dbt's own event classes (serialised as Cosmos' runner callback serialises them) through
Cosmos' parser with and without the filter, and compares what the watchers read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cosmos.operators.watcher import DbtProducerWatcherOperator

# a node's lifecycle events before it finishes: their dbt-event XCom is overwritten unread
UNREAD_NODE_EVENTS = frozenset({"NodeStart", "NodeCompiling", "NodeExecuting"})


def _event(line: str) -> dict:
    try:
        event = json.loads(line)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


class _WithoutKey:
    """A task instance whose xcom_push drops one key; everything else is the task instance's own."""

    def __init__(self, ti: Any, key: str):
        self._ti, self._key = ti, key

    def xcom_push(self, key: str, value: Any, **kwargs: Any) -> Any:
        if key == self._key:
            return None
        return self._ti.xcom_push(key=key, value=value, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ti, name)


def read_events_only(parse: Callable[[str, Any], None]) -> Callable[[str, Any], None]:
    """`parse` (Cosmos' log-line parser) for every dbt event but those in UNREAD_NODE_EVENTS, and
    without the push of a passed test's own dbt event (module docstring)."""
    from cosmos.operators._watcher.state import DBT_FAILED_STATUSES, get_dbt_event_xcom_key

    def parse_read_events(line: str, extra_kwargs: Any) -> None:
        event = _event(line)
        info, data = event.get("info") or {}, event.get("data") or {}
        name = info.get("name") if isinstance(info, dict) else None
        if name in UNREAD_NODE_EVENTS:
            return
        node = data.get("node_info") if isinstance(data, dict) else None
        context = extra_kwargs.get("context") if isinstance(extra_kwargs, dict) else None
        if (
            name == "NodeFinished"
            and isinstance(node, dict)
            and node.get("resource_type") == "test"
            and node.get("unique_id")
            and node.get("node_status") not in DBT_FAILED_STATUSES
            and context is not None
            and context.get("ti") is not None
        ):
            ti = _WithoutKey(context["ti"], get_dbt_event_xcom_key(node["unique_id"]))
            extra_kwargs = {**extra_kwargs, "context": {**context, "ti": ti}}
        parse(line, extra_kwargs)

    return parse_read_events


class ProducerPushingWhatWatchersRead(DbtProducerWatcherOperator):
    """Cosmos' watcher producer without the dbt-event pushes no watcher reads (module docstring)."""

    def _make_parse_callable(self) -> Callable[[str, Any], None]:
        return read_events_only(super()._make_parse_callable())


def adopt(producer: DbtProducerWatcherOperator) -> DbtProducerWatcherOperator:
    """Make the producer Cosmos built an instance of ProducerPushingWhatWatchersRead (same state)."""
    if type(producer) is not DbtProducerWatcherOperator:
        raise TypeError(f"expected Cosmos' DbtProducerWatcherOperator, got {type(producer).__name__}")
    producer.__class__ = ProducerPushingWhatWatchersRead
    return producer
