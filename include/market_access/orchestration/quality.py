"""What the data_quality DAG's tasks run: validate staging per department, then mail the results."""

from __future__ import annotations

from datetime import date, datetime

from market_access.settings import BEIJING, settings


def as_of_date(logical: datetime | None) -> date:
    """The Beijing date a quality run is "as of": QUALITY_AS_OF, else the run's logical date, else today."""
    if settings().quality_as_of is not None:
        return settings().quality_as_of
    if logical is None:
        return datetime.now(BEIJING).date()
    return logical.astimezone(BEIJING).date()


def run_quality(logical: datetime | None = None, full_run: bool = False) -> dict:
    """Validate staging per department; a failed run raises (its run row says 'failed'). A run that
    could not check some relation ends 'incomplete' and the task still succeeds: it is logged and
    listed in the run's row, the bureau's summary and `make run`'s summary. Incremental (results
    of unchanged data carried from the previous run) unless `full_run` (the DAG param) or
    QUALITY_FULL_RUN is set."""
    from market_access.orchestration.connections import warehouse_config
    from market_access.quality import run_quality as run

    full = bool(full_run) or settings().quality_full_run
    summary = run(warehouse_config(), settings=settings(), as_of=as_of_date(logical), full=full)
    failed = [d for d in summary.departments if d.rules_failed]
    return {
        "run_id": summary.run_id,
        "data_date": summary.data_date.isoformat(),
        "status": summary.status,
        "duration_seconds": round(summary.duration_seconds, 1),
        "rules_evaluated": summary.rules_evaluated,
        "rules_failed": summary.rules_failed,
        "departments_failing": len(failed),
        "data_docs_dir": summary.data_docs_dir,
        "not_checked": [dict(n) for n in summary.not_checked],
        "mode": summary.mode,
        "mode_reason_zh": summary.mode_reason_zh,
        "base_run_id": summary.base_run_id,
        "results_revalidated": summary.revalidated,
        "results_carried": summary.carried,
    }


def send_alerts(run_id: str) -> dict:
    """Mail the alerts of quality run `run_id` (after the run's results are stored)."""
    from market_access.alerts import send_alerts as send
    from market_access.orchestration.connections import smtp_connection, warehouse_config

    return send(warehouse_config(), run_id, smtp=smtp_connection()).as_dict()
