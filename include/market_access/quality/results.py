"""ops.quality_runs / quality_results / quality_row_failures: the tables, and writing a run into them.

Owned by the loader role like the other ops tables; the transformer reads them (dbt builds on
them), analysts do not (they have no access to ops at all). A run's results, its failing record
ids and its final status commit in one transaction; a failed run keeps its run row, status
'failed', and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import psycopg
from psycopg.types.json import Jsonb

DDL = """
create table if not exists ops.quality_runs (
    run_id              text primary key,
    started_at          timestamptz not null,
    finished_at         timestamptz,
    data_date           date not null,
    status              text not null,
    data_docs_dir       text
);
-- migration-safe: warehouses created before the incomplete status and the not_checked list
alter table ops.quality_runs add column if not exists not_checked jsonb not null default '[]';
alter table ops.quality_runs drop constraint if exists quality_runs_status_check;
alter table ops.quality_runs add constraint quality_runs_status_check
    check (status in ('running', 'succeeded', 'incomplete', 'failed'));
comment on table ops.quality_runs is
    '数据质量检查运行: 每次运行一行 (data_date 为北京时间的数据日期; status running/succeeded/incomplete/failed)';
alter table ops.quality_runs add column if not exists error text;
comment on column ops.quality_runs.error is
    '失败原因 (status failed): 运行中的错误, 或 "运行中断" — 如数仓在运行中重启, 由下一次运行标记 (why a run failed)';
comment on column ops.quality_runs.not_checked is
    '未能检查的关系及原因 (incomplete 时非空): [{"relation": …, "reason": missing|empty|no_rules, "reason_zh": …}]';

create table if not exists ops.quality_results (
    run_id              text not null references ops.quality_runs (run_id) on delete cascade,
    rule_id             text not null,
    dept_code           text not null,
    asset               text not null,
    source              text not null,
    level               text not null check (level in ('row', 'dataset')),
    category            text not null,
    severity            text not null check (severity in ('blocking', 'warning')),
    success             boolean not null,
    evaluated_count     bigint not null,
    failed_count        bigint not null,
    failed_share        numeric,
    sample_record_ids   text[] not null default '{}',
    observed_on         date,
    observed            text,
    description_zh      text not null,
    fix_zh              text not null,
    deadline_zh         text,
    data_docs_page      text,
    primary key (run_id, rule_id, dept_code)
);
alter table ops.quality_results add column if not exists basis_zh text;
comment on column ops.quality_results.deadline_zh is '规则的时限要求 (如 作出决定之日起 7 个工作日内公示)';
comment on column ops.quality_results.basis_zh is '规则的依据 (标准、文件)';
create index if not exists quality_results_dept_idx on ops.quality_results (dept_code, run_id);
comment on table ops.quality_results is
    '数据质量检查结果: 每次运行、每条规则、每个适用部门一行 (one row per run, rule and department)';

create table if not exists ops.quality_row_failures (
    run_id              text not null references ops.quality_runs (run_id) on delete cascade,
    rule_id             text not null,
    asset               text not null,
    dept_code           text not null,
    record_id           text not null,
    severity            text not null check (severity in ('blocking', 'warning')),
    primary key (run_id, rule_id, record_id)
);
create index if not exists quality_row_failures_dept_idx on ops.quality_row_failures (run_id, dept_code);
comment on table ops.quality_row_failures is
    '行级规则的全部失败记录 (仅记录编号, 不含个人信息; every failing record id of every row-level rule)';

grant select on ops.quality_runs, ops.quality_results, ops.quality_row_failures to transformer;
revoke all on ops.quality_runs, ops.quality_results, ops.quality_row_failures from public;
"""


@dataclass(frozen=True)
class ResultRow:
    rule_id: str
    dept_code: str
    asset: str
    source: str
    level: str
    category: str
    severity: str
    success: bool
    evaluated_count: int
    failed_count: int
    failed_share: float | None
    sample_record_ids: tuple[str, ...]
    observed_on: date | None
    observed: str | None
    description_zh: str
    fix_zh: str
    deadline_zh: str | None
    data_docs_page: str | None
    basis_zh: str | None = None
    carried_from: str | None = None  # the run that validated it, when carried forward (incremental.py)


def ensure_tables(conn: psycopg.Connection) -> None:
    """Create the tables (idempotent), as loader."""
    from market_access.load.schema import bootstrap

    bootstrap(conn)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('market_access.quality.ddl'))")
        conn.execute("set local role loader")
        conn.execute(DDL)
        from market_access.quality.incremental import DDL as INCREMENTAL_DDL

        conn.execute(INCREMENTAL_DDL)


def start_run(
    conn: psycopg.Connection,
    run_id: str,
    started_at: datetime,
    data_date: date,
    docs_dir: str,
    departments: list[str] | None = None,
) -> None:
    with conn.transaction():
        conn.execute("set local role loader")
        conn.execute(
            "insert into ops.quality_runs (run_id, started_at, data_date, status, data_docs_dir, departments) "
            "values (%s, %s, %s, 'running', %s, %s)",
            (run_id, started_at, data_date, docs_dir, sorted(departments) if departments else None),
        )


def finish_run(
    conn: psycopg.Connection,
    run_id: str,
    finished_at: datetime,
    results: list[ResultRow],
    failures: list[tuple[str, str, str, str, str]],
    *,
    status: str = "succeeded",
    not_checked: list[dict] | tuple = (),
    fingerprints: dict[tuple[str, str], tuple[str, int]] | None = None,
    run_info: dict | None = None,
) -> None:
    """Results, failing records (rule_id, asset, dept_code, record_id, severity), the run's status
    ('succeeded', or 'incomplete' with what was not checked and why), its data fingerprints
    ((asset, dept_code) → (md5, rows)) and how it validated (`run_info`: mode, base_run_id,
    config_fingerprint, validation), in one transaction."""
    if status not in ("succeeded", "incomplete"):
        raise ValueError(f"a finished run is succeeded or incomplete, not {status!r}")
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("set local role loader")
        with cur.copy(
            "copy ops.quality_results (run_id, rule_id, dept_code, asset, source, level, category, severity, "
            "success, evaluated_count, failed_count, failed_share, sample_record_ids, observed_on, observed, "
            "description_zh, fix_zh, deadline_zh, data_docs_page, basis_zh, carried_from) from stdin"
        ) as copy:
            for r in results:
                copy.write_row(
                    (
                        run_id,
                        r.rule_id,
                        r.dept_code,
                        r.asset,
                        r.source,
                        r.level,
                        r.category,
                        r.severity,
                        r.success,
                        r.evaluated_count,
                        r.failed_count,
                        r.failed_share,
                        list(r.sample_record_ids),
                        r.observed_on,
                        r.observed,
                        r.description_zh,
                        r.fix_zh,
                        r.deadline_zh,
                        r.data_docs_page,
                        r.basis_zh,
                        r.carried_from,
                    )
                )
        with cur.copy(
            "copy ops.quality_row_failures (run_id, rule_id, asset, dept_code, record_id, severity) from stdin"
        ) as copy:
            for rule_id, asset, dept_code, record_id, severity in failures:
                copy.write_row((run_id, rule_id, asset, dept_code, record_id, severity))
        with cur.copy(
            "copy ops.quality_fingerprints (run_id, asset, dept_code, fingerprint, rows) from stdin"
        ) as copy:
            for (asset, dept_code), (fp, n) in sorted((fingerprints or {}).items()):
                copy.write_row((run_id, asset, dept_code, fp, n))
        info = run_info or {}
        cur.execute(
            "update ops.quality_runs set status = %s, finished_at = %s, not_checked = %s, mode = %s, "
            "base_run_id = %s, config_fingerprint = %s, validation = %s where run_id = %s",
            (
                status,
                finished_at,
                Jsonb(list(not_checked)),
                info.get("mode"),
                info.get("base_run_id"),
                info.get("config_fingerprint"),
                Jsonb(info.get("validation")) if info.get("validation") is not None else None,
                run_id,
            ),
        )


def fail_run(conn: psycopg.Connection, run_id: str, finished_at: datetime, error: str | None = None) -> None:
    with conn.transaction():
        conn.execute("set local role loader")
        conn.execute(
            "update ops.quality_runs set status = 'failed', finished_at = %s, error = %s "
            "where run_id = %s and status = 'running'",
            (finished_at, error, run_id),
        )


ABANDONED_ZH = (
    "运行中断: 该运行未能结束 (进程被终止或数仓在运行中重启), 由下一次运行 {run_id} 标记为失败; "
    "其结果未保存 (interrupted: the run never finished; marked failed by the next run)"
)


def abandon_stale_runs(conn: psycopg.Connection, by_run: str, now: datetime) -> list[str]:
    """Mark 'running' runs failed: called by a run holding the quality lock, so none of them is
    still alive (its process was killed, or the warehouse restarted under it and the failure could
    not be recorded). Returns their run ids."""
    with conn.transaction():
        conn.execute("set local role loader")
        rows = conn.execute(
            "update ops.quality_runs set status = 'failed', finished_at = %s, error = %s "
            "where status = 'running' and run_id <> %s returning run_id",
            (now, ABANDONED_ZH.format(run_id=by_run), by_run),
        ).fetchall()
    return [r[0] for r in rows]
