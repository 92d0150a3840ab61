"""orchestration/inprocess_api.py: FastAPI's dependency solving with the memo gives what it gives
without it, rebuilds fewer dependants, and still calls a per-request override afresh.
orchestration/type_adapters.py: the task runner's shared pydantic adapters validate as new ones do."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.dependencies import utils
from fastapi.testclient import TestClient

from market_access.orchestration import inprocess_api


def session():
    yield {"db": "metadata"}


def token(request: Request) -> str:
    raise AssertionError("overridden: never called")


def claims(tok: Annotated[str, Depends(token)], request: Request) -> dict:
    return {"token": tok, "ti": request.path_params.get("ti")}


def dag_bag() -> str:
    raise AssertionError("overridden: never called")


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ti/{ti}")
    def read(
        ti: str,
        key: str,
        s: Annotated[dict, Depends(session)],
        c: Annotated[dict, Depends(claims)],
        bag: Annotated[str, Depends(dag_bag)],
    ) -> dict:
        return {"ti": ti, "key": key, "session": s, "claims": c, "bag": bag}

    async def always_allow(request: Request) -> str:
        return "ok-" + request.path_params.get("ti", "")

    app.dependency_overrides[token] = always_allow
    return app


def answer(bag: str):
    return lambda: bag


def responses(app: FastAPI, bags: list[str]) -> list[dict]:
    out = []
    with TestClient(app) as client:
        for i, bag in enumerate(bags):
            app.dependency_overrides[dag_bag] = answer(bag)  # a new callable per task, as dags test does
            r = client.get(f"/ti/t{i}", params={"key": f"k{i}"})
            assert r.status_code == 200, r.text
            out.append(r.json())
        r = client.get("/ti/x")  # a missing query parameter: the same validation error
        out.append({"status": r.status_code, "detail": r.json()["detail"]})
    return out


@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = utils.get_dependant

    def counting(**kw):
        calls.append(kw["call"])
        return real(**kw)

    monkeypatch.setattr(utils, "get_dependant", counting)
    return calls


def test_same_responses_fewer_rebuilds(counted):
    bags = [f"bag{i}" for i in range(6)]
    app = make_app()
    counted.clear()  # what building the routes rebuilt is not the point: what each request rebuilds
    without = responses(app, bags)
    counted_without = list(counted)

    undo = inprocess_api.memoize()
    assert undo is not None
    try:
        assert inprocess_api.memoize() is None  # installed once only
        import fastapi.routing

        assert fastapi.routing.solve_dependencies is utils.solve_dependencies
        app = make_app()
        counted.clear()
        with_memo = responses(app, bags)
    finally:
        undo()
    assert with_memo == without
    # every request's override answered afresh, the path and query parameters are the request's own
    assert [r["bag"] for r in with_memo[:-1]] == bags
    assert [r["claims"] for r in with_memo[:-1]] == [{"token": f"ok-t{i}", "ti": f"t{i}"} for i in range(6)]
    assert with_memo[-1]["status"] == 422
    # without the memo every request rebuilds every sub-dependency; with it those with parameters
    # are built once, those without (a session generator, the per-task override) as before
    names = lambda calls: [getattr(c, "__name__", str(c)) for c in calls]  # noqa: E731
    assert names(counted_without).count("claims") == 7
    assert [names(counted).count(n) for n in ("claims", "token", "always_allow")] == [1, 1, 1]
    assert names(counted).count("<lambda>") == names(counted_without).count("<lambda>")
    assert len(counted) < len(counted_without) / 2
    assert utils.solve_dependencies.__name__ == "solve_dependencies"
    assert not getattr(utils.solve_dependencies, "_market_access_memo", False)  # undone


def test_memo_keys_on_every_argument():
    built = []

    def fake(**kw):
        built.append(kw)
        return object()

    get = inprocess_api.memoized(fake, size=2)

    def a(x: int):
        return x

    def b(x: int):
        return x

    first = get(path="/p", call=a, name="n", parent_oauth_scopes=["s"], scope="function")
    assert get(path="/p", call=a, name="n", parent_oauth_scopes=["s"], scope="function") is first
    for other in (
        dict(path="/q", call=a, name="n", parent_oauth_scopes=["s"], scope="function"),
        dict(path="/p", call=b, name="n", parent_oauth_scopes=["s"], scope="function"),
        dict(path="/p", call=a, name="m", parent_oauth_scopes=["s"], scope="function"),
        dict(path="/p", call=a, name="n", parent_oauth_scopes=["t"], scope="function"),
        dict(path="/p", call=a, name="n", parent_oauth_scopes=["s"], scope="request"),
    ):
        assert get(**other) is not first
    assert len(get.memo) == 2  # bounded
    assert len(built) == 6

    # a callable without parameters (the per-task dag-bag override) is never kept
    built.clear()
    get(path="/p", call=lambda: 1, name="bag")
    get(path="/p", call=lambda: 1, name="bag")
    assert len(built) == 2 and all(k[1].__name__ != "<lambda>" for k in get.memo)


def test_nothing_installed_when_fastapi_is_not_what_it_expects(monkeypatch):
    async def other_solver(**kw):
        return None

    monkeypatch.setattr(utils, "solve_dependencies", other_solver)
    assert inprocess_api.memoize() is None
    assert utils.solve_dependencies is other_solver


def test_the_task_runner_shares_its_type_adapters():
    from airflow.sdk.execution_time import task_runner
    from pydantic import JsonValue, TypeAdapter

    from market_access.orchestration import type_adapters

    undo = type_adapters.reuse()
    assert undo is not None
    try:
        assert type_adapters.reuse() is None  # installed once only
        first = task_runner.TypeAdapter(JsonValue)
        assert task_runner.TypeAdapter(JsonValue) is first
        value = {"select": ["path:models/staging"], "vars": {"n": 1, "x": None}, "env": "区县"}
        assert first.validate_python(value) == TypeAdapter(JsonValue).validate_python(value) == value
        with pytest.raises(Exception, match="(?i)valid"):
            first.validate_python({"not json": object()})
        # an adapter with a configuration is built as before, not shared
        assert task_runner.TypeAdapter(JsonValue, config=None) is not first
    finally:
        undo()
    assert task_runner.TypeAdapter is TypeAdapter
