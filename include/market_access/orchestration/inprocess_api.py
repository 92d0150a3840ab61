"""The in-process execution API of `airflow dags test`, without its per-request dependency rebuild.

Under `dags test` every call a task makes (start, rendered fields, XCom reads and writes, final
state) goes through Airflow's execution API served in the same process (`InProcessExecutionAPI`).
That app bypasses authentication with FastAPI `dependency_overrides`, and while an app has any
override, FastAPI 0.136's `solve_dependencies` rebuilds the `Dependant` of every sub-dependency of
every request with `get_dependant` (signature inspection and a pydantic field per parameter) —
twice per request, since Cadwyn solves them again for the requested API version. The rebuilt
object depends only on the arguments `get_dependant` receives.

`memoize()` gives `solve_dependencies` a memo of those rebuilt dependants, keyed by every argument
of the call: the path, the callable itself (its identity), the name, the OAuth scopes and the
scope. The override that changes on every task (`dags test` registers a fresh `lambda: dag_bag`
per task) has no parameters: its dependant is cheap and is not kept, so no task's dag bag outlives
it. Nothing else changes: the same callables are called with the same arguments, the request's own
dependency cache works as before, and route construction is untouched (it mutates the dependants
it builds, so they are never shared).

Only `make run`'s runner (orchestration/dagtest.py) installs it. It checks the FastAPI and Cadwyn
it patches: if `solve_dependencies` no longer calls `get_dependant`, or the modules no longer hold
the function it replaces, it installs nothing. `bench/task_overhead.py` measures what it saves;
tests/unit/test_inprocess_api.py checks it against FastAPI itself.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import types
from collections.abc import Callable

MEMO_SIZE = 256

# the modules that imported solve_dependencies by name (FastAPI's router, Cadwyn's version bundle)
_HOLDERS = ("fastapi.dependencies.utils", "fastapi.routing", "cadwyn.structure.versions")


def _without_parameters(call: Callable) -> bool:
    code = getattr(call, "__code__", None)
    if code is None:
        return False
    return (
        code.co_argcount == 0
        and code.co_kwonlyargcount == 0
        and not code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)
    )


def memoized(get_dependant: Callable, size: int = MEMO_SIZE) -> Callable:
    """`get_dependant` with a bounded memo, for the keyword call `solve_dependencies` makes."""
    memo: collections.OrderedDict = collections.OrderedDict()

    def get(*, path, call, name=None, parent_oauth_scopes=None, scope=None, **more):
        if more or _without_parameters(call):
            return get_dependant(
                path=path, call=call, name=name, parent_oauth_scopes=parent_oauth_scopes, scope=scope, **more
            )
        key = (path, call, name, tuple(parent_oauth_scopes or ()), scope)
        try:
            found = memo.get(key)
        except TypeError:  # a callable that cannot be a key (unhashable): built as FastAPI builds it
            return get_dependant(
                path=path, call=call, name=name, parent_oauth_scopes=parent_oauth_scopes, scope=scope
            )
        if found is not None:
            with contextlib.suppress(KeyError):  # evicted meanwhile by another request: still valid
                memo.move_to_end(key)
            return found
        found = memo[key] = get_dependant(
            path=path, call=call, name=name, parent_oauth_scopes=parent_oauth_scopes, scope=scope
        )
        if len(memo) > size:
            memo.popitem(last=False)
        return found

    get.memo = memo
    return get


def memoize() -> Callable[[], None] | None:
    """Install the memo; returns the function that takes it out again, or None when FastAPI's or
    Cadwyn's code is not what this was written for (nothing is then changed)."""
    import importlib

    from fastapi.dependencies import utils

    original = utils.solve_dependencies
    if getattr(original, "_market_access_memo", False):
        return None
    if (
        "get_dependant" not in original.__code__.co_names
        or "solve_dependencies" not in original.__code__.co_names
    ):
        return None
    modules = []
    for name in _HOLDERS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if getattr(module, "solve_dependencies", None) is not original:
            return None
        modules.append(module)
    # a copy of solve_dependencies whose globals resolve get_dependant to the memo and its own
    # recursive call to the copy; FastAPI's module and every other function in it stay as they are
    scope = dict(original.__globals__)
    solver = types.FunctionType(
        original.__code__, scope, original.__name__, original.__defaults__, original.__closure__
    )
    solver.__kwdefaults__ = original.__kwdefaults__
    solver.__qualname__ = original.__qualname__
    solver.__doc__ = original.__doc__
    solver._market_access_memo = True
    scope["get_dependant"] = memoized(utils.get_dependant)
    scope["solve_dependencies"] = solver
    for module in modules:
        module.solve_dependencies = solver

    def undo() -> None:
        for module in modules:
            module.solve_dependencies = original

    return undo
