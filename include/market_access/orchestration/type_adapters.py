"""Airflow's task runner, with its pydantic type adapters built once instead of per use.

Before and after every task, Airflow's task runner stores the task's rendered template fields: for
each field it validates the value with `TypeAdapter(JsonValue)`, a new adapter each time. Building a
pydantic TypeAdapter generates its whole validation schema (JsonValue is a recursive union), so a
Cosmos watcher task with its 12 template fields built 24 of them per task: about a sixth of the
task's cost in a py-spy profile of `make run`'s day. pydantic documents adapters as reusable;
`reuse()` makes the runner's `TypeAdapter(<type>)` return one adapter per type (the types it asks
for are JsonValue and StartupDetails). What they validate, and how, is unchanged.

Only `make run`'s runner (orchestration/dagtest.py) installs it, as it does the dependency memo
(orchestration/inprocess_api.py); `bench/task_overhead.py` measures both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable


def reuse() -> Callable[[], None] | None:
    """Install the shared adapters; returns the function that takes them out again, or None when the
    task runner is not what this was written for (nothing is then changed)."""
    from airflow.sdk.execution_time import task_runner
    from pydantic import TypeAdapter

    real = getattr(task_runner, "TypeAdapter", None)
    if real is not TypeAdapter:  # already installed, or the runner no longer uses pydantic's name
        return None

    @functools.lru_cache(maxsize=64)
    def shared(type_: object) -> TypeAdapter:
        return real(type_)

    def adapter(type_: object, *args, **kwargs) -> TypeAdapter:
        if args or kwargs:  # a configured adapter: built as before
            return real(type_, *args, **kwargs)
        try:
            return shared(type_)
        except TypeError:  # an unhashable type expression
            return real(type_)

    task_runner.TypeAdapter = adapter

    def undo() -> None:
        task_runner.TypeAdapter = real

    return undo
