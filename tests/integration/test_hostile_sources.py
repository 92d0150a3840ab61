"""Sources beyond the contract's faults (issue #12, situation 3), each on the independent contract
server (tests/worlds/contract_server.py) over HTTP, through the real connector into the embedded
PostgreSQL: a cursor that does not advance, updated_at in the future or going backwards, an item of
several MB, bytes that are not UTF-8, and a source that lost its data."""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from market_access.load.sync import SourceLimits, sync_resource
from market_access.quality.batches import _held_sources
from market_access.sources import catalog
from market_access.sources.client import ContractClient, PermanentSourceError
from market_access.sources.connection import SourceConnection

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worlds"))
from contract_server import (  # noqa: E402
    BAD_BYTES_MARK,
    BEIJING,
    LONE_SURROGATE_MARK,
    TS,
    ContractServer,
    ContractWorld,
)

PENALTIES = catalog.system("credit").resource("admin-penalties")
EVALUATIONS = catalog.system("gov_service").resource("evaluations")
LIMITS = SourceLimits()  # the defaults an operator gets: 1 MiB items, 10 minutes, half the total


@pytest.fixture
def world():
    return ContractWorld(seed=3, per_resource=40)


@pytest.fixture
def server(world):
    srv = ContractServer(world).start()
    yield srv
    srv.stop()


def client(server: ContractServer, system: str) -> ContractClient:
    return ContractClient(SourceConnection.from_uri(system, server.uri(system)), sleep=lambda s: None)


def now() -> datetime:
    return datetime.now(BEIJING).replace(microsecond=0)


def sync(conn, server, res, *, page_size=10, until=None, using=None):
    return sync_resource(
        conn,
        using or client(server, res.system),
        res,
        until=until or now(),
        page_size=page_size,
        limits=LIMITS,
    )


def raw_rows(conn, res) -> list[tuple]:
    return conn.execute(
        f"select record_id, to_char(source_updated_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI:SS'), "
        f"is_deleted from {res.qualified_table} order by 1, 2"
    ).fetchall()


def current(conn, res) -> dict[str, tuple[str, bool]]:
    rows = conn.execute(
        f"""select distinct on (record_id) record_id,
                   to_char(source_updated_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI:SS'), is_deleted
            from {res.qualified_table} order by record_id, source_updated_at desc, raw_id desc"""
    ).fetchall()
    return {rid: (ts, deleted) for rid, ts, deleted in rows}


def state(conn, res) -> tuple:
    return conn.execute(
        "select watermark, last_status, source_total, held_since is not null from ops.sync_state "
        "where system = %s and resource = %s",
        (res.system, res.name),
    ).fetchone()


def test_a_cursor_that_does_not_advance_stops_with_a_clear_error_and_lands_nothing(wconn, world, server):
    first = sync(wconn, server, PENALTIES)
    assert first.rows_inserted == 40
    landed, (watermark, *_) = raw_rows(wconn, PENALTIES), state(wconn, PENALTIES)
    # a day later 3 changes (2 new, 1 corrected, 1 revoked = 4 versions) — and the server repeats page 1
    world.advance()
    server.hostile[("credit", "admin-penalties")] = "stuck_cursor"
    stamp = max(r["updated_at"] for r in world.records[("credit", "admin-penalties")].values())
    # the window re-reads from watermark − 10 min: well over a page of records, so paging is needed
    for rec in list(world.records[("credit", "admin-penalties")].values())[:15]:
        world.records[("credit", "admin-penalties")][rec["id"]] = dict(rec, updated_at=stamp, note="更正")
    before = server.data_requests.get(("credit", "admin-penalties"), 0)
    t0 = time.monotonic()
    with pytest.raises(PermanentSourceError) as err:
        sync(wconn, server, PENALTIES)
    assert time.monotonic() - t0 < 5
    message = str(err.value)
    assert (
        "分页游标未推进" in message and "does not advance" in message and "credit/admin-penalties" in message
    )
    # one history-total request, page 1, page 1 again → stopped (not a loop)
    assert server.data_requests[("credit", "admin-penalties")] - before == 3
    # nothing of the run's partial batch: the rows, the watermark and the totals are as before
    assert raw_rows(wconn, PENALTIES) == landed
    assert state(wconn, PENALTIES)[:2] == (watermark, "failed")
    status, error, rows = wconn.execute(
        "select status, error, rows_inserted from ops.load_batches order by batch_id desc limit 1"
    ).fetchone()
    assert (status, rows) == ("failed", 0) and "分页游标未推进" in error
    # the source fixed: the next run lands the day's changes
    server.hostile.clear()
    again = sync(wconn, server, PENALTIES)
    assert again.status == "succeeded" and current(wconn, PENALTIES) == {
        r["id"]: (r["updated_at"], r["is_deleted"])
        for r in world.records[("credit", "admin-penalties")].values()
    }


def test_updated_at_in_the_future_is_quarantined_and_never_moves_the_watermark(wconn, world, server):
    recs = world.records[("gov_service", "evaluations")]
    ahead = now() + timedelta(days=30)
    slightly = now() + timedelta(minutes=3)  # within the 10-minute tolerance: a clock a little fast
    far, near = "QEV00005", "QEV00006"
    recs[far] = dict(recs[far], updated_at=ahead.strftime(TS))
    recs[near] = dict(recs[near], updated_at=slightly.strftime(TS))
    server.hostile[("gov_service", "evaluations")] = "ignore_until"  # serves records after the window too
    until = now()
    result = sync(wconn, server, EVALUATIONS, until=until)
    # 40 records: 39 land (the 3-minute one too), 1 is quarantined
    assert (result.rows_inserted, result.rows_quarantined) == (39, 1)
    rid, reason, raw = wconn.execute("select record_id, reason, raw_text from ops.quarantine").fetchone()
    assert rid == far and "在未来" in reason and "SYNC_FUTURE_TOLERANCE_MINUTES" in reason
    assert ahead.strftime(TS) in raw
    # the watermark: the newest landed updated_at, but never past the window's end (the 3-minute
    # record is after it), so the next run still asks for everything from then on
    watermark = state(wconn, EVALUATIONS)[0]
    assert watermark == until.replace(microsecond=0)
    assert far not in current(wconn, EVALUATIONS) and near in current(wconn, EVALUATIONS)
    # once the source corrects the stamp, the record lands with the next run
    recs[far] = dict(recs[far], updated_at=(now() - timedelta(seconds=5)).strftime(TS))
    server.hostile.clear()
    later = sync(wconn, server, EVALUATIONS)
    assert later.rows_inserted == 1 and far in current(wconn, EVALUATIONS)


def test_updated_at_going_backwards_lands_as_history_and_is_listed(wconn, world, server):
    sync(wconn, server, EVALUATIONS)
    recs = world.records[("gov_service", "evaluations")]
    # the newest record: its updated_at is the watermark W; the next window starts at W − 10 min
    rid = max(recs.values(), key=lambda r: (r["updated_at"], r["id"]))["id"]
    newest = recs[rid]["updated_at"]
    # the source re-sends it with new content but an updated_at 2 minutes older than the version
    # we hold (inside the look-back, so the window delivers it)
    older = (datetime.strptime(newest, TS) - timedelta(minutes=2)).strftime(TS)
    recs[rid] = dict(recs[rid], updated_at=older, comment="时间倒退的版本")
    state_before = current(wconn, EVALUATIONS)
    result = sync(wconn, server, EVALUATIONS)
    assert result.rows_out_of_order == 1
    kind, record, detail = wconn.execute(
        "select kind, record_id, detail from ops.source_anomalies"
    ).fetchone()
    assert (kind, record) == ("updated_at_backwards", rid) and older in detail and newest in detail
    # both versions are stored; the current state is still the newer one (contract §1.2)
    versions = [r for r in raw_rows(wconn, EVALUATIONS) if r[0] == rid]
    assert [v[1] for v in versions] == [older, newest]
    assert current(wconn, EVALUATIONS)[rid] == state_before[rid] == (newest, False)


def test_an_item_of_several_mb_is_quarantined_with_its_size(wconn, world, server):
    recs = world.records[("gov_service", "evaluations")]
    big = "QEV00003"
    recs[big] = dict(recs[big], comment="很长的评价" * 600_000)  # 5 chars × 3 bytes × 600k = 9 MB
    result = sync(wconn, server, EVALUATIONS, page_size=50)
    assert (result.rows_inserted, result.rows_quarantined) == (39, 1)
    rid, reason, size = wconn.execute(
        "select record_id, reason, length(raw_text) from ops.quarantine"
    ).fetchone()
    assert rid == big and "记录过大" in reason and "SYNC_MAX_ITEM_BYTES=1048576" in reason
    assert size > 3_000_000  # kept verbatim (3 million characters of comment)


def test_a_response_larger_than_the_limit_is_refused_before_it_fills_memory(wconn, world, server):
    recs = world.records[("gov_service", "evaluations")]
    recs["QEV00003"] = dict(recs["QEV00003"], comment="x" * (3 << 20))
    c = ContractClient(
        SourceConnection.from_uri("gov_service", server.uri("gov_service")),
        sleep=lambda s: None,
        max_response_bytes=2 << 20,
    )
    with pytest.raises(PermanentSourceError, match="响应过大.*SYNC_MAX_RESPONSE_MB=2"):
        sync_resource(wconn, c, EVALUATIONS, until=now(), page_size=50, limits=LIMITS)
    assert wconn.execute(f"select count(*) from {EVALUATIONS.qualified_table}").fetchone()[0] == 0


def test_bytes_that_are_not_utf8_quarantine_the_item_and_the_rest_land(wconn, world, server):
    recs = world.records[("gov_service", "evaluations")]
    bad = "QEV00010"
    recs[bad] = dict(recs[bad], comment=f"窗口{BAD_BYTES_MARK}服务")
    lone = "QEV00020"
    recs[lone] = dict(recs[lone], channel=f"PC{LONE_SURROGATE_MARK}端")
    server.hostile[("gov_service", "evaluations")] = "invalid_utf8"
    c = client(server, "gov_service")
    result = sync(wconn, server, EVALUATIONS, using=c)
    assert (result.rows_inserted, result.rows_quarantined) == (38, 2)
    (rid, reason, raw), (rid2, reason2, raw2) = wconn.execute(
        "select record_id, reason, raw_text from ops.quarantine order by record_id"
    ).fetchall()
    assert rid == bad and "无效 UTF-8" in reason and "comment" in reason
    # GBK 不好 = b2 bb ba c3, shown byte by byte
    assert "窗口\\xb2\\xbb\\xba\\xc3服务" in raw
    # an escaped lone surrogate is no character either: the same, shown as \ud800
    assert rid2 == lone and "channel" in reason2 and "PC\\ud800端" in raw2
    assert c.stats["retries"] == 0  # not retried: the same bytes would come back


def test_a_source_that_lost_its_data_is_held_until_it_recovers(wconn, world, server):
    recs = world.records[("credit", "admin-penalties")]
    sync(wconn, server, PENALTIES)
    assert state(wconn, PENALTIES)[1:] == ("succeeded", 40, False)
    landed, watermark = raw_rows(wconn, PENALTIES), state(wconn, PENALTIES)[0]
    # the source loses 36 of its 40 records, and what is left carries a revocation (a tombstone)
    saved = dict(recs)
    for rid in list(recs)[4:]:
        del recs[rid]
    first = next(iter(recs))
    recs[first] = dict(recs[first], is_deleted=True, updated_at=(now() - timedelta(seconds=2)).strftime(TS))
    held = sync(wconn, server, PENALTIES)
    # 4 < 40 × (1 − 0.5): held — nothing landed, the tombstone included; watermark and total kept
    assert (held.status, held.rows_inserted, held.source_total) == ("held", 0, 4)
    assert raw_rows(wconn, PENALTIES) == landed
    assert state(wconn, PENALTIES) == (watermark, "held", 40, True)
    status, error, total, before = wconn.execute(
        "select status, error, source_total, source_total_before from ops.load_batches order by batch_id desc limit 1"
    ).fetchone()
    assert (status, total, before) == ("held", 4, 40) and "来源历史记录总数骤降" in error
    kind, detail = wconn.execute("select kind, detail from ops.source_anomalies").fetchone()
    assert kind == "history_total_drop" and "现 4 条, 上次 40 条 (减少 90%)" in detail
    # what the quality run's department feeds read (CR-SYNC-001): held as of today, not as of
    # yesterday (the hold happened today)
    today = now().date()
    assert _held_sources(wconn, today) == {"credit": ["行政处罚 (admin-penalties): 现 4 条, 此前 40 条"]}
    assert _held_sources(wconn, today - timedelta(days=1)) == {}
    # still lost the next day: still held (the reference stays the last good total, 40)
    assert sync(wconn, server, PENALTIES).status == "held"
    # the source restores its records (the revocation was real and stays): the run continues
    revoked = recs[first]
    recs.clear()
    recs.update(saved)
    recs[first] = revoked
    back = sync(wconn, server, PENALTIES)
    assert (back.status, back.rows_inserted, back.source_total) == ("succeeded", 1, 40)
    assert state(wconn, PENALTIES)[1:] == ("succeeded", 40, False)
    assert current(wconn, PENALTIES) == {r["id"]: (r["updated_at"], r["is_deleted"]) for r in recs.values()}
    assert _held_sources(wconn, today) == {}  # the latest batch succeeded: the rule passes again


def test_an_operator_accepts_a_smaller_source_by_resetting_its_total(wconn, world, server):
    recs = world.records[("credit", "admin-penalties")]
    sync(wconn, server, PENALTIES)
    for rid in list(recs)[10:]:
        del recs[rid]
    assert sync(wconn, server, PENALTIES).status == "held"
    wconn.execute(
        "update ops.sync_state set source_total = null where system = 'credit' and resource = 'admin-penalties'"
    )
    ok = sync(wconn, server, PENALTIES)
    assert (ok.status, ok.source_total) == ("succeeded", 10)
    # nothing landed is deleted: the 30 records the source no longer has are still in raw
    assert len(current(wconn, PENALTIES)) == 40
