"""Incremental sync of one resource into the raw layer: a window's rows and its watermark commit together."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from hashlib import md5

import orjson
import psycopg
from psycopg import sql

from market_access.load.schema import bootstrap, ensure_raw_table
from market_access.settings import BEIJING
from market_access.sources.catalog import Resource
from market_access.sources.client import ContractClient, Window

log = logging.getLogger(__name__)

TS_FORMAT = "%Y-%m-%d %H:%M:%S"
PROGRESS_EVERY_PAGES = 50


@dataclass
class SyncResult:
    source: str
    batch_id: int
    window_since: str | None
    window_until: str | None
    pages: int
    rows_received: int
    rows_inserted: int
    rows_quarantined: int
    watermark: str | None
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def to_beijing_text(moment: datetime) -> str:
    """Aware datetime → the contract's 'YYYY-MM-DD HH:MM:SS' in Beijing time."""
    if moment.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    return moment.astimezone(BEIJING).strftime(TS_FORMAT)


def parse_source_timestamp(value: object) -> datetime | None:
    """The contract's timestamp, as an aware datetime; None when it is not one."""
    naive = _naive_source_timestamp(value)
    return naive.replace(tzinfo=BEIJING) if naive is not None else None


def _naive_source_timestamp(value: object) -> datetime | None:
    # fromisoformat is C and ~10x faster than strptime; the shape check keeps it as strict
    if type(value) is not str or len(value) != 19 or value[10] != " " or value[4] != "-" or value[7] != "-":
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def check_envelope(item: object) -> str | None:
    """Why an item cannot be landed at all, or None when it can (content is checked later, in dbt)."""
    if type(item) is dict:
        rid, ts, deleted = item.get("id"), item.get("updated_at"), item.get("is_deleted")
        if type(rid) is str and rid.strip() and type(deleted) is bool and _naive_source_timestamp(ts) is not None:
            return None  # the common case, decided in a few hundred nanoseconds
    if not isinstance(item, dict):
        return f"记录不是 JSON 对象 (item is a {type(item).__name__}, not an object)"
    rid = item.get("id")
    if not isinstance(rid, str) or not rid.strip():
        return "缺少记录编号 id (missing or empty id)"
    if parse_source_timestamp(item.get("updated_at")) is None:
        return f"updated_at 不是 'YYYY-MM-DD HH:MM:SS' 格式 (got {item.get('updated_at')!r:.60})"
    return f"is_deleted 不是布尔值 (got {item.get('is_deleted')!r:.30})"


def sync_resource(
    conn: psycopg.Connection,
    client: ContractClient,
    resource: Resource,
    *,
    until: datetime,
    page_size: int = 500,
    lookback: timedelta = timedelta(minutes=10),
) -> SyncResult:
    """Pull [watermark − lookback, until) of one resource into raw.<system>__<resource>.

    Everything of the window — the new rows, their quarantine rows, the batch record and the new
    watermark — commits in one transaction, so a crash at any point followed by a rerun leaves no
    gap and no duplicate. A failure is recorded in its own transaction and re-raised.
    """
    if not conn.autocommit:
        raise ValueError("sync_resource needs an autocommit connection: it manages its own transactions")
    source = f"{resource.system}/{resource.name}"
    started = time.monotonic()
    bootstrap(conn)
    ensure_raw_table(conn, resource)
    batch_id = conn.execute("select nextval('ops.batch_id_seq')").fetchone()[0]
    started_at = conn.execute("select clock_timestamp()").fetchone()[0]
    window = Window(None, to_beijing_text(until))
    try:
        with conn.transaction():
            conn.execute("set local role loader")
            watermark = _lock_state(conn, resource)
            since = watermark - lookback if watermark is not None else None
            window = Window(to_beijing_text(since) if since else None, to_beijing_text(until))
            landed = _land_window(conn, client, resource, window, page_size, batch_id, since, until)
            if landed.quarantined:
                with conn.cursor() as cur:
                    cur.executemany(
                        "insert into ops.quarantine (batch_id, source, record_id, reason, raw_text) values (%s, %s, %s, %s, %s)",
                        [(batch_id, source, rid, reason, text) for rid, reason, text in landed.quarantined],
                    )
            max_ts = parse_source_timestamp(landed.max_updated_at)
            new_watermark = max(filter(None, (watermark, max_ts)), default=None)
            conn.execute(
                """
                update ops.sync_state set
                    watermark = %(wm)s, last_window_since = %(since)s, last_window_until = %(until)s,
                    rows_loaded = rows_loaded + %(inserted)s, batches = batches + 1,
                    last_batch_id = %(batch)s, last_status = 'succeeded', last_success_at = clock_timestamp()
                where system = %(system)s and resource = %(resource)s
                """,
                dict(wm=new_watermark, since=since, until=until, inserted=landed.inserted, batch=batch_id,
                     system=resource.system, resource=resource.name),
            )
            _record_batch(conn, batch_id, source, resource, since, until, started_at, "succeeded",
                          landed.pages, landed.received, landed.inserted, len(landed.quarantined), max_ts, None)
    except BaseException as exc:
        _record_failure(conn, batch_id, source, resource, window, until, started_at, exc)
        raise
    result = SyncResult(
        source=source, batch_id=batch_id, window_since=window.since, window_until=window.until,
        pages=landed.pages, rows_received=landed.received, rows_inserted=landed.inserted,
        rows_quarantined=len(landed.quarantined),
        watermark=to_beijing_text(new_watermark) if new_watermark else None,
        seconds=round(time.monotonic() - started, 3),
    )
    log.info(
        "%s: window %s → %d pages, %d received, %d new versions, %d quarantined, watermark %s (%.1fs)",
        source, window, landed.pages, landed.received, landed.inserted, len(landed.quarantined),
        result.watermark, result.seconds,
    )
    return result


def _lock_state(conn: psycopg.Connection, resource: Resource) -> datetime | None:
    """Lock this resource's state row for the transaction (a second sync waits) and read the watermark."""
    conn.execute(
        "insert into ops.sync_state (system, resource, raw_table) values (%s, %s, %s) on conflict do nothing",
        (resource.system, resource.name, resource.qualified_table),
    )
    row = conn.execute(
        "select watermark from ops.sync_state where system = %s and resource = %s for update",
        (resource.system, resource.name),
    ).fetchone()
    return row[0]


@dataclass
class _Feed:
    """The window's items as rows ready for COPY; counts pages, keeps unlandable items aside."""

    client: ContractClient
    resource: Resource
    window: Window
    page_size: int
    pages: int = 0
    received: int = 0
    inserted: int = 0
    max_updated_at: str = ""
    quarantined: list = field(default_factory=list)  # (record_id, reason, raw text)

    def rows(self):
        """(record_id, updated_at, is_deleted, payload text, payload md5 hex) per landable item."""
        res = self.resource
        for page in self.client.iter_pages(res.name, self.window, page_size=self.page_size):
            self.pages += 1
            for item in page.items:
                # canonical text (sorted keys): the same content always hashes the same, whatever
                # order the source writes the fields in; jsonb does not keep key order anyway
                raw = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
                text = raw.decode()
                reason = check_envelope(item) or _payload_problem(text)
                if reason:
                    rid = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
                    self.quarantined.append((rid, reason, text))
                    continue
                self.received += 1
                ts = item["updated_at"]
                if ts > self.max_updated_at:
                    self.max_updated_at = ts
                yield item["id"], ts, item["is_deleted"], text, md5(raw).hexdigest()
            if self.pages % PROGRESS_EVERY_PAGES == 0:
                log.info("%s/%s: %d pages, %d rows so far (window total %s)",
                         res.system, res.name, self.pages, self.received, page.total)


def _land_window(conn, client, resource, window, page_size, batch_id, since, until) -> _Feed:
    """COPY the window straight into the raw table, or through a de-duplicating stage when needed.

    Straight COPY writes every row once and lets PostgreSQL check the unique index on its own core
    while this process parses the next page. It skips versions already stored in the re-read
    look-back range; should the source repeat a version inside the window itself, the unique index
    stops the COPY and the window is loaded again through the stage.
    """
    feed = _Feed(client, resource, window, page_size)
    if since is not None and since >= until:
        log.info("%s/%s: window %s is empty (watermark is past the window end)", resource.system, resource.name, window)
        return feed
    known = _known_versions(conn, resource, since)
    if known is not None:
        try:
            with conn.transaction():  # a savepoint: a repeated version undoes only this attempt
                _copy_direct(conn, feed, batch_id, known)
            return feed
        except psycopg.errors.UniqueViolation:
            log.warning("%s/%s: the source repeated a version inside window %s; loading the window again "
                        "through a de-duplicating stage", resource.system, resource.name, window)
    feed = _Feed(client, resource, window, page_size)
    _copy_staged(conn, feed, batch_id)
    return feed


def _known_versions(conn, resource: Resource, since: datetime | None) -> set | None:
    """Versions already stored from `since` on (what a re-read may deliver again), or None when
    that set could be large (history present but no watermark) and the stage should be used."""
    table = sql.Identifier("raw", resource.table)
    if since is None:
        has_rows = conn.execute(sql.SQL("select exists (select 1 from {t})").format(t=table)).fetchone()[0]
        return None if has_rows else set()
    rows = conn.execute(
        sql.SQL(
            "select record_id, to_char(source_updated_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI:SS'), "
            "replace(payload_md5::text, '-', '') from {t} where source_updated_at >= %s"
        ).format(t=table),
        (since,),
    )
    return set(rows)


COLUMNS = sql.SQL("(record_id, source_updated_at, is_deleted, payload, payload_md5, _batch_id)")


def _copy_direct(conn, feed: _Feed, batch_id: int, known: set) -> None:
    stmt = sql.SQL("copy {t} {cols} from stdin").format(t=sql.Identifier("raw", feed.resource.table), cols=COLUMNS)
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        for rid, ts, deleted, text, digest in feed.rows():
            if known and (rid, ts, digest) in known:
                continue
            copy.write_row((rid, ts + "+08", deleted, text, digest, batch_id))
            feed.inserted += 1


def _copy_staged(conn, feed: _Feed, batch_id: int) -> None:
    conn.execute(
        "create temporary table if not exists _stage (record_id text, source_updated_at timestamptz, "
        "is_deleted boolean, payload jsonb, payload_md5 uuid, _batch_id bigint) on commit drop"
    )
    with conn.cursor() as cur, cur.copy(sql.SQL("copy _stage {cols} from stdin").format(cols=COLUMNS)) as copy:
        for rid, ts, deleted, text, digest in feed.rows():
            copy.write_row((rid, ts + "+08", deleted, text, digest, batch_id))
    feed.inserted = conn.execute(
        sql.SQL(
            "insert into {t} {cols} select * from _stage "
            "on conflict (record_id, source_updated_at, payload_md5) do nothing"
        ).format(t=sql.Identifier("raw", feed.resource.table), cols=COLUMNS)
    ).rowcount


def _payload_problem(text: str) -> str | None:
    if "\\u0000" in text:
        return "记录含 NUL 字符, PostgreSQL jsonb 无法存储 (payload contains \\u0000)"
    return None


def _record_batch(conn, batch_id, source, resource, since, until, started_at, status, pages, received,
                  inserted, quarantined, max_ts, error) -> None:
    conn.execute(
        """
        insert into ops.load_batches (batch_id, source, system, resource, window_since, window_until,
            started_at, finished_at, status, pages, rows_received, rows_inserted, rows_quarantined,
            max_updated_at, error)
        values (%s, %s, %s, %s, %s, %s, %s, clock_timestamp(), %s, %s, %s, %s, %s, %s, %s)
        """,
        (batch_id, source, resource.system, resource.name, since, until, started_at, status, pages,
         received, inserted, quarantined, max_ts, error),
    )


def _record_failure(conn, batch_id, source, resource, window, until, started_at, exc) -> None:
    """Write the failure in its own transaction; never mask the original error."""
    error = f"{type(exc).__name__}: {exc}"[:4000]
    try:
        if conn.closed or conn.broken:
            return
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        since = datetime.strptime(window.since, TS_FORMAT).replace(tzinfo=BEIJING) if window.since else None
        with conn.transaction():
            conn.execute("set local role loader")
            _record_batch(conn, batch_id, source, resource, since, until, started_at, "failed",
                          0, 0, 0, 0, None, error)
            conn.execute(
                """
                insert into ops.sync_state (system, resource, raw_table, last_status, last_error_at, last_error)
                values (%s, %s, %s, 'failed', clock_timestamp(), %s)
                on conflict (system, resource) do update set
                    last_status = 'failed', last_error_at = clock_timestamp(), last_error = excluded.last_error
                """,
                (resource.system, resource.name, resource.qualified_table, error),
            )
    except Exception:  # the original error matters more than its bookkeeping
        log.exception("%s: could not record the failure of batch %s", source, batch_id)
