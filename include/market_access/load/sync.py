"""Incremental sync of one resource into the raw layer: a window's rows and its watermark commit together."""

from __future__ import annotations

import json
import logging
import os
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
from market_access.sources.client import ContractClient, Window, _visible, has_invalid_utf8

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
    status: str = "succeeded"  # or 'held': the source's history collapsed, nothing was landed
    source_total: int | None = None  # records the source holds over its whole history
    rows_out_of_order: int = 0  # versions older than one already landed (history, not current)

    def as_dict(self) -> dict:
        return asdict(self)


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


@dataclass(frozen=True)
class SourceLimits:
    """What the sync accepts from a source beyond the contract's faults (each an env variable)."""

    # an item larger than this (its canonical JSON) is quarantined, not landed
    max_item_bytes: int = 1 << 20  # SYNC_MAX_ITEM_BYTES
    # an updated_at later than the sync's start plus this is quarantined (and never moves the watermark)
    future_tolerance: timedelta = timedelta(minutes=10)  # SYNC_FUTURE_TOLERANCE_MINUTES
    # the whole-history total falling below (1 - share) of the last accepted total holds the resource
    total_drop_share: float = 0.5  # SYNC_TOTAL_DROP_SHARE
    total_drop_min: int = 20  # SYNC_TOTAL_DROP_MIN: a last accepted total below this is not judged

    @classmethod
    def from_env(cls) -> SourceLimits:
        share = _env_number("SYNC_TOTAL_DROP_SHARE", cls.total_drop_share)
        if not 0 < share <= 1:
            raise ValueError(f"SYNC_TOTAL_DROP_SHARE must be in (0, 1], not {share}")
        return cls(
            max_item_bytes=int(_env_number("SYNC_MAX_ITEM_BYTES", cls.max_item_bytes)),
            future_tolerance=timedelta(minutes=_env_number("SYNC_FUTURE_TOLERANCE_MINUTES", 10)),
            total_drop_share=share,
            total_drop_min=int(_env_number("SYNC_TOTAL_DROP_MIN", cls.total_drop_min)),
        )

    def collapsed(self, before: int | None, now: int | None) -> bool:
        """Whether the source lost its data: the total fell sharply since the last accepted one."""
        if before is None or now is None or before < self.total_drop_min:
            return False
        return now < before * (1 - self.total_drop_share)


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
    limits: SourceLimits | None = None,
) -> SyncResult:
    """Pull [watermark − lookback, until) of one resource into raw.<system>__<resource>.

    Everything of the window — the new rows, their quarantine rows, the batch record and the new
    watermark — commits in one transaction, so a crash at any point followed by a rerun leaves no
    gap and no duplicate. A failure is recorded in its own transaction and re-raised.

    Beyond the contract's faults (README, "Sources that misbehave"): an item stamped in the future,
    larger than the limit or holding bytes that are not UTF-8 is quarantined; the watermark never
    moves past `until`; a version older than one already landed is landed as history and listed in
    ops.source_anomalies; and when the source's whole-history total has collapsed since the last
    run, nothing is landed at all (batch status 'held') until it recovers.
    """
    if not conn.autocommit:
        raise ValueError("sync_resource needs an autocommit connection: it manages its own transactions")
    limits = limits or SourceLimits.from_env()
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
            watermark, total_before = _lock_state(conn, resource)
            since = watermark - lookback if watermark is not None else None
            window = Window(to_beijing_text(since) if since else None, to_beijing_text(until))
            total = client.history_total(resource.name, window.until)
            if limits.collapsed(total_before, total):
                held = _hold(conn, batch_id, source, resource, since, until, started_at, total, total_before)
                log.warning("%s: %s", source, held)
                return SyncResult(
                    source=source, batch_id=batch_id, window_since=window.since, window_until=window.until,
                    pages=0, rows_received=0, rows_inserted=0, rows_quarantined=0,
                    watermark=to_beijing_text(watermark) if watermark else None,
                    seconds=round(time.monotonic() - started, 3), status="held", source_total=total,
                )
            future_after = to_beijing_text(started_at + limits.future_tolerance)
            landed = _land_window(conn, client, resource, window, page_size, batch_id, since, until,
                                  limits, future_after)
            if landed.quarantined:
                with conn.cursor() as cur:
                    cur.executemany(
                        "insert into ops.quarantine (batch_id, source, record_id, reason, raw_text) values (%s, %s, %s, %s, %s)",
                        [(batch_id, source, rid, reason, text) for rid, reason, text in landed.quarantined],
                    )
            out_of_order = _flag_out_of_order(conn, resource, batch_id) if landed.had_history and landed.inserted else 0
            max_ts = parse_source_timestamp(landed.max_updated_at)
            # a version stamped after the window's end (a server that ignores updated_until) lands,
            # but the watermark stops at the window's end: the next window re-reads it, no gap
            new_watermark = max(filter(None, (watermark, min(max_ts, until) if max_ts else None)), default=None)
            conn.execute(
                """
                update ops.sync_state set
                    watermark = %(wm)s, last_window_since = %(since)s, last_window_until = %(until)s,
                    rows_loaded = rows_loaded + %(inserted)s, batches = batches + 1,
                    last_batch_id = %(batch)s, last_status = 'succeeded', last_success_at = clock_timestamp(),
                    source_total = coalesce(%(total)s, source_total), held_since = null
                where system = %(system)s and resource = %(resource)s
                """,
                dict(wm=new_watermark, since=since, until=until, inserted=landed.inserted, batch=batch_id,
                     system=resource.system, resource=resource.name, total=total),
            )
            _record_batch(conn, batch_id, source, resource, since, until, started_at, "succeeded",
                          landed.pages, landed.received, landed.inserted, len(landed.quarantined), max_ts, None,
                          total, total_before)
    except BaseException as exc:
        _record_failure(conn, batch_id, source, resource, window, until, started_at, exc)
        raise
    result = SyncResult(
        source=source, batch_id=batch_id, window_since=window.since, window_until=window.until,
        pages=landed.pages, rows_received=landed.received, rows_inserted=landed.inserted,
        rows_quarantined=len(landed.quarantined),
        watermark=to_beijing_text(new_watermark) if new_watermark else None,
        seconds=round(time.monotonic() - started, 3), source_total=total, rows_out_of_order=out_of_order,
    )
    log.info(
        "%s: window %s → %d pages, %d received, %d new versions, %d quarantined, watermark %s (%.1fs)",
        source, window, landed.pages, landed.received, landed.inserted, len(landed.quarantined),
        result.watermark, result.seconds,
    )
    if out_of_order:
        log.warning("%s: %d version(s) older than one already landed (updated_at went backwards); landed as "
                    "history, the newer version stays current; listed in ops.source_anomalies (batch %s)",
                    source, out_of_order, batch_id)
    return result


def _lock_state(conn: psycopg.Connection, resource: Resource) -> tuple[datetime | None, int | None]:
    """Lock this resource's state row for the transaction (a second sync waits); read the watermark
    and the last accepted whole-history total at the source."""
    conn.execute(
        "insert into ops.sync_state (system, resource, raw_table) values (%s, %s, %s) on conflict do nothing",
        (resource.system, resource.name, resource.qualified_table),
    )
    row = conn.execute(
        "select watermark, source_total from ops.sync_state where system = %s and resource = %s for update",
        (resource.system, resource.name),
    ).fetchone()
    return row[0], row[1]


def _hold(conn, batch_id, source, resource, since, until, started_at, total, total_before) -> str:
    """The source's history collapsed: land nothing (no tombstone, no version), keep the watermark
    and the last good total, and say so in ops.load_batches, ops.sync_state and ops.source_anomalies
    (the quality run turns it into a blocking finding of the departments answering for the system)."""
    drop = round(100 * (total_before - total) / total_before)
    reason = (
        f"来源历史记录总数骤降: 现 {total} 条, 上次 {total_before} 条 (减少 {drop}%); 本次未入库任何记录, "
        f"已入库数据与水位线不变, 来源恢复后下次同步自动继续 (the source's total over its whole history fell "
        f"from {total_before} to {total}: nothing of this run was landed, the landed state and the watermark "
        f"are kept; the next sync after the source recovers continues). 如确认为来源正常清理: "
        f"update ops.sync_state set source_total = null where system = '{resource.system}' "
        f"and resource = '{resource.name}'"
    )
    _record_batch(conn, batch_id, source, resource, since, until, started_at, "held", 0, 0, 0, 0, None,
                  reason, total, total_before)
    conn.execute(
        """
        update ops.sync_state set last_status = 'held', last_error_at = clock_timestamp(), last_error = %s,
            held_since = coalesce(held_since, clock_timestamp()), batches = batches + 1, last_batch_id = %s
        where system = %s and resource = %s
        """,
        (reason, batch_id, resource.system, resource.name),
    )
    conn.execute(
        "insert into ops.source_anomalies (batch_id, system, resource, record_id, kind, detail) "
        "values (%s, %s, %s, null, 'history_total_drop', %s)",
        (batch_id, resource.system, resource.name, reason),
    )
    return reason


def _flag_out_of_order(conn, resource: Resource, batch_id: int) -> int:
    """List the versions of this batch older than a version of the same record landed before (the
    source's updated_at went backwards). They stay as history; the newest updated_at stays current
    (contract §1.2). Only this batch's rows are probed: all carry the transaction's now()."""
    return conn.execute(
        sql.SQL(
            """
            insert into ops.source_anomalies (batch_id, system, resource, record_id, kind, detail)
            select %(batch)s, %(system)s, %(resource)s, n.record_id, 'updated_at_backwards',
                   format('updated_at %%s 早于已入库版本的 %%s: 作为历史版本入库, 当前状态仍为较新的版本 '
                          '(older than a version already landed; kept as history, the newer one stays current)',
                          to_char(n.source_updated_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI:SS'),
                          to_char(o.newest at time zone 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI:SS'))
            from {t} as n
            cross join lateral (
                select max(p.source_updated_at) as newest from {t} as p
                where p.record_id = n.record_id and p._batch_id <> n._batch_id
            ) as o
            where n._loaded_at = now() and n._batch_id = %(batch)s and o.newest > n.source_updated_at
            """
        ).format(t=sql.Identifier("raw", resource.table)),
        dict(batch=batch_id, system=resource.system, resource=resource.name),
    ).rowcount


@dataclass
class _Feed:
    """The window's items as rows ready for COPY; counts pages, keeps unlandable items aside."""

    client: ContractClient
    resource: Resource
    window: Window
    page_size: int
    limits: SourceLimits = field(default_factory=SourceLimits)
    future_after: str = "9999-12-31 23:59:59"  # an updated_at after this (Beijing text) is in the future
    pages: int = 0
    received: int = 0
    inserted: int = 0
    max_updated_at: str = ""
    had_history: bool = True  # the raw table held rows before this batch (out-of-order check needed)
    quarantined: list = field(default_factory=list)  # (record_id, reason, raw text)

    def rows(self):
        """(record_id, updated_at, is_deleted, payload text, payload md5 hex) per landable item."""
        res = self.resource
        for page in self.client.iter_pages(res.name, self.window, page_size=self.page_size):
            self.pages += 1
            for item in page.items:
                # canonical text (sorted keys): the same content always hashes the same, whatever
                # order the source writes the fields in; jsonb does not keep key order anyway
                try:
                    raw = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
                except orjson.JSONEncodeError:  # lone surrogates: bytes that were not UTF-8
                    self._quarantine_invalid_utf8(item)
                    continue
                text = raw.decode()
                reason = check_envelope(item) or _payload_problem(text) or self._limit_problem(item, raw)
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

    def _limit_problem(self, item: dict, raw: bytes) -> str | None:
        if len(raw) > self.limits.max_item_bytes:
            return (f"记录过大: {len(raw)} 字节, 超过上限 {self.limits.max_item_bytes} 字节 (item of {len(raw)} bytes "
                    f"exceeds SYNC_MAX_ITEM_BYTES={self.limits.max_item_bytes}); 原文保留在 raw_text")
        if item["updated_at"] > self.future_after:
            return (f"updated_at {item['updated_at']} 在未来, 晚于本次同步开始时间加容差 {self.future_after} "
                    f"(updated_at in the future beyond SYNC_FUTURE_TOLERANCE_MINUTES; not landed, the watermark "
                    f"does not move; once the source corrects it, the record lands with the next sync)")
        return None

    def _quarantine_invalid_utf8(self, item: object) -> None:
        text = _visible(json.dumps(item, ensure_ascii=False, sort_keys=True))
        rid = item.get("id") if isinstance(item, dict) else None
        rid = _visible(rid) if isinstance(rid, str) and rid.strip() else None
        fields = sorted(k for k, v in item.items() if isinstance(v, str) and has_invalid_utf8(v)) if isinstance(
            item, dict) else []
        self.quarantined.append((
            rid,
            f"响应含无效 UTF-8 字节 (invalid UTF-8 bytes in the response{', fields ' + ', '.join(fields) if fields else ''}; "
            f"shown as \\xNN in raw_text)",
            text,
        ))


def _land_window(conn, client, resource, window, page_size, batch_id, since, until, limits=None,
                 future_after="9999-12-31 23:59:59") -> _Feed:
    """COPY the window straight into the raw table, or through a de-duplicating stage when needed.

    Straight COPY writes every row once and lets PostgreSQL check the unique index on its own core
    while this process parses the next page. It skips versions already stored in the re-read
    look-back range; should the source repeat a version inside the window itself, the unique index
    stops the COPY and the window is loaded again through the stage.
    """
    limits = limits or SourceLimits()
    feed = _Feed(client, resource, window, page_size, limits, future_after)
    if since is not None and since >= until:
        log.info("%s/%s: window %s is empty (watermark is past the window end)", resource.system, resource.name, window)
        return feed
    had_history = conn.execute(
        sql.SQL("select exists (select 1 from {t})").format(t=sql.Identifier("raw", resource.table))
    ).fetchone()[0]
    feed.had_history = had_history
    known = _known_versions(conn, resource, since)
    if known is not None:
        try:
            with conn.transaction():  # a savepoint: a repeated version undoes only this attempt
                _copy_direct(conn, feed, batch_id, known)
            return feed
        except psycopg.errors.UniqueViolation:
            log.warning("%s/%s: the source repeated a version inside window %s; loading the window again "
                        "through a de-duplicating stage", resource.system, resource.name, window)
    feed = _Feed(client, resource, window, page_size, limits, future_after, had_history=had_history)
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
                  inserted, quarantined, max_ts, error, source_total=None, source_total_before=None) -> None:
    conn.execute(
        """
        insert into ops.load_batches (batch_id, source, system, resource, window_since, window_until,
            started_at, finished_at, status, pages, rows_received, rows_inserted, rows_quarantined,
            max_updated_at, error, source_total, source_total_before)
        values (%s, %s, %s, %s, %s, %s, %s, clock_timestamp(), %s, %s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (batch_id, source, resource.system, resource.name, since, until, started_at, status, pages,
         received, inserted, quarantined, max_ts, error, source_total, source_total_before),
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
