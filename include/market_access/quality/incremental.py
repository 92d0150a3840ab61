"""The incremental quality run: which rules must run every day, which (department, asset) data changed,
and the previous run whose results may be carried forward.

Great Expectations judges a department's suite on nothing but that department's rows of the run's
batch table (batches.py): every derived column, join and window is computed in SQL when the table is
written. So a rule whose inputs are a department's own rows, with no date in them, gives exactly the
same result as long as those rows (in the columns the rule reads) are the same — and the previous
run's result can be carried forward. Every rule has a class:

- `records`: a row-level rule over the department's own records with no date in its SQL and no
  tolerance (`mostly` 1): carried forward when the department's rows in the columns the asset's
  `records` rules read are unchanged since the previous run (an md5 fingerprint over those rows,
  computed in SQL on the batch table);
- `dated`: its SQL depends on the data date (as_of, yesterday, lag_workdays, lag_days,
  out_of_range, …): re-validated every run;
- `dataset`: what needs more than the department's own rows or its whole set at once — every rule on
  the department feeds asset (freshness, volume, file presence), dataset-level rules, `mostly`
  tolerances, window functions and sub-queries over the asset, rules reading a relation the asset
  joins (or on an asset whose department comes from a joined relation): re-validated every run.

When in doubt the run is full: no previous run of every department, the previous run not
`succeeded` (failed, incomplete, still running), a different rule catalogue, department
directory, engine code or Great Expectations version (one fingerprint), a data date earlier than
the previous run's or in another month, a run for some departments only, or an operator's
`QUALITY_FULL_RUN` / the DAG's `full_run` param.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

from market_access.quality.batches import DEPT_COLUMN, KEY_COLUMN, SCHEMA, AssetBatch, _ident
from market_access.quality.catalogue import FEEDS_ASSET, Catalogue, Rule

RECORDS, DATED, DATASET = "records", "dated", "dataset"
RULE_CLASSES = (RECORDS, DATED, DATASET)
CLASS_ZH = {RECORDS: "按记录 (数据未变时沿用)", DATED: "随日期 (每日检查)", DATASET: "全量 (每日检查)"}

# Jinja helpers and SQL that depend on the data date or the clock
_DATED = re.compile(
    r"\b(as_of|yesterday|lag_workdays|lag_days|out_of_range)\b"
    r"|\b(now|current_date|current_timestamp|localtimestamp|clock_timestamp|statement_timestamp)\b",
    re.IGNORECASE,
)
# SQL that reads other rows than the record itself
_OTHER_ROWS = re.compile(r"\bover\s*\(|\bselect\b|\bfrom\b|\bjoin\b|\bexists\b", re.IGNORECASE)

# what the results of a run depend on besides the data: the engine's own code
_CODE_FILES = (
    "batches.py",
    "catalogue.py",
    "failing_rows.py",
    "gxrun.py",
    "service.py",
    "sqltemplate.py",
    "suites.py",
    "incremental.py",
)


def _rule_sql(rule: Rule, catalogue: Catalogue, *, joins: bool = True) -> list[str]:
    """The SQL a rule's result depends on: its own columns, and its asset's key, department and
    (unless `joins` is false) joins clause."""
    asset = catalogue.assets.get(rule.asset)
    texts = [*rule.columns.values(), *rule.counted_separately.values()]
    texts += [
        str(v) for v in rule.kwargs.values() if isinstance(v, str) and rule.expectation.endswith("_sql")
    ]
    if asset is not None:
        texts += [asset.key, asset.department.code or "", asset.department.ref or ""]
        if joins:
            texts.append(asset.joins or "")
    return texts


def _join_aliases(joins: str | None) -> list[str]:
    """The aliases an asset's `joins` clause gives the relations it joins (`… as task on …`)."""
    return re.findall(r"\bas\s+(\w+)\s+on\b", joins or "", re.IGNORECASE)


def classify(rule: Rule, catalogue: Catalogue) -> tuple[str, str]:
    """(class, why) of a rule; see the module docstring."""
    asset = catalogue.assets.get(rule.asset)
    text = "\n".join(_rule_sql(rule, catalogue))
    if rule.asset == FEEDS_ASSET or asset is None:
        return DATASET, "部门汇总 (新鲜度、数据量、报送) department feeds"
    if _DATED.search(text):
        return DATED, "规则 SQL 依赖数据日期 (depends on the data date)"
    if rule.level != "row":
        return DATASET, "数据集级规则 (dataset-level)"
    if rule.mostly is not None and rule.mostly < 1:
        return DATASET, f"容忍度 mostly {rule.mostly:g} (tolerance over the whole set)"
    # what the rule itself reads (its columns, and the asset's key and department), without the
    # asset's joins clause: a join matters to the rules that read the joined relation, or when the
    # department itself comes from it, not to every rule of the asset
    own = "\n".join(_rule_sql(rule, catalogue, joins=False))
    aliases = _join_aliases(asset.joins)
    if any(re.search(rf"\b{re.escape(a)}\.", own) for a in aliases):
        return DATASET, "读取关联的其他关系 (reads a joined relation, or its department comes from one)"
    if _OTHER_ROWS.search(own):
        return DATASET, "规则 SQL 读取其他记录 (window or sub-query over other records)"
    if rule.kwargs.get("row_condition") is not None or rule.expectation.startswith(
        ("expect_multicolumn_sum", "expect_select_column_values_")
    ):
        return DATASET, "条件或跨列期望 (condition or cross-column expectation)"
    if rule.expectation == "expect_column_values_to_be_unique":
        # unique within the department's batch: its own rows decide it
        return RECORDS, "部门内唯一 (unique within the department's own records)"
    return RECORDS, "仅依赖部门自身记录 (the department's own records only)"


def classes(catalogue: Catalogue) -> dict[str, str]:
    """rule_id → class."""
    return {r.id: classify(r, catalogue)[0] for r in catalogue.rules}


def record_columns(batch: AssetBatch, catalogue: Catalogue) -> list[str]:
    """The batch-table columns the asset's `records` rules read (with the key and department),
    in a fixed order: the fingerprint is taken over these."""
    cols = [KEY_COLUMN, DEPT_COLUMN]
    for rule in batch.rules:
        if classify(rule, catalogue)[0] != RECORDS:
            continue
        for c in [*rule.columns, *rule.referenced_columns]:
            if c not in cols:
                cols.append(c)
        for i, _ in enumerate(rule.counted_separately):
            c = f"quality_sep__{_ident(rule.id)}__{i}"
            if c not in cols:
                cols.append(c)
    return cols


def fingerprints(
    conn: psycopg.Connection, batch: AssetBatch, catalogue: Catalogue
) -> dict[str, tuple[str, int]]:
    """dept_code → (md5 over its rows in the `records` columns, rows) of one asset's batch table.
    The rows are hashed one by one and the hashes sorted, so the physical order does not matter."""
    if (
        batch.missing
        or batch.asset is None
        or not any(classify(r, catalogue)[0] == RECORDS for r in batch.rules)
    ):
        return {}
    cols = record_columns(batch, catalogue)
    row = sql.SQL("md5(row({})::text)").format(sql.SQL(", ").join(sql.Identifier(c) for c in cols))
    query = sql.SQL(
        "select {d}, md5(string_agg(h, '' order by h)), count(*) "
        "from (select {d}, {row} as h from {t}) as q where {d} is not null group by 1"
    ).format(d=sql.Identifier(DEPT_COLUMN), row=row, t=sql.Identifier(SCHEMA, batch.table))
    return {dept: (fp, int(n)) for dept, fp, n in conn.execute(query)}


# the directory columns a result can depend on (who answers for what, under which names and limits);
# not where or when the directory was loaded from
_DIRECTORY_CONTENT = {
    "raw.directory__departments": (
        "dept_code",
        "dept_name",
        "aliases",
        "alert_emails",
        "role",
        "sources",
        "freshness_days",
    ),
    "raw.directory__department_names": ("name", "dept_code", "kind"),
}


def config_fingerprint(conn: psycopg.Connection, catalogue_file: Path) -> str:
    """One hash over what every result depends on besides the records: the rule catalogue, the
    department directory (names and aliases included), the engine's code, the GX version."""
    h = hashlib.sha256()
    h.update(Path(catalogue_file).read_bytes())
    here = Path(__file__).resolve().parent
    for name in _CODE_FILES:
        h.update(name.encode())
        h.update((here / name).read_bytes())
    h.update(importlib.metadata.version("great_expectations").encode())
    # the directory's content, not its load: every `make run` reloads it (new _batch_id, _loaded_at)
    for table, columns in _DIRECTORY_CONTENT.items():
        if conn.execute("select to_regclass(%s)", (table,)).fetchone()[0] is None:
            h.update(b"-")
            continue
        row = sql.SQL("row({})::text").format(sql.SQL(", ").join(sql.Identifier(c) for c in columns))
        query = sql.SQL(
            "select md5(coalesce(string_agg(r, E'\\n' order by r), '')) from (select {} as r from {}) as t"
        ).format(row, sql.SQL(table))
        (digest,) = conn.execute(query).fetchone()
        h.update(digest.encode())
    return h.hexdigest()


@dataclass
class Decision:
    """Whether this run may carry results, and from which run."""

    mode: str  # full | incremental
    reason_zh: str  # why (full) or the base run (incremental)
    base_run_id: str | None = None
    base_fingerprints: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)


def decide(
    conn: psycopg.Connection,
    run_id: str,
    as_of: date,
    config_fp: str,
    *,
    force_full: bool,
    departments: list[str] | None,
) -> Decision:
    if force_full:
        return Decision("full", "操作员要求全量检查 (full run forced: QUALITY_FULL_RUN / full_run)")
    if departments:
        return Decision("full", "仅检查部分部门, 全量 (a run for some departments is always full)")
    prev = conn.execute(
        """select run_id, status, data_date, config_fingerprint from ops.quality_runs
           where run_id <> %s and departments is null order by started_at desc limit 1""",
        (run_id,),
    ).fetchone()
    if prev is None:
        return Decision("full", "没有上一次运行 (no previous run)")
    base, status, base_date, base_fp = prev
    if status != "succeeded":
        return Decision("full", f"上一次运行 {base} 状态为 {status}, 全量 (previous run not succeeded)")
    if base_fp is None or base_fp != config_fp:
        return Decision(
            "full",
            "规则目录、部门目录或检查程序已变化 (catalogue, directory or engine changed since the previous run)",
        )
    if as_of < base_date or (as_of.year, as_of.month) != (base_date.year, base_date.month):
        return Decision(
            "full", f"数据日期 {as_of} 与上一次运行的 {base_date} 不在同一月份或更早 (date boundary)"
        )
    fps = {
        (asset, dept): (fp, int(n))
        for asset, dept, fp, n in conn.execute(
            "select asset, dept_code, fingerprint, rows from ops.quality_fingerprints where run_id = %s",
            (base,),
        )
    }
    return Decision("incremental", f"沿用运行 {base} 中数据未变部分的结果 (carrying from {base})", base, fps)


DDL = """
alter table ops.quality_runs add column if not exists mode text;
alter table ops.quality_runs add column if not exists departments text[];
alter table ops.quality_runs add column if not exists base_run_id text;
alter table ops.quality_runs add column if not exists config_fingerprint text;
alter table ops.quality_runs add column if not exists validation jsonb;
comment on column ops.quality_runs.mode is
    'full: 全部重新检查; incremental: 数据未变的 (部门, 资产) 按记录规则沿用 base_run_id 的结果';
comment on column ops.quality_runs.validation is
    '本次重新检查与沿用的结果数, 及全量原因 ({"revalidated": n, "carried": n, "reason_zh": …, …})';
alter table ops.quality_results add column if not exists carried_from text;
comment on column ops.quality_results.carried_from is
    '沿用自哪次运行 (该运行实际检查了此结果); 为空: 本次运行重新检查';
create table if not exists ops.quality_fingerprints (
    run_id              text not null references ops.quality_runs (run_id) on delete cascade,
    asset               text not null,
    dept_code           text not null,
    fingerprint         text not null,
    rows                bigint not null,
    primary key (run_id, asset, dept_code)
);
comment on table ops.quality_fingerprints is
    '每次运行每个 (资产, 部门) 按记录规则所读数据的指纹 (md5), 供下一次增量运行判断数据是否变化';
grant select on ops.quality_fingerprints to transformer;
revoke all on ops.quality_fingerprints from public;
"""
