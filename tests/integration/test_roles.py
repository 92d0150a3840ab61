"""The raw layer belongs to the loader; the transformer may read it; an analyst may not."""

import psycopg
import pytest

from market_access.load.schema import bootstrap, ensure_raw_table
from market_access.sources import catalog


@pytest.fixture
def loaded(wconn):
    bootstrap(wconn)
    res = catalog.system("gov_service").resource("cases")
    ensure_raw_table(wconn, res)
    wconn.execute(
        "insert into raw.gov_service__cases (record_id, source_updated_at, is_deleted, payload, payload_md5, _batch_id, _loaded_at) "
        "values ('C1', now(), false, '{\"applicant_cert_no\": \"11010519491231002X\"}', md5('x')::uuid, 1, now())"
    )
    return wconn


@pytest.mark.parametrize("relation", ["raw.gov_service__cases", "ops.sync_state", "ops.quarantine"])
def test_analyst_is_refused(loaded, relation):
    loaded.execute("set role analyst")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        loaded.execute(f"select * from {relation}")
    loaded.execute("reset role")


def test_analyst_cannot_create_in_raw(loaded):
    loaded.execute("set role analyst")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        loaded.execute("create table raw.sneaky (x int)")
    loaded.execute("reset role")


def test_transformer_reads_raw_but_cannot_write(loaded):
    loaded.execute("set role transformer")
    assert loaded.execute("select count(*) from raw.gov_service__cases").fetchone()[0] == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        loaded.execute("delete from raw.gov_service__cases")
    loaded.execute("reset role")


def test_loader_owns_raw(loaded):
    owner = loaded.execute(
        "select tableowner from pg_tables where schemaname = 'raw' and tablename = 'gov_service__cases'"
    ).fetchone()[0]
    assert owner == "loader"
    assert loaded.execute("select nspowner::regrole::text from pg_namespace where nspname = 'raw'").fetchone()[0] == "loader"


def test_bootstrap_is_idempotent(loaded):
    bootstrap(loaded)
    bootstrap(loaded)
    assert loaded.execute("select count(*) from raw.gov_service__cases").fetchone()[0] == 1
