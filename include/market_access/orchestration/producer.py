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

Cosmos has no option for this and builds its producer itself, so `dbt_task_group` turns the
producer it built into this subclass (`adopt`). tests/unit/test_producer.py runs a real dbt
build through Cosmos' parser with and without the filter and compares what the watchers read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cosmos.operators.watcher import DbtProducerWatcherOperator

# a node's lifecycle events before it finishes: their dbt-event XCom is overwritten unread
UNREAD_NODE_EVENTS = frozenset({"NodeStart", "NodeCompiling", "NodeExecuting"})


def event_name(line: str) -> str | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    info = event.get("info") if isinstance(event, dict) else None
    return info.get("name") if isinstance(info, dict) else None


def read_events_only(parse: Callable[[str, Any], None]) -> Callable[[str, Any], None]:
    """`parse` (Cosmos' log-line parser) for every dbt event but those in UNREAD_NODE_EVENTS."""

    def parse_read_events(line: str, extra_kwargs: Any) -> None:
        if event_name(line) in UNREAD_NODE_EVENTS:
            return
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
