"""Per-run batch tables: each asset's records once, with their department and the rules' derived columns.

Great Expectations validates one department at a time; reading a staging view (with its
de-identification functions and DISTINCT ON) once per department and metric would scan it
hundreds of times. So a run first writes each asset once into an unlogged table
`ops.quality_batch__<asset>` (only the columns the rules use, indexed by department) and GX reads
per-department batches of that; the tables are dropped when the run ends. The engine also builds
`ops.quality_batch__department_feeds`: one row per department with row counts, feed freshness per
source and the daily volume of each asset, for the dataset-level rules.

Personal information never reaches these tables: the assets are the de-identified staging models,
and only the columns the rules name are carried.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import psycopg
from psycopg import sql

from market_access.quality.catalogue import FEEDS_ASSET, Asset, Catalogue, Rule
from market_access.quality.sqltemplate import CALENDAR, render

log = logging.getLogger(__name__)

SCHEMA = "ops"
PREFIX = "quality_batch__"
FEEDS_TABLE = f"{PREFIX}department_feeds"
DEPT_COLUMN = "quality_dept_code"
KEY_COLUMN = "quality_record_id"
NAMES = "staging.stg_directory__department_names"


class QualityConfigError(ValueError):
    """The catalogue does not fit the warehouse (unknown columns, codes, relations); lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        listed = "\n  ".join(self.problems)
        super().__init__(
            f"质量规则与仓库不符, 共 {len(self.problems)} 处 (rules do not fit the warehouse):\n  {listed}"
        )


@dataclass(frozen=True)
class DirectoryDept:
    code: str
    name: str
    role: str
    sources: tuple[str, ...]
    freshness_days: int


@dataclass
class AssetBatch:
    """One asset's batch table and what the run learnt while writing it."""

    asset: Asset | None  # None for the department feeds asset
    relation: str
    table: str  # unqualified, in SCHEMA
    rules: list[Rule]
    rows: dict[str, int] = field(default_factory=dict)  # dept_code → records
    unresolved: int = 0  # records whose department is not in the directory
    # (rule, dept) → label → records counted separately
    separately: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    newest: dict[str, date] = field(default_factory=dict)  # dept_code → newest data day
    volume_days: dict[str, dict[date, int]] = field(default_factory=dict)  # dept_code → day → records
    metrics: dict[str, dict[str, int]] = field(default_factory=dict)  # dept_code → metric → records
    feed_rows: dict[str, dict[str, object]] = field(default_factory=dict)  # feeds asset: dept_code → its row
    missing: bool = False  # the relation does not exist: nothing of it is checked, no table is written

    @property
    def name(self) -> str:
        return self.relation.split(".", 1)[1]


def load_directory(conn: psycopg.Connection) -> list[DirectoryDept]:
    exists = conn.execute("select to_regclass('raw.directory__departments')").fetchone()[0]
    if exists is None:
        raise QualityConfigError(
            ["raw.directory__departments 不存在: 请先载入部门目录 (load the department directory first)"]
        )
    rows = conn.execute(
        "select dept_code, dept_name, role, sources, freshness_days from raw.directory__departments order by dept_code"
    ).fetchall()
    if not rows:
        raise QualityConfigError(["部门目录为空 (the department directory is empty)"])
    return [DirectoryDept(c, n, r, tuple(s or ()), int(f)) for c, n, r, s, f in rows]


def relation_columns(conn: psycopg.Connection, asset: Asset) -> set[str] | None:
    """The columns a rule may name on this asset (None when the relation does not exist)."""
    if conn.execute("select to_regclass(%s)", (asset.relation,)).fetchone()[0] is None:
        return None
    with conn.cursor() as cur:
        cur.execute(sql.SQL("select * from {} limit 0").format(sql.SQL(asset.relation)))
        return {d.name for d in cur.description}


def _dept_sql(asset: Asset, directory: list[DirectoryDept], as_of: date) -> tuple[str, str]:
    """(expression of the record's dept_code, extra join); the join resolves codes, names and aliases."""
    d = asset.department
    if d.role:
        codes = [x.code for x in directory if x.role == d.role]
        return (f"'{codes[0]}'::text" if codes else "null::text"), ""
    # a code is stored normalised already; only a written name needs normalising (and coalesce
    # evaluates that only for the records without a code), as int_department_refs_resolved does
    if d.code and d.ref:
        key = f"coalesce(({render(d.code, as_of)})::text, util.clean_name(({render(d.ref, as_of)})::text))"
    else:
        key = f"util.clean_name(({render(d.code or d.ref, as_of)})::text)"
    join = f"left join {NAMES} as quality_dept on quality_dept.name_key = {key}"
    return "quality_dept.dept_code", join


def batch_select(
    asset: Asset,
    rules: list[Rule],
    directory: list[DirectoryDept],
    as_of: date,
    departments: list[str] | None,
) -> str:
    """The SELECT that fills an asset's batch table."""
    dept, dept_join = _dept_sql(asset, directory, as_of)
    items = [f"({render(asset.key, as_of)})::text as {KEY_COLUMN}", f"{dept} as {DEPT_COLUMN}"]
    items.append(
        f"({render(asset.newest, as_of)})::date as quality_newest_on"
        if asset.newest
        else "null::date as quality_newest_on"
    )
    items.append(
        f"({render(asset.volume.date, as_of)})::date as quality_volume_on"
        if asset.volume
        else "null::date as quality_volume_on"
    )
    for name, cond in asset.metrics.items():
        items.append(f"coalesce(({render(cond, as_of)}), false) as quality_metric__{name}")
    seen: dict[str, str] = {}
    carried: list[str] = []
    for rule in rules:
        for name, expr in rule.columns.items():
            rendered = render(expr, as_of)
            if name in seen:
                continue
            seen[name] = rendered
            items.append(f"({rendered}) as {name}")
    for rule in rules:
        for col in rule.referenced_columns:
            if col not in seen and col not in carried:
                carried.append(col)
    items.extend(f"t.{c}" for c in carried)
    for rule in rules:
        for i, cond in enumerate(rule.counted_separately.values()):
            items.append(f"coalesce(({render(cond, as_of)}), false) as quality_sep__{_ident(rule.id)}__{i}")
    joins = render(asset.joins, as_of) if asset.joins else ""
    # records whose department is not in the directory stay in (dept null): they are counted and
    # reported, and no department's batch contains them
    where = "true"
    if departments:
        codes = ", ".join(f"'{c}'" for c in departments)
        where = f"{dept} in ({codes})"
    return f"select {', '.join(items)}\nfrom {asset.relation} as t\n{joins}\n{dept_join}\nwhere {where}"


def _ident(rule_id: str) -> str:
    return rule_id.lower().replace("-", "_")


def check(
    conn: psycopg.Connection, catalogue: Catalogue, directory: list[DirectoryDept], as_of: date
) -> list[str]:
    """Everything about the catalogue that needs the warehouse, checked before any work; raises
    QualityConfigError listing every problem (unknown columns, SQL that does not run, derived
    columns shadowing asset columns, department codes not in the directory). Returns the assets
    whose relation does not exist (yet): a first-day warehouse may lack one; the run does not
    check them and says so (status incomplete) instead of failing."""
    problems: list[str] = []
    missing: list[str] = []
    codes = {d.code for d in directory}
    for rule in catalogue.rules:
        deps = rule.departments
        if isinstance(deps, list):
            for c in deps:
                if c not in codes:
                    problems.append(f"rule {rule.id}: 部门代码 {c} 不在部门目录中 (not in the directory)")
    for relation, asset in catalogue.assets.items():
        rules = catalogue.rules_on(relation)
        cols = relation_columns(conn, asset)
        if cols is None:
            missing.append(relation)
            continue
        for rule in rules:
            derived = set(rule.columns)
            for name in derived & cols:
                problems.append(
                    f"rule {rule.id}: 派生列 {name} 与资产 {relation} 的列同名 (shadows an asset column)"
                )
            for col in rule.referenced_columns:
                if col not in cols and col not in derived:
                    problems.append(f"rule {rule.id}: 资产 {relation} 没有列 {col} (unknown column)")
        if problems:
            continue
        try:
            with conn.transaction():
                conn.execute(
                    f"select * from ({batch_select(asset, rules, directory, as_of, None)}) as q limit 0"
                )
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0]
            problems.append(f"asset {relation}: 规则的 SQL 无法执行 (the rules' SQL fails): {first}")
    if problems:
        raise QualityConfigError(problems)
    return missing


def build(
    conn: psycopg.Connection,
    catalogue: Catalogue,
    directory: list[DirectoryDept],
    as_of: date,
    departments: list[str] | None = None,
    *,
    connect: Callable[[], psycopg.Connection] | None = None,
    parallel: int = 1,
    missing: tuple[str, ...] | list[str] = (),
) -> dict[str, AssetBatch]:
    """Write every asset's batch table and the department feeds table; relation → AssetBatch.
    Assets in `missing` (their relation does not exist) get an AssetBatch with no records and no
    table: their departments' feeds still count them (no data = not fresh).

    With `connect` and parallel > 1, assets are written over that many connections side by side
    (the server does the work; the big staging models are worth a core each)."""
    drop_all(conn)
    todo = [
        AssetBatch(
            asset=asset,
            relation=relation,
            table=f"{PREFIX}{asset.name}",
            rules=catalogue.rules_on(relation),
            missing=relation in missing,
        )
        for relation, asset in catalogue.assets.items()
    ]
    everything = todo
    todo = [b for b in todo if not b.missing]
    if connect is None or parallel <= 1:
        for b in todo:
            _write(conn, b, directory, as_of, departments)
    else:
        queue = list(reversed(todo))
        lock = threading.Lock()

        def worker() -> None:
            with connect() as own:
                while True:
                    with lock:
                        if not queue:
                            return
                        b = queue.pop()
                    _write(own, b, directory, as_of, departments)

        with ThreadPoolExecutor(max_workers=parallel) as pool:
            for f in [pool.submit(worker) for _ in range(parallel)]:
                f.result()
    batches = {b.relation: b for b in everything}
    feeds = AssetBatch(
        asset=None, relation=FEEDS_ASSET, table=FEEDS_TABLE, rules=catalogue.rules_on(FEEDS_ASSET)
    )
    _build_feeds(conn, feeds, batches, directory, as_of, departments)
    batches[FEEDS_ASSET] = feeds
    return batches


def _write(
    conn: psycopg.Connection,
    b: AssetBatch,
    directory: list[DirectoryDept],
    as_of: date,
    departments: list[str] | None,
) -> None:
    assert b.asset is not None
    table = sql.Identifier(SCHEMA, b.table)
    select = batch_select(b.asset, b.rules, directory, as_of, departments)
    started = time.monotonic()
    with conn.transaction():
        # in department and key order: the rows GX lists as examples come in that order, so a run
        # gives the same examples whatever the staging table's physical order (incremental.py)
        conn.execute(
            sql.SQL("create unlogged table {} as ").format(table)
            + sql.SQL(select)
            + sql.SQL("\norder by {}, {}").format(sql.Identifier(DEPT_COLUMN), sql.Identifier(KEY_COLUMN))
        )
        conn.execute(sql.SQL("create index on {} ({})").format(table, sql.Identifier(DEPT_COLUMN)))
        conn.execute(sql.SQL("analyze {}").format(table))
    _measure(conn, b, as_of)
    log.info("batch table %s: %d rows in %.1f s", b.table, sum(b.rows.values()), time.monotonic() - started)
    if b.unresolved:
        log.warning(
            "%s: %d record(s) name a department that is not in the directory; they are not checked",
            b.relation,
            b.unresolved,
        )


def _measure(conn: psycopg.Connection, b: AssetBatch, as_of: date) -> None:
    """Per department: records, newest data day (up to the data date), metric counts, notes of the
    rules counted separately."""
    assert b.asset is not None
    seps = [
        (rule.id, label, f"quality_sep__{_ident(rule.id)}__{i}")
        for rule in b.rules
        for i, label in enumerate(rule.counted_separately)
    ]
    metrics = list(b.asset.metrics)
    items = ["count(*)", f"max(quality_newest_on) filter (where quality_newest_on <= date '{as_of}')"]
    items += [f"count(*) filter (where quality_metric__{m})" for m in metrics]
    items += [f"count(*) filter (where {col})" for _, _, col in seps]
    query = f"select {DEPT_COLUMN}, {', '.join(items)} from {SCHEMA}.{b.table} group by 1"
    for dept, n, newest, *rest in conn.execute(query):
        if dept is None:
            b.unresolved = n
            continue
        b.rows[dept] = n
        if newest is not None:
            b.newest[dept] = newest
        b.metrics[dept] = dict(zip(metrics, rest[: len(metrics)], strict=True))
        for (rule_id, label, _), c in zip(seps, rest[len(metrics) :], strict=True):
            b.separately.setdefault((rule_id, dept), {})[label] = c


def _build_feeds(
    conn: psycopg.Connection,
    feeds: AssetBatch,
    batches: dict[str, AssetBatch],
    directory: list[DirectoryDept],
    as_of: date,
    departments: list[str] | None,
) -> None:
    depts = [d for d in directory if not departments or d.code in departments]
    # the last complete working day before the data date, and the history window before it
    windows = max([b.asset.volume.window for b in batches.values() if b.asset and b.asset.volume] or [20])
    cal = conn.execute(
        f"""select calendar_date, workday_seq, is_workday from {CALENDAR}
            where calendar_date between %s::date - 400 and %s::date order by calendar_date""",
        (as_of, as_of),
    ).fetchall()
    seq = {d: s for d, s, _ in cal}
    workdays = [d for d, _, w in cal if w and d < as_of]
    volume_day = workdays[-1] if workdays else None
    history = workdays[-windows - 1 : -1] if workdays else []
    yesterday_seq = seq.get(date.fromordinal(as_of.toordinal() - 1))

    columns: list[tuple[str, str]] = [
        (DEPT_COLUMN, "text"),
        (KEY_COLUMN, "text"),
        ("freshness_days", "integer"),
    ]
    sources = sorted({b.asset.answered_by for b in batches.values() if b.asset and b.asset.newest})
    for s in sources:
        columns += [
            (f"{s}__newest_on", "date"),
            (f"{s}__stale_workdays", "integer"),
            (f"{s}__is_fresh", "boolean"),
        ]
    templates = sorted({b.asset.template for b in batches.values() if b.asset and b.asset.template})
    for t in templates:
        columns += [(f"{t}__files", "integer"), (f"{t}__has_file", "boolean")]
    files = _submission_files(conn, as_of) if templates else {}
    # per source system: resources whose sync is held because the source lost its history
    held = _held_sources(conn, as_of)
    for system in _SYSTEMS:
        columns += [(f"{system}__history_intact", "boolean"), (f"{system}__history_drops", "text")]
    for b in batches.values():
        if b.asset is None:
            continue
        columns.append((f"{b.name}__rows", "integer"))
        for name in b.asset.metrics:
            columns.append((f"{b.name}__{name}", "integer"))
        if b.asset.volume:
            columns += [
                (f"{b.name}__volume_on", "date"),
                (f"{b.name}__volume_count", "integer"),
                (f"{b.name}__volume_mean", "numeric"),
                (f"{b.name}__volume_low", "integer"),
                (f"{b.name}__volume_high", "integer"),
                (f"{b.name}__volume_ok", "boolean"),
            ]
    for b in batches.values():
        if b.asset is None or not b.asset.volume or volume_day is None or b.missing:
            continue
        first = history[-b.asset.volume.window :][0] if history else volume_day
        for dept, day, n in conn.execute(
            f"""select {DEPT_COLUMN}, quality_volume_on, count(*) from {SCHEMA}.{b.table}
                where quality_volume_on between %s and %s group by 1, 2""",
            (first, volume_day),
        ):
            b.volume_days.setdefault(dept, {})[day] = n

    rows = []
    for d in depts:
        row: dict[str, object] = {DEPT_COLUMN: d.code, KEY_COLUMN: d.code, "freshness_days": d.freshness_days}
        for s in sources:
            newest = max(
                (
                    b.newest[d.code]
                    for b in batches.values()
                    if b.asset and b.asset.answered_by == s and d.code in b.newest
                ),
                default=None,
            )
            stale = None
            if newest is not None and yesterday_seq is not None and newest in seq:
                stale = max(yesterday_seq - seq[newest], 0)
            row[f"{s}__newest_on"] = newest
            row[f"{s}__stale_workdays"] = stale
            row[f"{s}__is_fresh"] = stale is not None and stale <= d.freshness_days
        for t in templates:
            n = files.get((d.code, t), 0)
            row[f"{t}__files"] = n
            row[f"{t}__has_file"] = n > 0
        for system in _SYSTEMS:
            row[f"{system}__history_intact"] = system not in held
            row[f"{system}__history_drops"] = "; ".join(held.get(system, [])) or None
        for b in batches.values():
            if b.asset is None:
                continue
            row[f"{b.name}__rows"] = b.rows.get(d.code, 0)
            for name in b.asset.metrics:
                row[f"{b.name}__{name}"] = (b.metrics.get(d.code) or {}).get(name, 0)
            if b.asset.volume:
                v = b.asset.volume
                days = history[-v.window :]
                per_day = b.volume_days.get(d.code, {})
                counts = [per_day.get(x, 0) for x in days]
                today = per_day.get(volume_day, 0) if volume_day else None
                mean = statistics.fmean(counts) if counts else None
                ok = low = high = None
                if mean is not None and len(counts) >= max(5, v.window // 2) and mean >= v.min_mean:
                    sd = max(statistics.pstdev(counts), math.sqrt(mean), 1.0)
                    low = max(0, math.floor(mean - v.k * sd))
                    high = math.ceil(mean + v.k * sd)
                    ok = low <= today <= high
                row[f"{b.name}__volume_on"] = volume_day
                row[f"{b.name}__volume_count"] = today
                row[f"{b.name}__volume_mean"] = round(mean, 2) if mean is not None else None
                row[f"{b.name}__volume_low"] = low
                row[f"{b.name}__volume_high"] = high
                row[f"{b.name}__volume_ok"] = ok
        rows.append(row)

    table = sql.Identifier(SCHEMA, FEEDS_TABLE)
    with conn.transaction():
        conn.execute(
            sql.SQL("create unlogged table {} ({})").format(
                table,
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns
                ),
            )
        )
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("insert into {} ({}) values ({})").format(
                    table,
                    sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns),
                    sql.SQL(", ").join(sql.Placeholder() for _ in columns),
                ),
                [[r.get(c) for c, _ in columns] for r in rows],
            )
        conn.execute(sql.SQL("analyze {}").format(table))
    feeds.rows = {d.code: 1 for d in depts}
    feeds.feed_rows = {r[DEPT_COLUMN]: r for r in rows}


def _submission_files(conn: psycopg.Connection, as_of: date) -> dict[tuple[str, str], int]:
    """(dept_code, template) → files accepted (or accepted and later superseded) for a period of the
    data date's year, received by the data date. An accepted empty template counts ("nothing to
    report"); a rejected file does not: the feed is still missing."""
    if conn.execute("select to_regclass('ops.submission_files')").fetchone()[0] is None:
        return {}
    rows = conn.execute(
        """select dept_code, template, count(*) from ops.submission_files
           where status in ('accepted', 'superseded') and left(period, 4) = %s
             and (received_at at time zone 'Asia/Shanghai')::date <= %s
           group by 1, 2""",
        (f"{as_of.year:04d}", as_of),
    ).fetchall()
    return {(c, t): int(n) for c, t, n in rows}


_SYSTEMS = ("gov_service", "market_supervision", "credit", "random_inspection")


def _held_sources(conn: psycopg.Connection, as_of: date) -> dict[str, list[str]]:
    """system → '<resource title> (<resource>): 现 n 条, 此前 m 条' for each resource whose latest
    sync by the data date was held because the source's whole-history total collapsed (written by
    market_access.load.sync in ops.load_batches; a failed batch says nothing about the total)."""
    has_totals = conn.execute(
        "select exists (select from information_schema.columns where table_schema = 'ops' "
        "and table_name = 'load_batches' and column_name = 'source_total_before')"
    ).fetchone()[0]
    if not has_totals:
        return {}
    from market_access.sources import catalog

    titles = {(r.system, r.name): r.title for r in catalog.all_resources()}
    rows = conn.execute(
        """select system, resource, source_total, source_total_before from (
               select distinct on (system, resource) system, resource, status, source_total, source_total_before
               from ops.load_batches
               where status in ('succeeded', 'held') and (finished_at at time zone 'Asia/Shanghai')::date <= %s
               order by system, resource, batch_id desc) as latest
           where status = 'held' order by 1, 2""",
        (as_of,),
    ).fetchall()
    out: dict[str, list[str]] = {}
    for system, resource, total, before in rows:
        title = titles.get((system, resource), resource)
        out.setdefault(system, []).append(f"{title} ({resource}): 现 {total} 条, 此前 {before} 条")
    return out


def drop_all(conn: psycopg.Connection) -> None:
    """Drop every batch table (of this run, or left behind by a killed one)."""
    names = conn.execute(
        "select tablename from pg_tables where schemaname = %s and tablename like %s",
        (SCHEMA, PREFIX.replace("_", r"\_") + "%"),
    ).fetchall()
    for (name,) in names:
        with conn.transaction():
            conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(SCHEMA, name)))
