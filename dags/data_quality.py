"""Airflow DAG: 数据质量检查与告警 — per-department rules on Great Expectations, then the mails.

- **Trigger**: the Asset `warehouse.staging` (a new staging layer from `build_warehouse`).
- `run_quality`: the rule catalogue (`config/quality_rules.yml`) as one suite per department and
  asset (`<dept_code>.<asset>`) and one checkpoint per department, validated in PostgreSQL; results
  in `ops.quality_results` / `ops.quality_row_failures`, Data Docs in `QUALITY_DATA_DOCS_DIR`
  (default `.local/quality/data_docs`). Emits `ops.quality_results`, which schedules
  `publish_marts`: blocking row failures are left out of the indicators, blocking dataset
  failures mark the department's indicators 待核实.
  Incremental: the rules over a department's own records are carried forward from the previous
  run where that department's data of the asset is unchanged (marked `carried_from` in
  `ops.quality_results`); rules that depend on the date or on the whole dataset run every time.
  Trigger with the param `full_run: true` (or set `QUALITY_FULL_RUN=1`) for a full run.
- `send_alerts`: one zh-CN mail per department with failures (none to the others), one summary to
  the 数据管理局; an unchanged failure at most once a day; a failure persisting past
  `ALERT_ESCALATE_AFTER_DAYS` is copied to the 发改局. Through the `smtp_default` connection, or
  `.eml` files in `ALERT_MAIL_DIR` when none is configured.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, Param, dag, get_current_context, task

from market_access.orchestration import quality
from market_access.orchestration import warehouse as wh
from market_access.orchestration.defaults import default_args, start_date


@dag(
    dag_id="data_quality",
    description="数据质量检查 (Great Expectations, 按部门) 与告警邮件",
    schedule=[Asset(wh.STAGING_ASSET)],
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    tags=["quality", "great_expectations", "alerts"],
    doc_md=__doc__,
    default_args=default_args(timedelta(minutes=30), exponential_backoff=False),
    params={
        "full_run": Param(
            False, type="boolean", description="全量检查: 不沿用上一次运行的结果 (validate everything)"
        )
    },
)
def data_quality():
    @task(outlets=[Asset(wh.QUALITY_ASSET)])
    def run_quality() -> dict:
        """Validate every department's staging data; the run's id and counts go to XCom."""
        context = get_current_context()
        return quality.run_quality(
            context.get("logical_date"), full_run=bool((context.get("params") or {}).get("full_run"))
        )

    @task
    def send_alerts(run: dict) -> dict:
        """Mail the departments with failures and the bureau's summary for this run."""
        return quality.send_alerts(run["run_id"])

    send_alerts(run_quality())


data_quality()
