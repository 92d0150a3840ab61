"""Airflow DAG: 构建数仓 (dbt seeds → staging → intermediate), run through Cosmos.

- **Trigger**: whenever a sync DAG or the submissions inbox updates one of the raw Assets
  (`raw.<system>__<resource>`, `raw.submissions__<template>`); one run at a time, so updates that
  arrive during a run are picked up by the next one.
- **First task** `install_deid_key`: creates roles/schemas and every source table if needed, lets
  the transformer create the layer schemas, and installs the HMAC key for pseudonyms (environment
  `MARKET_ACCESS_HMAC_KEY` / `MARKET_ACCESS_HMAC_KEY_ID`, else the Airflow Variable
  `market_access_hmac_key`; the embedded default generates a local key once). The key never
  reaches dbt, its SQL or the logs.
- **dbt**: Cosmos' watcher mode — one `dbt build` of the whole selection (`dbt.dbt_producer_watcher`),
  then per model a task that reports that model's result (a failed model fails its own task with
  dbt's error; its retry, or a clear, runs the model again by itself) and a task for its tests, and
  one source-freshness task per raw table (warn-only); rendered from `dbt_project/target/manifest.json`, which `make
  manifest` (`dbt parse`) builds ahead of time so parsing this DAG stays cheap.
- **Profile**: from the Airflow connection `warehouse` (role `transformer`; all objects belong to it).
- **Incremental**: staging models merge only the records of newer load batches; deletions (撤销)
  delivered by the sources are applied.
- **Emits** the Asset `warehouse.staging`, which schedules `data_quality`; the facts and indicator
  marts are published by `publish_marts` after the quality run.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAny, dag, task

from market_access.orchestration import warehouse as wh
from market_access.orchestration.defaults import start_date


@dag(
    dag_id="build_warehouse",
    description="dbt 构建数仓 (Cosmos): seeds → staging → intermediate",
    schedule=AssetAny(*(Asset(name) for name in wh.raw_assets())),
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    tags=["warehouse", "dbt", "cosmos"],
    doc_md=__doc__,
    default_args=wh.dbt_default_args(),
)
def build_warehouse():
    @task
    def install_deid_key() -> str:
        """Roles, schemas, source tables, the transformer's CREATE grant and the active HMAC key (its id)."""
        return wh.prepare_warehouse()

    @task(outlets=[Asset(wh.STAGING_ASSET)])
    def staging_ready() -> None:
        """Announce the new staging layer (schedules `data_quality`)."""

    prepared, ready = install_deid_key(), staging_ready()
    prepared >> wh.dbt_task_group("dbt", wh.BUILD_SELECT, wh.BUILD_EXCLUDE) >> ready
    prepared >> ready  # a failed preparation fails the run (the model tasks are skipped then)


if not wh.parsing_another_dag("build_warehouse"):
    build_warehouse()
