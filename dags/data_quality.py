"""Airflow DAG: 数据质量检查与告警 — per-department rules on Great Expectations, then the mails.

- **Trigger**: the Asset `warehouse.staging` (a new staging layer from `build_warehouse`).
- `run_quality`: the rule catalogue (`config/quality_rules.yml`) as one suite per department and
  asset (`<dept_code>.<asset>`) and one checkpoint per department, validated in PostgreSQL; results
  in `ops.quality_results` / `ops.quality_row_failures`, Data Docs in `QUALITY_DATA_DOCS_DIR`
  (default `.local/quality/data_docs`). Emits `ops.quality_results`, which schedules
  `publish_marts`: blocking row failures are left out of the indicators, blocking dataset
  failures mark the department's indicators 待核实.
- `send_alerts`: one zh-CN mail per department with failures (none to the others), one summary to
  the 数据管理局; an unchanged failure at most once a day; a failure persisting past
  `ALERT_ESCALATE_AFTER_DAYS` is copied to the 发改局. Through the `smtp_default` connection, or
  `.eml` files in `ALERT_MAIL_DIR` when none is configured.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task

from market_access.orchestration import warehouse as wh
from market_access.orchestration.notify import on_task_failure
from market_access.settings import settings


@dag(
    dag_id="data_quality",
    description="数据质量检查 (Great Expectations, 按部门) 与告警邮件",
    schedule=[Asset(wh.STAGING_ASSET)],
    start_date=pendulum.parse(settings().start_date, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["quality", "great_expectations", "alerts"],
    doc_md=__doc__,
    default_args={
        "owner": wh.OWNER,
        "retries": settings().task_retries,
        "retry_delay": timedelta(seconds=settings().retry_delay_seconds),
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": on_task_failure,
    },
)
def data_quality():
    @task(outlets=[Asset(wh.QUALITY_ASSET)])
    def run_quality() -> dict:
        """Validate every department's staging data; the run's id and counts go to XCom."""
        return wh.run_quality(get_current_context().get("logical_date"))

    @task
    def send_alerts(run: dict) -> dict:
        """Mail the departments with failures and the bureau's summary for this run."""
        from market_access.alerts.tasks import send_quality_alerts

        return send_quality_alerts(run["run_id"])

    send_alerts(run_quality())


data_quality()
