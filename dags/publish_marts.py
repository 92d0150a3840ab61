"""Airflow DAG: 发布集市 — facts, indicator marts, the composite evaluation and the quality scorecard.

- **Trigger**: the Asset `ops.quality_results` (a finished `data_quality` run), so the marts always
  publish with the newest quality verdicts: records failing a blocking row-level rule are excluded
  from numerators and denominators and counted in `excluded_count` with the rule id; a department
  failing a blocking dataset-level rule has its indicators for that period marked 待核实.
- **dbt** through Cosmos: `models/intermediate/quality` and `models/marts` in watcher mode (one `dbt
  build`, then a task per model reporting its result and one for its tests); tables readable by the `analyst` role.
- **Emits** `warehouse.marts`.
"""

from __future__ import annotations

from airflow.sdk import Asset, dag, task

from market_access.orchestration import warehouse as wh
from market_access.orchestration.defaults import start_date


@dag(
    dag_id="publish_marts",
    description="dbt 发布集市 (Cosmos): 执行质量结论 → 事实表与指标集市 → 综合评价",
    schedule=[Asset(wh.QUALITY_ASSET)],
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    tags=["warehouse", "dbt", "cosmos", "marts"],
    doc_md=__doc__,
    default_args=wh.dbt_default_args(),
)
def publish_marts():
    @task
    def install_deid_key() -> str:
        """Same preparation as build_warehouse (idempotent): the marts' sources exist, the key is set."""
        return wh.prepare_warehouse()

    @task(outlets=[Asset(wh.MARTS_ASSET)])
    def marts_published() -> None:
        """Announce the published marts."""

    prepared, published = install_deid_key(), marts_published()
    prepared >> wh.dbt_task_group("dbt", wh.PUBLISH_SELECT) >> published
    prepared >> published  # a failed preparation fails the run (the model tasks are skipped then)


if not wh.parsing_another_dag("publish_marts"):
    publish_marts()
