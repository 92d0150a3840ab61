"""Items that cannot be landed go to ops.quarantine with the raw text and a reason; the rest land."""

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from market_access.load.sync import sync_resource
from market_access.sources import catalog
from market_access.sources.client import ContractClient
from market_access.sources.connection import SourceConnection

ITEMS = json.loads((Path(__file__).parents[1] / "fixtures" / "penalties_with_bad_items.json").read_text("utf-8"))


class RecordedSource(BaseHTTPRequestHandler):
    """Serves a recorded page (contract §1.2 envelope) after the usual token dance."""

    def log_message(self, *args):
        pass

    def _send(self, status, body):
        raw = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(200, {"access_token": "t", "token_type": "Bearer", "expires_in": 1800})

    def do_GET(self):
        if self.headers.get("Authorization") != "Bearer t":
            return self._send(401, {"code": 40100, "message": "invalid_client"})
        self._send(200, {"code": 0, "message": "成功",
                         "data": {"total": len(ITEMS), "page": 1, "page_size": 500, "items": ITEMS}})


@pytest.fixture
def recorded_source():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordedSource)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://cid:secret@127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_bad_items_are_quarantined_with_reasons_and_good_ones_land(wconn, recorded_source):
    res = catalog.system("credit").resource("admin-penalties")
    client = ContractClient(SourceConnection.from_uri("credit", recorded_source))
    result = sync_resource(wconn, client, res, until=datetime(2026, 7, 1, tzinfo=UTC))

    # 7 items: P-0001 and P-0007 are landable; 5 are not (no id, bad timestamp, bad flag, not an object, NUL)
    assert (result.rows_received, result.rows_inserted, result.rows_quarantined) == (2, 2, 5)
    landed = wconn.execute("select record_id, is_deleted from raw.credit__admin_penalties order by 1").fetchall()
    assert landed == [("P-0001", False), ("P-0007", True)]

    q = wconn.execute("select record_id, reason, raw_text from ops.quarantine order by quarantine_id").fetchall()
    assert [r[0] for r in q] == [None, "P-0003", "P-0004", None, "P-0006"]
    reasons = [r[1] for r in q]
    assert "missing or empty id" in reasons[0]
    assert "updated_at" in reasons[1]
    assert "is_deleted" in reasons[2]
    assert "not an object" in reasons[3]
    assert "NUL" in reasons[4]
    assert json.loads(q[1][2])["decision_no"] == "区市监罚〔2026〕3号"  # the raw text is kept verbatim

    batch = wconn.execute(
        "select status, rows_received, rows_inserted, rows_quarantined from ops.load_batches"
    ).fetchone()
    assert batch == ("succeeded", 2, 2, 5)
    # watermark = newest landed version, 2026-06-01 10:00:06 Beijing
    wm = wconn.execute("select watermark from ops.sync_state").fetchone()[0]
    assert wm == datetime(2026, 6, 1, 2, 0, 6, tzinfo=UTC)


def test_rerun_of_the_same_window_adds_nothing(wconn, recorded_source):
    res = catalog.system("credit").resource("admin-penalties")
    client = ContractClient(SourceConnection.from_uri("credit", recorded_source))
    until = datetime(2026, 7, 1, tzinfo=UTC)
    sync_resource(wconn, client, res, until=until)
    again = sync_resource(wconn, client, res, until=until)
    assert again.rows_received == 2 and again.rows_inserted == 0
    assert wconn.execute("select count(*) from raw.credit__admin_penalties").fetchone()[0] == 2


def test_a_version_repeated_inside_one_window_is_stored_once(wconn, recorded_source, monkeypatch):
    """A misbehaving source sends the same version twice in one walk: the direct COPY hits the
    unique index, the window is reloaded through the de-duplicating stage, nothing is lost."""
    doubled = ITEMS + [ITEMS[0], ITEMS[-1]]
    monkeypatch.setitem(globals(), "ITEMS", doubled)  # the handler reads the module global
    res = catalog.system("credit").resource("admin-penalties")
    client = ContractClient(SourceConnection.from_uri("credit", recorded_source))
    result = sync_resource(wconn, client, res, until=datetime(2026, 7, 1, tzinfo=UTC))
    assert (result.rows_received, result.rows_inserted) == (4, 2)
    assert wconn.execute("select count(*) from raw.credit__admin_penalties").fetchone()[0] == 2
    assert wconn.execute("select count(*) from ops.quarantine").fetchone()[0] == 5  # not doubled by the retry


def test_history_without_a_watermark_is_not_duplicated(wconn, recorded_source):
    """Sync state lost (e.g. restored from an older backup) while raw keeps its history: the
    full re-read goes through the stage and adds nothing."""
    res = catalog.system("credit").resource("admin-penalties")
    client = ContractClient(SourceConnection.from_uri("credit", recorded_source))
    until = datetime(2026, 7, 1, tzinfo=UTC)
    sync_resource(wconn, client, res, until=until)
    wconn.execute("update ops.sync_state set watermark = null")
    again = sync_resource(wconn, client, res, until=until)
    assert again.window_since is None and again.rows_inserted == 0
    assert wconn.execute("select count(*) from raw.credit__admin_penalties").fetchone()[0] == 2
