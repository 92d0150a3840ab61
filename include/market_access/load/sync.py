"""Incremental sync of one resource into the raw layer: a window's rows and its watermark commit together."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

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
    if not isinstance(value, str) or len(value) != 19:
        return None
    try:
        return datetime.strptime(value, TS_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        return None


def check_envelope(item: object) -> str | None:
    """Why an item cannot be landed at all, or None when it can (content is checked later, in dbt)."""
    if not isinstance(item, dict):
        return f"记录不是 JSON 对象 (item is a {type(item).__name__}, not an object)"
    rid = item.get("id")
    if not isinstance(rid, str) or not rid.strip():
        return "缺少记录编号 id (missing or empty id)"
    if parse_source_timestamp(item.get("updated_at")) is None:
        return f"updated_at 不是 'YYYY-MM-DD HH:MM:SS' 格式 (got {item.get('updated_at')!r:.60})"
    if not isinstance(item.get("is_deleted"), bool):
        return f"is_deleted 不是布尔值 (got {item.get('is_deleted')!r:.30})"
    return None


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
            if since is not None and since >= until:
                log.info("%s: window %s is empty (watermark is past the window end)", source, window)
            pages, received, quarantined = _stream_into_stage(conn, client, resource, window, page_size, since, until)
            inserted = conn.execute(
                sql.SQL(
                    """
                    insert into {table} (record_id, source_updated_at, is_deleted, payload, _batch_id, _loaded_at)
                    select record_id, source_updated_at, is_deleted, payload, %s, now()
                    from _stage
                    on conflict (record_id, source_updated_at, md5(payload::text)) do nothing
                    """
                ).format(table=sql.Identifier("raw", resource.table)),
                (batch_id,),
            ).rowcount
            if quarantined:
                with conn.cursor() as cur:
                    cur.executemany(
                        "insert into ops.quarantine (batch_id, source, record_id, reason, raw_text) values (%s, %s, %s, %s, %s)",
                        [(batch_id, source, rid, reason, text) for rid, reason, text in quarantined],
                    )
            max_ts = conn.execute("select max(source_updated_at) from _stage").fetchone()[0]
            new_watermark = max(filter(None, (watermark, max_ts)), default=None)
            conn.execute(
                """
                update ops.sync_state set
                    watermark = %(wm)s, last_window_since = %(since)s, last_window_until = %(until)s,
                    rows_loaded = rows_loaded + %(inserted)s, batches = batches + 1,
                    last_batch_id = %(batch)s, last_status = 'succeeded', last_success_at = clock_timestamp()
                where system = %(system)s and resource = %(resource)s
                """,
                dict(wm=new_watermark, since=since, until=until, inserted=inserted, batch=batch_id,
                     system=resource.system, resource=resource.name),
            )
            _record_batch(conn, batch_id, source, resource, since, until, started_at, "succeeded",
                          pages, received, inserted, len(quarantined), max_ts, None)
    except BaseException as exc:
        _record_failure(conn, batch_id, source, resource, window, until, started_at, exc)
        raise
    result = SyncResult(
        source=source, batch_id=batch_id, window_since=window.since, window_until=window.until,
        pages=pages, rows_received=received, rows_inserted=inserted, rows_quarantined=len(quarantined),
        watermark=to_beijing_text(new_watermark) if new_watermark else None,
        seconds=round(time.monotonic() - started, 3),
    )
    log.info(
        "%s: window %s → %d pages, %d received, %d new versions, %d quarantined, watermark %s (%.1fs)",
        source, window, pages, received, inserted, len(quarantined), result.watermark, result.seconds,
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


def _stream_into_stage(
    conn: psycopg.Connection,
    client: ContractClient,
    resource: Resource,
    window: Window,
    page_size: int,
    since: datetime | None,
    until: datetime,
) -> tuple[int, int, list[tuple[str | None, str, str]]]:
    """COPY every page into a temporary table as it arrives: memory stays flat whatever the volume."""
    conn.execute(
        "create temporary table _stage (record_id text, source_updated_at timestamptz, "
        "is_deleted boolean, payload jsonb) on commit drop"
    )
    pages = received = 0
    quarantined: list[tuple[str | None, str, str]] = []
    if since is not None and since >= until:
        return pages, received, quarantined
    with conn.cursor() as cur, cur.copy("copy _stage from stdin") as copy:
        for page in client.iter_pages(resource.name, window, page_size=page_size):
            pages += 1
            for item in page.items:
                text = orjson.dumps(item).decode()
                reason = check_envelope(item) or _payload_problem(text)
                if reason:
                    rid = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
                    quarantined.append((rid, reason, text))
                    continue
                copy.write_row((item["id"], item["updated_at"] + "+08", item["is_deleted"], text))
                received += 1
            if pages % PROGRESS_EVERY_PAGES == 0:
                log.info("%s/%s: %d pages, %d rows so far (window total %s)",
                         resource.system, resource.name, pages, received, page.total)
    return pages, received, quarantined


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
