"""Roles, schemas and bookkeeping tables of the raw layer (idempotent; run before every load)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from market_access.sources.catalog import Resource

# Group roles (NOLOGIN). The warehouse connection's user must be a member of LOADER and
# TRANSFORMER (in the embedded default it is the superuser); people log in with their own users
# granted ANALYST.
LOADER = "loader"
TRANSFORMER = "transformer"
ANALYST = "analyst"

BOOTSTRAP_SQL = """
do $$
declare r text;
begin
    foreach r in array array['loader', 'transformer', 'analyst'] loop
        if not exists (select from pg_roles where rolname = r) then
            execute format('create role %I nologin', r);
        end if;
    end loop;
    -- the platform's own user must be able to SET ROLE to the roles that own and read the layers
    -- (PostgreSQL 16+ separates SET from membership: a CREATEROLE user holds admin, not SET)
    foreach r in array array['loader', 'transformer'] loop
        if not pg_has_role(current_user, r,
                case when current_setting('server_version_num')::int >= 160000 then 'SET' else 'MEMBER' end) then
            execute format('grant %I to %I', r, current_user);
        end if;
    end loop;
end $$;

create schema if not exists raw authorization loader;
create schema if not exists ops authorization loader;
revoke all on schema raw from public;
revoke all on schema ops from public;
grant usage on schema raw to transformer;
grant usage on schema ops to transformer;
alter default privileges for role loader in schema raw grant select on tables to transformer;
alter default privileges for role loader in schema ops grant select on tables to transformer;

set role loader;

create sequence if not exists ops.batch_id_seq;

create table if not exists ops.sync_state (
    system              text not null,
    resource            text not null,
    raw_table           text not null,
    watermark           timestamptz,
    last_window_since   timestamptz,
    last_window_until   timestamptz,
    rows_loaded         bigint not null default 0,
    batches             bigint not null default 0,
    last_batch_id       bigint,
    last_status         text,
    last_success_at     timestamptz,
    last_error_at       timestamptz,
    last_error          text,
    source_total        bigint,
    held_since          timestamptz,
    primary key (system, resource)
);
comment on table ops.sync_state is '每个来源资源的同步状态: 水位线、累计入库行数、批次、最近成功与错误 (sync state per source resource)';

create table if not exists ops.load_batches (
    batch_id            bigint primary key,
    source              text not null,
    system              text,
    resource            text,
    window_since        timestamptz,
    window_until        timestamptz,
    started_at          timestamptz not null,
    finished_at         timestamptz,
    status              text not null constraint load_batches_status_check
                            check (status in ('succeeded', 'failed', 'held')),
    pages               integer not null default 0,
    rows_received       bigint not null default 0,
    rows_inserted       bigint not null default 0,
    rows_quarantined    bigint not null default 0,
    max_updated_at      timestamptz,
    error               text,
    source_total        bigint,
    source_total_before bigint
);
comment on table ops.load_batches is '每个装载批次一行, 成功、失败或暂停 (one row per load batch: succeeded, failed, or held)';

-- warehouses from before the hostile-source checks: add what they lack (only then: an ALTER
-- takes an exclusive lock, and every sync task runs this)
do $$
begin
    if not exists (select from pg_attribute where attrelid = 'ops.sync_state'::regclass
                   and attname = 'source_total' and not attisdropped) then
        alter table ops.sync_state add column source_total bigint, add column held_since timestamptz;
    end if;
    if not exists (select from pg_attribute where attrelid = 'ops.load_batches'::regclass
                   and attname = 'source_total' and not attisdropped) then
        alter table ops.load_batches add column source_total bigint, add column source_total_before bigint,
            drop constraint if exists load_batches_status_check,
            add constraint load_batches_status_check check (status in ('succeeded', 'failed', 'held'));
    end if;
end $$;
comment on column ops.sync_state.source_total is '上次接受的来源历史记录总数 (the last accepted whole-history total at the source; null = not judged next run)';
comment on column ops.load_batches.source_total is '本批次开始时来源的历史记录总数 (the whole-history total the source reported)';

create table if not exists ops.source_anomalies (
    anomaly_id          bigint generated always as identity primary key,
    batch_id            bigint not null,
    system              text not null,
    resource            text not null,
    record_id           text,
    kind                text not null check (kind in ('updated_at_backwards', 'history_total_drop')),
    detail              text not null,
    observed_at         timestamptz not null default now()
);
create index if not exists source_anomalies_batch_idx on ops.source_anomalies (batch_id);
comment on table ops.source_anomalies is '来源异常: 版本时间倒退、历史总数骤降 (what a source did beyond the contract''s faults, landed or held)';

create table if not exists ops.quarantine (
    quarantine_id       bigint generated always as identity primary key,
    batch_id            bigint not null,
    source              text not null,
    record_id           text,
    reason              text not null,
    raw_text            text not null,
    quarantined_at      timestamptz not null default now()
);
create index if not exists quarantine_batch_idx on ops.quarantine (batch_id);
comment on table ops.quarantine is '无法解析的记录及原因, 原文保留 (records that could not be parsed, kept verbatim with the reason)';

reset role;
"""


def bootstrap(conn: psycopg.Connection) -> None:
    """Create roles, schemas and bookkeeping tables; safe to run again and again."""
    with conn.transaction():
        # one bootstrap at a time: parallel Airflow tasks all call this on a fresh warehouse
        conn.execute("select pg_advisory_xact_lock(hashtext('market_access.bootstrap'))")
        conn.execute(BOOTSTRAP_SQL)


def ensure_raw_table(conn: psycopg.Connection, resource: Resource) -> None:
    """raw.<system>__<resource>: append-only history, one row per delivered version."""
    table = sql.Identifier("raw", resource.table)
    stmts = [
        sql.SQL(
            """
            create table if not exists {table} (
                raw_id              bigint generated always as identity primary key,
                record_id           text not null,
                source_updated_at   timestamptz not null,
                is_deleted          boolean not null,
                payload             jsonb not null,
                payload_md5         uuid not null,
                _batch_id           bigint not null,
                _loaded_at          timestamptz not null default now()
            )"""
        ).format(table=table),
        # a re-delivered identical version is recognised and not stored again; payload_md5 is the
        # MD5 of the record's canonical JSON (sorted keys), computed by the loader
        sql.SQL(
            "create unique index if not exists {name} on {table} (record_id, source_updated_at, payload_md5)"
        ).format(name=sql.Identifier(f"{resource.table}__version_uidx"), table=table),
        # rows arrive in _loaded_at order, so a BRIN index serves "loaded since …" at almost no cost
        sql.SQL("create index if not exists {name} on {table} using brin (_loaded_at)").format(
            name=sql.Identifier(f"{resource.table}__loaded_at_idx"), table=table
        ),
        sql.SQL("comment on table {table} is {comment}").format(
            table=table,
            comment=sql.Literal(
                f"{resource.title} ({resource.system}/{resource.name}) 原始层: 每次交付的记录版本一行, 只追加"
            ),
        ),
    ]
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (resource.qualified_table,))
        conn.execute("set local role loader")
        for stmt in stmts:
            conn.execute(stmt)
