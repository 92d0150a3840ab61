"""What the submissions_inbox DAG's tasks run: refresh the department directory, then process the inbox."""

from __future__ import annotations

import os

from market_access.settings import settings

DEFAULT_SCHEDULE = "*/15 * * * *"


def schedule() -> str:
    """Cron (Asia/Shanghai) of the inbox DAG; SUBMISSIONS_SCHEDULE overrides it."""
    return os.environ.get("SUBMISSIONS_SCHEDULE", "").strip() or DEFAULT_SCHEDULE


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
    from market_access.orchestration.sync import warehouse_config

    d = _directory()
    with warehouse.connect(warehouse_config(), autocommit=True) as conn:
        n = directory.load_into_warehouse(conn, d)
    return {"departments": n, "source": d.source}


def process_inbox() -> dict:
    """Process every file waiting in SUBMISSIONS_INBOX; returns counts and one outcome per file."""
    from market_access import warehouse
    from market_access.orchestration.sync import warehouse_config
    from market_access.submissions.inbox import process_inbox as run

    d = _directory()
    with warehouse.connect(warehouse_config(), autocommit=True) as conn:
        return run(conn, settings().submissions_inbox, d)
