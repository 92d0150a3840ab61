"""One source system over HTTP: OAuth client-credentials, list endpoints, faults and admin endpoints."""

from __future__ import annotations

import base64
import logging
import os
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson

from market_access.simulators.faults import FaultConfig, FaultInjector
from market_access.simulators.world import World
from market_access.sources import catalog

log = logging.getLogger(__name__)

TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
OK_HEAD = '{"code":0,"message":"成功","data":'.encode()
BAD_GATEWAY = b"<html><head><title>%d</title></head><body><h1>%d Gateway Error</h1></body></html>"


def default_credentials(system: str) -> tuple[str, str]:
    """Dev credentials: client_id <system>-client, secret from SIM_CLIENT_SECRET or a dev default."""
    return f"{system}-client", os.environ.get("SIM_CLIENT_SECRET") or f"{system}-dev-secret"


class BadRequest(Exception):
    """A parameter error answered as HTTP 200 with code 40001."""


class SimulatorServer:
    """Serves one system of a (possibly shared) World on a background thread."""

    def __init__(
        self,
        world: World,
        system: str,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str | None = None,
        client_secret: str | None = None,
        base_path: str = "",
        faults: FaultConfig | None = None,
        token_ttl: int = 1800,
        on_advance: Callable[[World], None] | None = None,
    ) -> None:
        self.world = world
        self.system = catalog.system(system).name
        default_id, default_secret = default_credentials(system)
        self.client_id = client_id or default_id
        self.client_secret = client_secret or default_secret
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.host, self._port = host, port
        self.token_ttl = token_ttl
        self.on_advance = on_advance
        self._tokens: dict[str, float] = {}
        self._tokens_lock = threading.Lock()
        self.faults = faults or FaultConfig()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    @property
    def faults(self) -> FaultConfig:
        return self._injector.config

    @faults.setter
    def faults(self, config: FaultConfig) -> None:
        self._injector = FaultInjector(config)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else self._port

    @property
    def url(self) -> str:
        # a server bound to every interface is reached locally through loopback
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}{self.base_path}"

    def start(self) -> SimulatorServer:
        httpd = ThreadingHTTPServer((self.host, self._port), _Handler)
        httpd.daemon_threads = True
        httpd.sim = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.1,), name=f"sim-{self.system}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- tokens ----------------------------------------------------------------------------------
    def issue_token(self) -> str:
        now = time.monotonic()
        token = secrets.token_urlsafe(24)
        with self._tokens_lock:
            for t in [t for t, exp in self._tokens.items() if exp <= now]:
                del self._tokens[t]
            self._tokens[token] = now + self.token_ttl
        return token

    def token_ok(self, token: str) -> bool:
        with self._tokens_lock:
            exp = self._tokens.get(token)
            return exp is not None and exp > time.monotonic()

    def expire_token(self, token: str) -> None:
        with self._tokens_lock:
            self._tokens.pop(token, None)

    # --- pages -------------------------------------------------------------------------------------
    def page(self, resource: str, query: dict[str, list[str]]) -> bytes:
        since, until = _ts(query, "updated_since"), _ts(query, "updated_until")
        page_size = _int(query, "page_size", DEFAULT_PAGE_SIZE)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise BadRequest(f"page_size 须在 1–{MAX_PAGE_SIZE} 之间 (page_size must be 1–{MAX_PAGE_SIZE})")
        page = _int(query, "page", 1)
        if page < 1:
            raise BadRequest("page 须为正整数 (page must be >= 1)")
        after_id = query["after_id"][-1] if "after_id" in query else None
        if after_id is not None and since is None:
            raise BadRequest("after_id 须与 updated_since 同时使用 (after_id needs updated_since)")
        if after_id is not None and page != 1:
            raise BadRequest("page 与 after_id 不能同时使用 (use page or after_id, not both)")
        store = self.world.store(self.system, resource)
        with self.world.lock:
            lo, hi = store.window(since, until)
            start = (
                max(store.after(since, after_id), lo) if after_id is not None else lo + (page - 1) * page_size
            )
            items = store.slice(start, min(start + page_size, hi)) if start < hi else []
        head = b'{"total":%d,"page":%d,"page_size":%d,"items":[' % (hi - lo, page, page_size)
        return OK_HEAD + head + b",".join(items) + b"]}}"


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _ts(query: dict[str, list[str]], name: str) -> str | None:
    value = _one(query, name)
    if value is None or value == "":
        return None
    try:
        if not TS.match(value):
            raise ValueError
        datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise BadRequest(f"{name} 格式应为 YYYY-MM-DD HH:MM:SS (got {value!r})") from None
    return value


def _int(query: dict[str, list[str]], name: str, default: int) -> int:
    value = _one(query, name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name} 须为整数 (got {value!r})") from None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MarketAccessSimulator/1"
    timeout = 60  # idle keep-alive connections are closed, so stop() never waits on them

    @property
    def sim(self) -> SimulatorServer:
        return self.server.sim  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
        log.debug("%s %s", self.address_string(), format % args)

    # --- plumbing ------------------------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict[str, str] | None = None) -> None:
        self._send(status, orjson.dumps(obj), headers)

    def _route(self) -> tuple[str, dict[str, list[str]]] | None:
        parts = urlsplit(self.path)
        base = self.sim.base_path
        if base and not (parts.path == base or parts.path.startswith(base + "/")):
            return None
        return parts.path[len(base) :] or "/", parse_qs(parts.query, keep_blank_values=True)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reset(self) -> None:
        """Drop the connection without an answer (RST), like a broken gateway."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    # --- verbs -----------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        route = self._route()
        if route is None:
            return self._json(404, {"code": 40400, "message": "not found"})
        path, query = route
        if path.startswith("/api/v1/"):
            return self._data(path[len("/api/v1/") :], query)
        if path == "/_sim/state":
            return self._json(200, self._state())
        return self._json(404, {"code": 40400, "message": f"not found: {path}"})

    def do_POST(self) -> None:  # noqa: N802
        route = self._route()
        body = self._body()
        if route is None:
            return self._json(404, {"code": 40400, "message": "not found"})
        path, query = route
        if path == "/oauth/token":
            return self._token(body)
        if path == "/_sim/faults":
            return self._set_faults(body)
        if path == "/_sim/advance":
            return self._advance(query)
        return self._json(404, {"code": 40400, "message": f"not found: {path}"})

    # --- OAuth -------------------------------------------------------------------------------------
    def _token(self, body: bytes) -> None:
        form = parse_qs(body.decode("utf-8", "replace"))
        cid, secret = _one(form, "client_id"), _one(form, "client_secret")
        if cid is None and self.headers.get("Authorization", "").startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(self.headers["Authorization"][6:]).decode().partition(":")
            except ValueError:
                cid = None
        if _one(form, "grant_type") != "client_credentials":
            return self._json(400, {"code": 40001, "message": "参数错误: grant_type 须为 client_credentials"})
        sim = self.sim
        if not (
            cid == sim.client_id and secret is not None and secrets.compare_digest(secret, sim.client_secret)
        ):
            return self._json(401, {"code": 40100, "message": "invalid_client"})
        self._json(
            200, {"access_token": sim.issue_token(), "token_type": "Bearer", "expires_in": sim.token_ttl}
        )

    def _bearer(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else None

    # --- data --------------------------------------------------------------------------------------
    def _data(self, resource: str, query: dict[str, list[str]]) -> None:
        sim = self.sim
        token = self._bearer()
        if not token:
            return self._json(401, {"code": 40100, "message": "缺少访问令牌 (missing bearer token)"})
        if not sim.token_ok(token):
            return self._json(401, {"code": 40101, "message": "token expired"})
        if resource not in sim.world.systems[sim.system]:
            return self._json(404, {"code": 40400, "message": f"未知资源 (unknown resource) {resource!r}"})
        decision = sim._injector.decide()
        if decision.error == "reset":
            return self._reset()
        if decision.error == "429":
            retry = str(sim.faults.retry_after)
            return self._json(429, {"code": 42900, "message": "请求过于频繁"}, {"Retry-After": retry})
        if decision.error == "5xx":
            if decision.status in (502, 504):
                return self._send(
                    decision.status,
                    BAD_GATEWAY % (decision.status, decision.status),
                    content_type="text/html",
                )
            return self._json(decision.status, {"code": 50000, "message": "服务器内部错误"})
        if decision.error == "token_expiry":
            sim.expire_token(token)
            return self._json(401, {"code": 40101, "message": "token expired"})
        if decision.error == "busy":
            return self._json(200, {"code": 50001, "message": "系统繁忙"})
        if decision.write:
            sim.world.touch(sim.system, resource, sim.faults.writes_per_fault, sim._injector.write_rng)
        try:
            body = sim.page(resource, query)
        except BadRequest as e:
            return self._json(200, {"code": 40001, "message": f"参数错误: {e}"})
        if decision.slow:
            time.sleep(sim.faults.slow_seconds)
        if decision.error == "truncate":
            body = body[: max(1, int(len(body) * decision.cut))]
        self._send(200, body)

    # --- admin ---------------------------------------------------------------------------------------
    def _state(self) -> dict:
        sim = self.sim
        state = sim.world.state()
        return {
            "code": 0,
            "system": sim.system,
            **state,
            "resources": state["counts"][sim.system],
            "faults": sim.faults.as_dict(),
        }

    def _set_faults(self, body: bytes) -> None:
        sim = self.sim
        try:
            changes = orjson.loads(body or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("body must be a JSON object")
            sim.faults = sim.faults.updated(changes)
        except (ValueError, TypeError) as e:
            return self._json(400, {"code": 40001, "message": f"参数错误: {e}"})
        self._json(200, {"code": 0, "faults": sim.faults.as_dict()})

    def _advance(self, query: dict[str, list[str]]) -> None:
        sim = self.sim
        try:
            days = _int(query, "days", 1)
            if not 0 <= days <= 3660:
                raise BadRequest("days must be 0–3660")
        except BadRequest as e:
            return self._json(400, {"code": 40001, "message": f"参数错误: {e}"})
        sim.world.advance(days)
        if sim.on_advance is not None:
            sim.on_advance(sim.world)
        self._json(200, self._state())
