"""What the submissions_inbox DAG's tasks run: refresh the department directory, process the inbox,
mail the receipts; and the schedule and Assets the DAG file declares."""

from __future__ import annotations

import os

from market_access.settings import settings

DEFAULT_SCHEDULE = "*/15 * * * *"
DIRECTORY_ASSET = "raw.directory__departments"


def schedule() -> str:
    """Cron (Asia/Shanghai) of the inbox DAG; SUBMISSIONS_SCHEDULE overrides it."""
    return os.environ.get("SUBMISSIONS_SCHEDULE", "").strip() or DEFAULT_SCHEDULE


def template_assets() -> list[str]:
    """The Assets the inbox emits: one raw table per submission template (templates.yml)."""
    from market_access.submissions.templates import templates

    return [t.asset_name for t in templates().values()]


def _directory():
    from market_access import directory

    try:
        return directory.load(settings().departments_csv)
    except directory.DirectoryError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        # a retry cannot fix the operator's file: fail now, with the message that says what to fix
        raise AirflowFailException(str(exc)) from exc


def load_department_directory() -> dict:
    """Validate the directory CSV and replace raw.directory__departments with it."""
    from market_access import directory, warehouse
    from market_access.orchestration.connections import warehouse_config

    d = _directory()
    with warehouse.connect(warehouse_config(), autocommit=True) as conn:
        n = directory.load_into_warehouse(conn, d)
    return {"departments": n, "source": d.source}


def process_inbox() -> dict:
    """Process every file waiting in SUBMISSIONS_INBOX; returns counts and one outcome per file."""
    from market_access import warehouse
    from market_access.orchestration.connections import warehouse_config
    from market_access.submissions.inbox import process_inbox as run

    d = _directory()
    with warehouse.connect(warehouse_config(), autocommit=True) as conn:
        summary = run(conn, settings().submissions_inbox, d)
    problems = [f"{x['path']}: 未归档 not archived ({x['error']})" for x in summary["not_archived"]] + [
        f"{x['path']}: 未处理 not processed ({x['error']})" for x in summary["errors"]
    ]
    if problems:
        # every other file of the scan is done and recorded; failing makes the operator look and
        # Airflow retry: the retry archives what is recorded and loads nothing twice
        raise RuntimeError(
            f"收件箱扫描完成，但 {len(problems)} 个文件需要处理 (scan done, {len(problems)} files need attention): "
            + "; ".join(problems)
        )
    return summary


def send_receipts() -> dict:
    """Mail every submission receipt not mailed yet (smtp_default, or .eml files in the outbox)."""
    from market_access.alerts import send_receipts as send
    from market_access.alerts.service import destination
    from market_access.orchestration.connections import smtp_connection, warehouse_config

    smtp = smtp_connection()
    return {"receipts": send(warehouse_config(), smtp=smtp), "to": destination(smtp=smtp)}
