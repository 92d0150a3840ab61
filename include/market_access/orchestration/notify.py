"""Airflow callbacks that tell people about failures: a task that failed for good mails the 数据管理局.

`on_task_failure` is every DAG's task-level `on_failure_callback` (in default_args). Airflow runs it
in the task's own process when the task ends FAILED — after its last retry, never for a try that
will be retried (that is `on_retry_callback`) — and `airflow dags test` runs it the same way. The
mail itself (one per DAG and Beijing day) is market_access.alerts.failures; a callback must never
turn one failure into two, so anything going wrong here is logged, not raised.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from market_access.settings import BEIJING

log = logging.getLogger(__name__)


def _log_path(ti) -> str | None:
    """The task try's log file as Airflow's default file task handler names it, if it was written."""
    try:
        from airflow.configuration import conf

        base = Path(conf.get("logging", "base_log_folder"))
        mapped = f"map_index={ti.map_index}/" if (ti.map_index or -1) >= 0 else ""
        path = (
            base
            / f"dag_id={ti.dag_id}/run_id={ti.run_id}/task_id={ti.task_id}/{mapped}attempt={ti.try_number}.log"
        )
        return str(path) if path.exists() else None
    except Exception:
        return None


def _log_url(ti) -> str | None:
    try:
        return ti.log_url
    except Exception:
        return None


def failure_of(context) -> object:
    """The DagFailure of a failure callback's context."""
    from market_access.alerts.failures import DagFailure

    ti = context["ti"]
    error = context.get("exception")
    return DagFailure(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        dag_run_id=ti.run_id,
        try_number=ti.try_number,
        error=error if error is not None else "",
        log_url=_log_url(ti),
        log_path=_log_path(ti),
        when=datetime.now(BEIJING),
    )


def on_task_failure(context) -> None:
    """Task `on_failure_callback`: one mail to the 数据管理局 per DAG and Beijing day."""
    try:
        from market_access.alerts.failures import notify_dag_failure

        failure = failure_of(context)
        from market_access.orchestration.connections import smtp_connection, warehouse_config

        try:
            cfg = warehouse_config()
        except Exception as exc:
            log.warning("no warehouse for the failure mail's bookkeeping (%s)", exc)
            cfg = None
        outcome = notify_dag_failure(cfg, failure, smtp=smtp_connection())
        log.info("failure of %s.%s: bureau mail %s", failure.dag_id, failure.task_id, outcome)
    except Exception:
        log.exception("could not mail the 数据管理局 about this failure")
