"""The simulators over HTTP: the contract's black-box checker, every fault kind, paging under writes, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from market_access.simulators.faults import FaultConfig
from market_access.simulators.server import SimulatorServer
from market_access.simulators.world import World

REPO = Path(__file__).resolve().parents[2]
# the contract's checker, carried in the repository (tests/unit/test_contract_copies.py keeps it current)
CHECKER = REPO / "tests" / "contract" / "check_server.py"
SYSTEMS = ("gov_service", "market_supervision", "credit", "random_inspection")


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=20260701, scale=0.02)


@pytest.fixture(scope="module")
def servers(world):
    # one of them behind a gateway prefix, as the contract's base_path allows
    started = {
        s: SimulatorServer(world, s, base_path="/gateway/credit" if s == "credit" else "").start()
        for s in SYSTEMS
    }
    yield started
    for s in started.values():
        s.stop()


@pytest.fixture()
def credit(world):
    """A private server whose faults a test may change freely."""
    server = SimulatorServer(world, "credit", token_ttl=1800).start()
    yield server
    server.stop()


def token(server: SimulatorServer) -> str:
    r = requests.post(
        server.url + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": server.client_id,
            "client_secret": server.client_secret,
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def get(server: SimulatorServer, resource: str, tok: str | None = None, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {tok or token(server)}"}
    return requests.get(f"{server.url}/api/v1/{resource}", params=params, headers=headers, timeout=30)


# --- the contract's black-box checker -------------------------------------------------------------
@pytest.mark.parametrize("system", SYSTEMS)
def test_check_server_passes(servers, system):
    s = servers[system]
    done = subprocess.run(
        [sys.executable, str(CHECKER), system, s.url, s.client_id, s.client_secret],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- contract details the checker does not cover --------------------------------------------------
def test_auth_errors(servers):
    s = servers["market_supervision"]
    r = requests.post(
        s.url + "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": s.client_id, "client_secret": "wrong"},
    )
    assert (r.status_code, r.json()) == (401, {"code": 40100, "message": "invalid_client"})
    r = requests.get(s.url + "/api/v1/entities")
    assert r.status_code == 401 and r.json()["code"] == 40100
    r = requests.get(s.url + "/api/v1/entities", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and r.json()["code"] == 40101
    body = requests.post(
        s.url + "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": s.client_id, "client_secret": s.client_secret},
    ).json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1800


def test_expired_token(world):
    s = SimulatorServer(world, "credit", token_ttl=1).start()
    try:
        tok = token(s)
        assert get(s, "risk-ratings", tok, page_size=1).json()["code"] == 0
        time.sleep(1.2)
        r = get(s, "risk-ratings", tok, page_size=1)
        assert (r.status_code, r.json()) == (401, {"code": 40101, "message": "token expired"})
    finally:
        s.stop()


def test_parameter_errors_and_unknown_resource(servers):
    s = servers["gov_service"]
    tok = token(s)
    for params in (
        {"page_size": 0},
        {"page_size": 501},
        {"page_size": "x"},
        {"page": 0},
        {"updated_since": "2026-02-30 00:00:00"},
        {"updated_until": "2026/01/01"},
        {"after_id": "BJ1"},
    ):
        r = get(s, "cases", tok, **params)
        assert r.status_code == 200 and r.json()["code"] == 40001, params
    assert get(s, "no-such-thing", tok).status_code == 404


def test_window_bounds_and_keyset(servers, world):
    s = servers["gov_service"]
    tok = token(s)
    truth = sorted((r["updated_at"], r["id"]) for r in world.truth("gov_service", "evaluations").values())
    since, until = truth[100][0], truth[300][0]
    expected = [rid for ua, rid in truth if since <= ua < until]  # since inclusive, until exclusive
    data = get(s, "evaluations", tok, updated_since=since, updated_until=until, page_size=500).json()["data"]
    assert data["total"] == len(expected)
    assert [i["id"] for i in data["items"]] == expected
    k = 150
    data = get(s, "evaluations", tok, updated_since=truth[k][0], after_id=truth[k][1], page_size=3).json()[
        "data"
    ]
    assert [i["id"] for i in data["items"]] == [rid for _, rid in truth[k + 1 : k + 4]]
    data = get(s, "evaluations", tok, page=3, page_size=7).json()["data"]
    assert [i["id"] for i in data["items"]] == [rid for _, rid in truth[14:21]]
    assert (data["page"], data["page_size"], data["total"]) == (3, 7, len(truth))


def test_json_is_utf8_not_escaped(servers):
    raw = get(servers["gov_service"], "cases", page_size=1).content
    assert "成功".encode() in raw and b"\\u" not in raw


# --- faults ----------------------------------------------------------------------------------------
def test_429_with_retry_after(credit):
    credit.faults = FaultConfig(rate_429=1.0, retry_after=2)
    r = get(credit, "admin-penalties", page_size=5)
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"


def test_5xx(credit):
    credit.faults = FaultConfig(rate_5xx=1.0, seed=4)
    statuses = {get(credit, "admin-penalties", page_size=5).status_code for _ in range(12)}
    assert statuses <= {500, 502, 503, 504} and len(statuses) >= 2


def test_connection_reset(credit):
    tok = token(credit)
    credit.faults = FaultConfig(rate_reset=1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        get(credit, "admin-penalties", tok, page_size=5)


def test_truncated_body(credit):
    credit.faults = FaultConfig(rate_truncate=1.0)
    r = get(credit, "admin-penalties", page_size=50)
    assert r.status_code == 200 and r.content.startswith(b'{"code":0')
    with pytest.raises(ValueError):
        json.loads(r.content)


def test_busy(credit):
    credit.faults = FaultConfig(rate_busy=1.0)
    r = get(credit, "admin-penalties", page_size=5)
    assert (r.status_code, r.json()) == (200, {"code": 50001, "message": "系统繁忙"})


def test_early_token_expiry_on_a_fresh_token(credit):
    credit.faults = FaultConfig(rate_token_expiry=1.0)
    tok = token(credit)
    r = get(credit, "admin-penalties", tok, page_size=5)
    assert (r.status_code, r.json()["code"]) == (401, 40101)
    credit.faults = FaultConfig()
    r = get(credit, "admin-penalties", tok, page_size=5)
    assert r.json()["code"] == 40101, "an expired token stays expired"
    assert get(credit, "admin-penalties", page_size=5).json()["code"] == 0


def test_slow_response(credit):
    credit.faults = FaultConfig(rate_slow=1.0, slow_seconds=0.6)
    started = time.monotonic()
    r = get(credit, "admin-penalties", page_size=5)
    assert r.json()["code"] == 0 and time.monotonic() - started >= 0.6


def test_profiles_and_admin_endpoints(credit, world):
    r = requests.post(credit.url + "/_sim/faults", json={"profile": "heavy", "rate_429": 0.5})
    assert r.status_code == 200 and r.json()["faults"]["rate_429"] == 0.5
    assert credit.faults.rate_reset == FaultConfig.profile("heavy").rate_reset > 0
    assert requests.post(credit.url + "/_sim/faults", json={"rate_nonsense": 1}).status_code == 400
    assert (
        requests.post(credit.url + "/_sim/faults", json={"profile": "off"}).json()["faults"]["rate_429"] == 0
    )
    state = requests.get(credit.url + "/_sim/state").json()
    assert state["system"] == "credit" and state["day"] == world.day
    assert set(state["resources"]) == {"admin-licenses", "admin-penalties", "credit-repairs", "risk-ratings"}


# --- paging while the source is being written ----------------------------------------------------------
def _page_walk(server, resource, size):
    tok, ids, page = token(server), [], 1
    while True:
        items = get(server, resource, tok, page=page, page_size=size).json()["data"]["items"]
        ids += [i["id"] for i in items]
        if len(items) < size:
            return ids
        page += 1


def _keyset_walk(server, resource, size):
    tok, ids, params = token(server), [], {}
    while True:
        items = get(server, resource, tok, page_size=size, **params).json()["data"]["items"]
        ids += [i["id"] for i in items]
        if len(items) < size:
            return ids
        params = {"updated_since": items[-1]["updated_at"], "after_id": items[-1]["id"]}


def test_page_walk_breaks_and_keyset_walk_holds_under_concurrent_writes():
    w = World(seed=77, scale=0.01)
    s = SimulatorServer(
        w, "gov_service", faults=FaultConfig(rate_concurrent_write=1.0, writes_per_fault=2, seed=3)
    )
    s.start()
    try:
        before = w.store("gov_service", "cases").max_updated_at
        paged = _page_walk(s, "cases", 100)
        truth = set(w.truth("gov_service", "cases"))
        assert len(paged) != len(set(paged)) or set(paged) != truth, "page walk should skip or repeat records"
        keyset = _keyset_walk(s, "cases", 100)
        assert set(keyset) == set(w.truth("gov_service", "cases")), "keyset walk must see every record"
        assert w.store("gov_service", "cases").max_updated_at > before
    finally:
        s.stop()


# --- command line --------------------------------------------------------------------------------------
def _serve(state_dir: Path, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "market_access.simulators",
        "serve",
        "--scale",
        "0.01",
        "--port-base",
        "0",
        "--faults",
        "off",
        "--state-dir",
        str(state_dir),
        "--no-cache",
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_ready(proc: subprocess.Popen, state_dir: Path) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (state_dir / "endpoints.json").exists():
            return json.loads((state_dir / "endpoints.json").read_text(encoding="utf-8"))
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    raise AssertionError("simulator did not write endpoints.json in time")


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def test_cli_serves_persists_the_day_and_restarts_at_it(tmp_path):
    env_secret = os.environ.get("SIM_CLIENT_SECRET")
    proc = _serve(tmp_path, "--advance", "2")
    try:
        endpoints = _wait_ready(proc, tmp_path)
        assert set(endpoints) == set(SYSTEMS)
        ep = endpoints["credit"]
        assert ep["client_id"] == "credit-client"
        if env_secret:
            assert ep["client_secret"] == env_secret
        state = requests.get(ep["url"] + "/_sim/state").json()
        assert (state["day"], state["clock"]) == (2, "2026-07-03 00:00:00")
        first = state["counts"]
    finally:
        out = _stop(proc)
    assert "generating cases" in out
    assert json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))["day"] == 2
    assert not (tmp_path / "endpoints.json").exists()

    proc = _serve(tmp_path)
    try:
        ep = _wait_ready(proc, tmp_path)["credit"]
        state = requests.get(ep["url"] + "/_sim/state").json()
        assert (state["day"], state["counts"]) == (2, first)
        tok = requests.post(
            ep["url"] + "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": ep["client_id"],
                "client_secret": ep["client_secret"],
            },
        ).json()
        assert tok["token_type"] == "Bearer"
    finally:
        _stop(proc)
