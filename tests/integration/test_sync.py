"""Ingestion end to end: the simulators over HTTP on loopback → connector → raw layer in PostgreSQL."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime

import orjson
import pytest

from market_access.load.sync import sync_resource
from market_access.simulators.faults import FaultConfig
from market_access.simulators.server import SimulatorServer
from market_access.simulators.world import World
from market_access.sources import catalog
from market_access.sources.client import ContractClient, PermanentSourceError
from market_access.sources.connection import SourceConnection

UNTIL = datetime(2030, 1, 1, tzinfo=UTC)
SECRET = "test-secret"


def make_servers(world: World, faults: FaultConfig | None = None) -> dict[str, SimulatorServer]:
    servers = {}
    for name in catalog.systems():
        srv = SimulatorServer(world, name, port=0, client_id=f"{name}-client", client_secret=SECRET, faults=faults)
        srv.start()
        servers[name] = srv
    return servers


def client_for(server: SimulatorServer, system: str, secret: str = SECRET, **kw) -> ContractClient:
    url = server.url.replace("://", f"://{system}-client:{secret}@", 1)
    kw.setdefault("sleep", lambda s: time.sleep(min(s, 0.05)))  # honour Retry-After, but keep tests quick
    return ContractClient(SourceConnection.from_uri(system, url), **kw)


def current_state(conn, res) -> dict[str, tuple[str, bool, dict]]:
    rows = conn.execute(
        f"""select distinct on (record_id) record_id,
                   to_char(source_updated_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI:SS'),
                   is_deleted, payload::text
            from {res.qualified_table} order by record_id, source_updated_at desc, raw_id desc"""
    ).fetchall()
    return {rid: (ts, deleted, orjson.loads(payload)) for rid, ts, deleted, payload in rows}


def expected_state(world: World, res) -> dict[str, tuple[str, bool, dict]]:
    return {rid: (rec["updated_at"], rec["is_deleted"], rec) for rid, rec in world.truth(res.system, res.name).items()}


@pytest.fixture
def world():
    return World(seed=11, scale=0.02)


@pytest.fixture
def servers(world):
    servers = make_servers(world)
    yield servers
    for s in servers.values():
        s.stop()


def sync_everything(conn, servers, page_size=200, **client_kw):
    results = {}
    for res in catalog.all_resources():
        client = client_for(servers[res.system], res.system, **client_kw)
        results[res.table] = (sync_resource(conn, client, res, until=UNTIL, page_size=page_size), client)
    return results


def test_every_resource_lands_record_for_record(wconn, world, servers):
    results = sync_everything(wconn, servers)
    for res in catalog.all_resources():
        expected = expected_state(world, res)
        assert expected, f"the simulator has no {res.name}"
        assert current_state(wconn, res) == expected, res.table
        result, _ = results[res.table]
        assert result.rows_inserted == len(expected)  # one version each on a first load
    # tombstones are kept as rows with is_deleted = true
    deleted = sum(
        wconn.execute(f"select count(*) from {r.qualified_table} where is_deleted").fetchone()[0]
        for r in catalog.all_resources()
    )
    truth_deleted = sum(
        sum(1 for rec in world.truth(r.system, r.name).values() if rec["is_deleted"]) for r in catalog.all_resources()
    )
    assert deleted == truth_deleted


def test_second_sync_without_changes_adds_nothing(wconn, servers):
    sync_everything(wconn, servers)
    again = sync_everything(wconn, servers)
    assert all(result.rows_inserted == 0 for result, _ in again.values())


def test_a_later_day_pulls_only_what_changed(wconn, world, servers):
    sync_everything(wconn, servers)
    before = {r.table: world.truth(r.system, r.name) for r in catalog.all_resources()}
    world.advance(1)
    results = sync_everything(wconn, servers)
    changed_total = 0
    for res in catalog.all_resources():
        after = world.truth(res.system, res.name)
        changed = {rid for rid, rec in after.items() if before[res.table].get(rid) != rec}
        result, _ = results[res.table]
        assert result.rows_inserted == len(changed), res.table
        changed_total += len(changed)
        assert current_state(wconn, res) == expected_state(world, res)
        # the window starts at the previous watermark (minus the look-back), not at the beginning
        assert result.window_since is not None
    assert changed_total > 0, "a simulated day should bring new or changed records"


def test_every_fault_switched_on_loses_and_duplicates_nothing(wconn, world):
    # the heavy profile with early token expiry made frequent enough to happen on every system
    servers = make_servers(world, faults=dataclasses.replace(FaultConfig.profile("heavy"), rate_token_expiry=0.2))
    try:
        results = sync_everything(wconn, servers, page_size=100)
    finally:
        for s in servers.values():
            s.stop()
    retries = sum(client.stats["retries"] for _, client in results.values())
    refreshes = sum(client.stats["token_refreshes"] for _, client in results.values())
    assert retries > 0 and refreshes > len(results), "the heavy profile should have forced retries and new tokens"
    for res in catalog.all_resources():
        assert current_state(wconn, res) == expected_state(world, res), res.table
        dupes = wconn.execute(
            f"select count(*) from (select record_id, source_updated_at, md5(payload::text) from {res.qualified_table} "
            "group by 1, 2, 3 having count(*) > 1) d"
        ).fetchone()[0]
        assert dupes == 0


def test_records_updated_while_paging_are_not_lost(wconn, world):
    """Concurrent writes move records behind the cursor; keyset paging still ends on the final truth."""
    faults = FaultConfig(rate_concurrent_write=1.0)
    res = catalog.system("gov_service").resource("cases")
    srv = SimulatorServer(world, "gov_service", port=0, client_id="gov_service-client", client_secret=SECRET,
                          faults=faults)
    srv.start()
    try:
        before = world.truth("gov_service", "cases")
        sync_resource(wconn, client_for(srv, "gov_service"), res, until=UNTIL, page_size=50)
    finally:
        srv.stop()
    after = world.truth("gov_service", "cases")
    moved = [rid for rid, rec in after.items() if before.get(rid) != rec]
    assert moved, "records should have been updated during paging"
    assert current_state(wconn, res) == expected_state(world, res)


def test_wrong_client_secret_fails_fast_with_a_clear_message(wconn, servers):
    res = catalog.system("credit").resource("admin-penalties")
    client = client_for(servers["credit"], "credit", secret="wrong", sleep=time.sleep)
    t0 = time.monotonic()
    with pytest.raises(PermanentSourceError) as err:
        sync_resource(wconn, client, res, until=UNTIL)
    assert time.monotonic() - t0 < 3, "a permanent error must not be retried"
    message = str(err.value)
    assert "credit" in message and "401" in message and "AIRFLOW_CONN_CREDIT" in message
    assert "wrong" not in message  # the secret is not echoed
    assert client.stats["requests"] == 1
    status, error = wconn.execute("select status, error from ops.load_batches").fetchone()
    assert status == "failed" and "AIRFLOW_CONN_CREDIT" in error
    assert wconn.execute("select last_status from ops.sync_state").fetchone()[0] == "failed"
    assert wconn.execute("select count(*) from raw.credit__admin_penalties").fetchone()[0] == 0


KILLED_SYNC = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from market_access import warehouse
    from market_access.load.sync import sync_resource
    from market_access.sources import catalog
    from market_access.sources.client import ContractClient
    from market_access.sources.connection import SourceConnection

    class Announcing(ContractClient):
        def iter_pages(self, *a, **kw):
            for page in super().iter_pages(*a, **kw):
                print("PAGE", page.number, flush=True)
                yield page

    cfg = warehouse.WarehouseConfig.from_uri(sys.argv[1])
    client = Announcing(SourceConnection.from_uri("gov_service", sys.argv[2]))
    with warehouse.connect(cfg, autocommit=True) as conn:
        sync_resource(conn, client, catalog.system("gov_service").resource("cases"),
                      until=datetime(2030, 1, 1, tzinfo=UTC), page_size=20)
    print("DONE", flush=True)
    """
)


def test_a_process_killed_mid_load_then_rerun_ends_in_the_same_state(wconn, warehouse_cfg, world):
    res = catalog.system("gov_service").resource("cases")
    srv = SimulatorServer(world, "gov_service", port=0, client_id="gov_service-client", client_secret=SECRET,
                          faults=FaultConfig(rate_slow=1.0, slow_seconds=0.05))
    srv.start()
    try:
        url = srv.url.replace("://", f"://gov_service-client:{SECRET}@", 1)
        proc = subprocess.Popen([sys.executable, "-c", KILLED_SYNC, warehouse_cfg.airflow_uri(), url],
                                stdout=subprocess.PIPE, text=True, env=dict(os.environ))
        for line in proc.stdout:
            if line.startswith("PAGE 10"):
                os.kill(proc.pid, signal.SIGKILL)  # no clean-up, no rollback from the client side
                break
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        # the killed window committed nothing: no rows, no watermark, no succeeded batch
        assert wconn.execute("select count(*) from raw.gov_service__cases").fetchone()[0] == 0
        assert wconn.execute("select watermark from ops.sync_state").fetchall() in ([], [(None,)])
        assert wconn.execute("select count(*) from ops.load_batches where status = 'succeeded'").fetchone()[0] == 0

        srv.faults = FaultConfig()
        result = sync_resource(wconn, client_for(srv, "gov_service"), res, until=UNTIL, page_size=200)
    finally:
        srv.stop()
    expected = expected_state(world, res)
    assert result.rows_inserted == len(expected)
    assert current_state(wconn, res) == expected
