"""One HTTP client for the contract all four source systems share (OAuth, keyset paging, retries)."""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson
import requests

from market_access.sources.connection import SourceConnection, env_var_for

log = logging.getLogger(__name__)

TRANSIENT_HTTP = {500, 502, 503, 504}
MAX_TOKEN_REFRESHES = 5
# a page is a few hundred KB; a response this large is refused before it exhausts memory
DEFAULT_MAX_RESPONSE_MB = 64


class SourceError(RuntimeError):
    """A request to a source system failed; the message names the system, resource and window."""

    permanent = False


class TransientSourceError(SourceError):
    """Still failing after every retry: the batch fails and commits nothing; a later run retries."""


class PermanentSourceError(SourceError):
    """Retrying cannot help (bad credentials, bad parameters, protocol violation): fail fast."""

    permanent = True


@dataclass(frozen=True)
class Window:
    since: str | None  # inclusive, 'YYYY-MM-DD HH:MM:SS' Beijing time
    until: str | None  # exclusive

    def __str__(self) -> str:
        return f"[{self.since or '…'}, {self.until or '…'})"


@dataclass
class Page:
    items: list
    total: int | None
    number: int


class ContractClient:
    """Talks to one source system; safe to reuse for several resources, not across threads."""

    def __init__(
        self,
        conn: SourceConnection,
        *,
        timeout: float = 60.0,
        max_attempts: int = 8,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_response_bytes: int | None = None,
    ) -> None:
        self.conn = conn
        if max_response_bytes is None:
            mb = os.environ.get("SYNC_MAX_RESPONSE_MB", "").strip()
            max_response_bytes = int(float(mb) * (1 << 20)) if mb else DEFAULT_MAX_RESPONSE_MB << 20
        self.max_response_bytes = max_response_bytes
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "market-access-platform/0.1"})
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._token: str | None = None
        self._token_deadline = 0.0
        self.stats = {"requests": 0, "retries": 0, "token_refreshes": 0, "waited_seconds": 0.0}

    # --- public -------------------------------------------------------------------------------
    def iter_pages(
        self, resource: str, window: Window, *, page_size: int = 500
    ) -> Iterator[Page]:
        """Walk a window with keyset paging (safe while the source is being written)."""
        if not 1 <= page_size <= 500:
            raise ValueError(f"page_size must be 1..500, not {page_size}")
        cursor: tuple[str, str] | None = None
        seen: set[tuple[str, str]] = set()  # every cursor used: a server that repeats pages is caught
        number = 0
        while True:
            params: dict[str, object] = {"page_size": page_size}
            if window.until:
                params["updated_until"] = window.until
            if cursor:
                params["updated_since"], params["after_id"] = (_wire(v) for v in cursor)
            elif window.since:
                params["updated_since"] = window.since
            body = self._call("GET", f"/api/v1/{resource}", resource, window, params=params)
            items, total = self._page_items(body, resource, window)
            number += 1
            if len(items) >= page_size:
                # decided before the page is handed on, so that nothing of a looping walk is landed
                # by a caller that commits per page; the sync commits per window anyway
                nxt = _last_cursor(items)
                if nxt is None:
                    raise self._error(
                        PermanentSourceError, resource, window,
                        "分页无法推进 the server returned a full page whose last items carry no usable "
                        "(updated_at, id); keyset paging cannot continue",
                    )
                if nxt in seen or nxt == cursor or (cursor is not None and nxt[0] < cursor[0]):
                    raise self._error(
                        PermanentSourceError, resource, window,
                        f"分页游标未推进, 来源重复返回同一页 (the cursor does not advance: page {number} ends at "
                        f"updated_at={nxt[0]!r}, id={_visible(nxt[1])!r}, "
                        f"{'the same as an earlier page' if nxt in seen or nxt == cursor else 'before the previous page'}"
                        f"; stopped after {number} requests instead of looping; nothing from this window was committed)",
                    )
                seen.add(nxt)
                cursor = nxt
            yield Page(items=items, total=total, number=number)
            if len(items) < page_size:
                return

    def history_total(self, resource: str, until: str | None) -> int | None:
        """How many records the source holds over its whole history (before `until`): the `total`
        of a one-item page with no lower bound; None when the server does not say."""
        params: dict[str, object] = {"page_size": 1}
        if until:
            params["updated_until"] = until
        window = Window(None, until)
        body = self._call("GET", f"/api/v1/{resource}", resource, window, params=params)
        _, total = self._page_items(body, resource, window)
        return total

    def fetch_token(self) -> str:
        body = self._call(
            "POST",
            "/oauth/token",
            "oauth/token",
            None,
            data={
                "grant_type": "client_credentials",
                "client_id": self.conn.client_id,
                "client_secret": self.conn.client_secret,
            },
            authenticated=False,
        )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise self._error(PermanentSourceError, "oauth/token", None, "令牌响应无 access_token (no access_token in the token response)")
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else 300.0
        self._token = token
        # renew a little early; the server may still expire it sooner, which _call handles
        self._token_deadline = time.monotonic() + max(1.0, lifetime - min(60.0, lifetime / 10))
        self.stats["token_refreshes"] += 1
        return token

    # --- internals ------------------------------------------------------------------------------
    def _bearer(self) -> str:
        if self._token is None or time.monotonic() >= self._token_deadline:
            self.fetch_token()
        assert self._token is not None
        return self._token

    def _call(
        self,
        method: str,
        path: str,
        resource: str,
        window: Window | None,
        *,
        params: dict | None = None,
        data: dict | None = None,
        authenticated: bool = True,
    ) -> dict:
        url = self.conn.base_url + path
        failures = 0
        refreshes = 0
        while True:
            headers = {"Authorization": f"Bearer {self._bearer()}"} if authenticated else {}
            self.stats["requests"] += 1
            try:
                resp = self.session.request(
                    method, url, params=params, data=data, headers=headers,
                    timeout=self.timeout, verify=self.conn.verify, stream=True,
                )
                with resp:
                    content = self._read_body(resp, resource, window)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                failures = self._backoff(failures, resource, window, f"连接失败 connection error: {type(exc).__name__}")
                continue

            status = resp.status_code
            if status == 429:
                failures = self._backoff(
                    failures, resource, window, "HTTP 429 限流 rate limited",
                    retry_after=_retry_after(resp.headers.get("Retry-After")),
                )
                continue
            if status in TRANSIENT_HTTP:
                failures = self._backoff(failures, resource, window, f"HTTP {status}")
                continue
            try:
                body = orjson.loads(content)
            except orjson.JSONDecodeError:
                body = _with_invalid_utf8(content)
                if body is not None:
                    # complete JSON with bytes that are not UTF-8 inside: the same bytes come back
                    # on every retry, so do not retry; the items holding them are quarantined
                    log.warning("%s/%s %s: the response holds bytes that are not UTF-8; the items "
                                "holding them go to quarantine", self.conn.system, resource, window or "")
                elif status == 200:
                    failures = self._backoff(failures, resource, window, "响应不是完整 JSON (truncated or invalid JSON body)")
                    continue
                else:
                    body = {}
            if not isinstance(body, dict):
                raise self._error(PermanentSourceError, resource, window, f"响应格式错误 HTTP {status}: body is not a JSON object")
            code = body.get("code")
            if status == 401:
                if authenticated and code in (40101, 40100) and refreshes < MAX_TOKEN_REFRESHES:
                    # 40101: token expired early; 40100 on a data call: the server forgot our token
                    refreshes += 1
                    self._token = None
                    continue
                env = env_var_for(self.conn.system)
                raise self._error(
                    PermanentSourceError, resource, window,
                    f"认证失败 authentication refused (HTTP 401, code {code} {body.get('message', '')!s}): "
                    f"check client id/secret in {env}",
                )
            if status != 200:
                raise self._error(PermanentSourceError, resource, window, f"HTTP {status} {str(body.get('message', ''))[:200]}")
            if path == "/oauth/token":
                return body  # the token response has no code envelope
            if code == 0:
                return body
            if code == 50001:
                failures = self._backoff(failures, resource, window, "code 50001 系统繁忙 system busy")
                continue
            raise self._error(
                PermanentSourceError, resource, window,
                f"接口返回错误 code {code}: {str(body.get('message', ''))[:200]} (params {params})",
            )

    def _backoff(
        self, failures: int, resource: str, window: Window | None, reason: str, retry_after: float | None = None
    ) -> int:
        failures += 1
        if failures >= self.max_attempts:
            raise self._error(
                TransientSourceError, resource, window,
                f"{reason}; still failing after {failures} attempts — nothing from this window was committed",
            )
        delay = self._rng.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (failures - 1)))
        if retry_after is not None:
            # never earlier than the server asked; a little jitter so parallel tasks do not stampede
            delay = retry_after + self._rng.uniform(0, max(0.05, retry_after * 0.1))
        log.warning("%s/%s %s: %s; retry %d in %.2fs", self.conn.system, resource, window or "", reason, failures, delay)
        self.stats["retries"] += 1
        self.stats["waited_seconds"] += delay
        self._sleep(delay)
        return failures

    def _read_body(self, resp: requests.Response, resource: str, window: Window | None) -> bytes:
        """The body, refused once it exceeds max_response_bytes (never held whole in memory)."""
        limit = self.max_response_bytes
        declared = resp.headers.get("Content-Length")
        size = 0
        chunks = []
        if not (declared and declared.isdigit() and int(declared) > limit):
            for chunk in resp.iter_content(chunk_size=1 << 16):
                size += len(chunk)
                if size > limit:
                    break
                chunks.append(chunk)
            else:
                return b"".join(chunks)
        raise self._error(
            PermanentSourceError, resource, window,
            f"响应过大, 超过 {limit} 字节上限 (response larger than {limit} bytes, "
            f"SYNC_MAX_RESPONSE_MB={limit / (1 << 20):g}); lower SYNC_PAGE_SIZE or raise the limit",
        )

    def _page_items(self, body: dict, resource: str, window: Window) -> tuple[list, int | None]:
        data = body.get("data")
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self._error(PermanentSourceError, resource, window, "响应缺少 data.items 列表 (no data.items list)")
        total = data.get("total")
        return items, total if isinstance(total, int) else None

    def _error(self, kind: type[SourceError], resource: str, window: Window | None, message: str) -> SourceError:
        where = f"{self.conn.system}/{resource}" + (f" window {window}" if window else "")
        return kind(f"[{where} @ {self.conn.base_url}] {message}")


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, min(float(value), 300.0)) if value else 1.0
    except ValueError:
        return 1.0


def _last_cursor(items: list) -> tuple[str, str] | None:
    """The (updated_at, id) of the last item that has a usable envelope."""
    for item in reversed(items):
        if isinstance(item, dict):
            ts, rid = item.get("updated_at"), item.get("id")
            if isinstance(ts, str) and isinstance(rid, str) and rid:
                return ts, rid
    return None


def _with_invalid_utf8(content: bytes) -> dict | None:
    """A complete JSON object that orjson refuses only for its text: bytes that are not UTF-8 (each
    kept as a lone surrogate U+DC80–U+DCFF, Python's surrogateescape) or an escaped lone surrogate
    (`\\ud800`). None when the body is not that (truncated, not JSON)."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.end >= len(content) and exc.reason == "unexpected end of data":
            return None  # a multi-byte character cut off at the end: a truncated response
        text = content.decode("utf-8", "surrogateescape")
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def has_invalid_utf8(text: str) -> bool:
    """Whether a string from _with_invalid_utf8 carries escaped bytes or lone surrogates."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _visible(text: str) -> str:
    """Text with every byte that was not UTF-8 shown as \\xNN and every other lone surrogate as
    \\uNNNN (storable, printable)."""
    if not has_invalid_utf8(text):
        return text
    out = []
    for ch in text:
        if "\udc80" <= ch <= "\udcff":
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif "\ud800" <= ch <= "\udfff":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _wire(value: str) -> str | bytes:
    """A cursor value as the server wrote it: its own bytes when they were not UTF-8."""
    if not has_invalid_utf8(value):
        return value
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # an escaped lone surrogate: send it back as it came
        return value.encode("utf-8", "surrogatepass")
