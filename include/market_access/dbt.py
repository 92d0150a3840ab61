"""Running the dbt project against a warehouse: its environment, the CLI, and the grants it needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg import sql

from market_access.warehouse import WarehouseConfig

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


def dbt_executable() -> Path:
    """The dbt CLI installed next to this interpreter (the project's venv)."""
    exe = Path(sys.executable).with_name("dbt")
    return exe if exe.exists() else Path("dbt")


def dbt_env(cfg: WarehouseConfig, schema: str = "staging") -> dict[str, str]:
    """The DBT_* variables profiles.yml reads; host may be a Unix-socket directory."""
    return {
        "DBT_HOST": cfg.host,
        "DBT_PORT": str(cfg.port or 5432),
        "DBT_USER": cfg.user,
        # the embedded server trusts local connections; dbt-postgres still wants a value
        "DBT_PASSWORD": cfg.password or "",
        "DBT_DBNAME": cfg.dbname,
        "DBT_SCHEMA": schema,
    }


def grant_transformer(conn: psycopg.Connection) -> None:
    """Let the transformer create the layer schemas in this database (idempotent)."""
    dbname = conn.execute("select current_database()").fetchone()[0]
    with conn.transaction():
        conn.execute(sql.SQL("grant create on database {} to transformer").format(sql.Identifier(dbname)))


def run_dbt(
    args: list[str],
    cfg: WarehouseConfig,
    *,
    check: bool = True,
    target_path: Path | None = None,
    extra_env: dict | None = None,
) -> subprocess.CompletedProcess:
    """`dbt <args>` in dbt_project/ with the warehouse's profile; output captured, raised on failure.

    target_path (artefacts and logs) defaults to dbt_project/target, where the DAG reads the manifest;
    tests pass their own so that concurrent runs do not share partial-parse state.
    """
    paths = {"DBT_TARGET_PATH": str(target_path), "DBT_LOG_PATH": str(target_path)} if target_path else {}
    env = {
        **os.environ,
        **dbt_env(cfg),
        **paths,
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "DBT_PROJECT_DIR": str(PROJECT_DIR),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        **(extra_env or {}),
    }
    proc = subprocess.run(
        [str(dbt_executable()), *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
        raise RuntimeError(f"dbt {' '.join(args)} failed (exit {proc.returncode}):\n{tail}")
    return proc


def ensure_sources(conn: psycopg.Connection) -> None:
    """Every table dbt reads exists, even before its first sync, submitted file or quality run."""
    from market_access.load.schema import bootstrap, ensure_raw_table
    from market_access.quality import results
    from market_access.sources import catalog
    from market_access.submissions.inbox import ensure_tables

    bootstrap(conn)
    for resource in catalog.all_resources():
        ensure_raw_table(conn, resource)
    ensure_tables(conn)
    results.ensure_tables(conn)


def prepare_warehouse(conn: psycopg.Connection, settings=None, *, key_variable: str | None = None) -> str:
    """Before a build: roles and schemas, every source table, the transformer's CREATE grant,
    the active HMAC key (`key_variable`: the Airflow Variable's text, read by the caller).

    Returns the active key id (never the key).
    """
    from market_access import deid

    ensure_sources(conn)
    grant_transformer(conn)
    key = deid.key_from_environment(settings, variable=key_variable)
    deid.install_key(conn, key.key, key.key_id)
    return key.key_id
