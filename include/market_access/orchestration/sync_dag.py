"""Builds one sync DAG per source system from the resource catalogue (systems.yml)."""

from __future__ import annotations

from datetime import timedelta

from market_access.orchestration.notify import on_task_failure
from market_access.settings import settings
from market_access.sources import catalog

OWNER = "数据管理局"


def _doc(system: catalog.System, schedule: str) -> str:
    rows = "\n".join(f"| `{r.name}` | {r.title} | `{r.qualified_table}` |" for r in system.resources)
    return f"""
# 同步 {system.title} (`{system.name}`)

Pulls every resource of the {system.title} incrementally into the raw layer.

- **Connection**: Airflow connection `{system.conn_id}` (`AIRFLOW_CONN_{system.conn_id.upper()}`).
- **Schedule**: `{schedule}` (Asia/Shanghai). Override with `SYNC_SCHEDULE_{system.name.upper()}`.
- **Window**: from the resource's watermark minus `SYNC_LOOKBACK_MINUTES` up to the run's
  `data_interval_end`; keyset paging; a window's rows and its new watermark commit in one
  transaction, so a failed or killed task is simply rerun.
- **State**: `ops.sync_state` (watermark, rows, batches, last error), `ops.load_batches`,
  unparseable records in `ops.quarantine`.
- **Emits** one Asset per raw table, which the warehouse build is scheduled on.

| resource | 名称 | raw table (asset) |
|---|---|---|
{rows}
"""


def build_sync_dag(system_name: str):
    import pendulum
    from airflow.sdk import Asset, dag, task

    system = catalog.system(system_name)
    s = settings()
    schedule = s.schedule(system_name)

    @dag(
        dag_id=f"sync_{system_name}",
        description=f"增量同步 {system.title} → raw",
        schedule=schedule,
        start_date=pendulum.parse(s.start_date, tz="Asia/Shanghai"),
        catchup=False,
        max_active_runs=1,
        tags=["sync", "raw", system_name],
        doc_md=_doc(system, schedule),
        default_args={
            "owner": OWNER,
            "retries": s.task_retries,
            "retry_delay": timedelta(seconds=s.retry_delay_seconds),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=30),
            "execution_timeout": timedelta(hours=2),
            "on_failure_callback": on_task_failure,
        },
    )
    def sync_system():
        for res in system.resources:

            @task(
                task_id=f"sync_{res.name.replace('-', '_')}",
                outlets=[Asset(res.asset_name)],
                doc_md=f"{res.title}: `{system_name}/{res.name}` → `{res.qualified_table}`",
            )
            def sync_one(resource_name: str = res.name, data_interval_end=None) -> dict:
                from market_access.orchestration.sync import run_sync

                return run_sync(system_name, resource_name, data_interval_end)

            sync_one()

    return sync_system()
