"""Airflow DAG: 部门报送收件箱 — department submission files into the raw layer.

# 部门报送收件箱 (`submissions_inbox`)

Departments without a system interface send their **违规案例**, **隐性壁垒投诉**, **整改台账** and
**满意度调查** as files (.xlsx, UTF-8 or GB18030 CSV) into `SUBMISSIONS_INBOX/<dept_code>/`,
named `<模板名>_<期间>.<ext>` (e.g. `违规案例_2026-06.xlsx`, `整改台账_2026H1.csv`).

1. `load_department_directory`: validates `DEPARTMENTS_CSV` (default `config/departments.csv`) and
   replaces `raw.directory__departments`; a bad directory fails the run with a message naming the
   line and the problem.
2. `process_inbox`: each new file is parsed against its template (`templates.yml`) and loaded
   **exactly once** (identified by its SHA-256): valid rows land in `raw.submissions__<template>`,
   invalid rows go to `ops.submission_quarantine` with the column and a Chinese reason, an unusable
   file lands nothing and is rejected. A corrected file for the same department, template and
   period supersedes the earlier one (`raw.submissions__<template>_current`). Each file is moved to
   `_archive/<dept_code>/<outcome>/` with its receipt (`<name>.receipt.txt`, also in
   `ops.submission_receipts`); `ops.submission_files` keeps one row per received file.
   Hostile entries are refused with a reason and a receipt, the rest of the scan goes on: symlinks
   and special files are never read nor moved, zip bombs and macro workbooks are refused before
   parsing, a file changed while read lands nothing. A file that could not be archived (archive
   folder not writable) stays recorded in `ops.submission_files.archive_error`; the task then
   fails after the scan, and the retry archives it without loading it again.
3. `send_receipts`: every receipt not mailed yet goes to its department's addresses through the
   `smtp_default` connection (without one: `.eml` files in `ALERT_MAIL_DIR`); `mailed_at` is set
   only once the server has accepted the message.

- **Schedule**: every 15 minutes (`SUBMISSIONS_SCHEDULE` overrides), Asia/Shanghai.
- **Emits** the Assets `raw.submissions__<template>` for the four templates.
- Reruns are safe: a file already recorded is never loaded twice.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, dag, task

from market_access.orchestration import submissions
from market_access.orchestration.defaults import default_args, start_date


@dag(
    dag_id="submissions_inbox",
    description="部门报送文件 → raw (违规案例 / 隐性壁垒投诉 / 整改台账 / 满意度调查)",
    schedule=submissions.schedule(),
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    tags=["submissions", "raw", "inbox"],
    doc_md=__doc__,
    default_args=default_args(timedelta(hours=1)),
)
def submissions_inbox():
    @task(outlets=[Asset(submissions.DIRECTORY_ASSET)])
    def load_department_directory() -> dict:
        return submissions.load_department_directory()

    @task(outlets=[Asset(name) for name in submissions.template_assets()])
    def process_inbox() -> dict:
        return submissions.process_inbox()

    @task
    def send_receipts() -> dict:
        """Mail the receipts of the files just processed to their departments (smtp_default or the outbox)."""
        return submissions.send_receipts()

    load_department_directory() >> process_inbox() >> send_receipts()


submissions_inbox()
