"""What the warehouse tests share: a scratch database on the session's embedded server, prepared as
a build needs it (every source table, the transformer's grant, a test pseudonym key, the department
directory), and the reading of the sources' date forms."""

from __future__ import annotations

import dataclasses
import os
import re
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from market_access import deid, directory, warehouse
from market_access.dbt import ensure_sources, grant_transformer

REPO = Path(__file__).resolve().parents[1]
DEPARTMENTS_CSV = REPO / "config" / "departments.csv"
KEY = b"staging-test-key-" + bytes(range(32))
KEY_ID = "test-stg-1"


@contextmanager
def scratch_database(pg_server, prefix: str) -> Iterator[warehouse.WarehouseConfig]:
    """A new database on the given server (embedded or tests/pg_servers.py) for a module's tests, dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with warehouse.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield dataclasses.replace(pg_server, dbname=name)
    finally:
        with warehouse.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def prepare(conn) -> directory.Directory:
    """Source tables, the transformer's CREATE grant, the test key and the directory; returns it."""
    ensure_sources(conn)
    grant_transformer(conn)
    deid.install_key(conn, KEY, KEY_ID)
    depts = directory.load(DEPARTMENTS_CSV)
    directory.load_into_warehouse(conn, depts)
    return depts


def parse_day(value) -> date | None:
    """The date forms the sources write (2026-03-05, 2026/03/05, 20260305, optional time), full-width too."""
    if not value:
        return None
    v = unicodedata.normalize("NFKC", str(value)).strip()
    m = re.match(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T].*)?$", v) or re.match(
        r"^(\d{4})(\d{2})(\d{2})$", v
    )
    if not m:
        return None
    try:
        return date(*map(int, m.groups()))
    except ValueError:
        return None
