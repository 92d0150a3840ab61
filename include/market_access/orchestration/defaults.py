"""What every DAG shares: the owner, the start date and the task defaults (retries, back-off, time-outs)."""

from __future__ import annotations

from datetime import timedelta

from market_access.orchestration.notify import on_task_failure
from market_access.settings import settings

OWNER = "数据管理局"
TIMEZONE = "Asia/Shanghai"


def start_date():
    """The DAGs' start date (`SYNC_START_DATE`, Asia/Shanghai) as the pendulum datetime Airflow wants."""
    import pendulum

    return pendulum.parse(settings().start_date, tz=TIMEZONE)


def default_args(
    execution_timeout: timedelta, *, min_retries: int = 0, exponential_backoff: bool = True
) -> dict:
    """Task defaults: the owner, `SYNC_TASK_RETRIES` retries (at least `min_retries`) every
    `SYNC_RETRY_DELAY_SECONDS`, optionally doubling up to 30 minutes, and the task's time limit."""
    s = settings()
    args = {
        "owner": OWNER,
        "retries": max(min_retries, s.task_retries),
        "retry_delay": timedelta(seconds=s.retry_delay_seconds),
        "execution_timeout": execution_timeout,
        # a task that failed for good (after its last retry) mails the 数据管理局
        "on_failure_callback": on_task_failure,
    }
    if exponential_backoff:
        args["retry_exponential_backoff"] = True
        args["max_retry_delay"] = timedelta(minutes=30)
    return args
