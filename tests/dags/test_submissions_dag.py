"""`airflow dags test submissions_inbox` for real: a temp inbox with a few files, an embedded warehouse."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from market_access import warehouse

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
FGJ = "11360421082036794P"  # 区发展和改革局
HEADERS = ["问卷编号", "填报日期", "统一社会信用代码", "评价对象单位", "评价维度", "得分"]
ROWS = [
    ["Q1", "2026/5/10", "91110000600037341L", "区市场监管局", "审批效率", "5"],
    ["Q1", "2026/5/10", "91110000600037341L", "区市场监管局", "总体", "4"],
    ["Q2", "2026年5月11日", "91310115MA1K3BTP2B", "区发改局", "总体", "9"],  # out of range → quarantined
]


def put(path: Path, rows: list[list], encoding: str) -> None:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out.getvalue().encode(encoding))
    old = time.time() - 120  # well past the inbox's settle time
    os.utime(path, (old, old))


def dags_test(env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}  # os.environ holds AIRFLOW_ENV (tests/dags/conftest.py)
    airflow = str(Path(sys.executable).with_name("airflow"))
    return subprocess.run(
        [airflow, "dags", "test", "submissions_inbox"], env=env, capture_output=True, text=True, timeout=600
    )


def test_dags_test_processes_the_inbox(airflow_db, warehouse_cfg, tmp_path):
    inbox = tmp_path / "inbox"
    put(inbox / FGJ / "满意度调查_2026Q2.csv", [HEADERS, *ROWS], "gb18030")
    put(inbox / "区发改局" / "满意度调查_2026Q2.csv", [HEADERS, *ROWS], "utf-8")  # not a dept_code folder

    out = dags_test(
        {
            "AIRFLOW_CONN_WAREHOUSE": warehouse_cfg.airflow_uri(),
            "SUBMISSIONS_INBOX": str(inbox),
            "DEPARTMENTS_CSV": str(REPO / "config" / "departments.csv"),
        }
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]

    with warehouse.connect(warehouse_cfg, autocommit=True) as conn:
        assert conn.execute("select count(*) from raw.directory__departments").fetchone()[0] == 30
        landed = conn.execute(
            "select record_id, dept_code, period from raw.submissions__satisfaction_survey_current order by 1"
        ).fetchall()
        assert landed == [("Q1|审批效率", FGJ, "2026Q2"), ("Q1|总体", FGJ, "2026Q2")]
        files = conn.execute(
            "select dept_code, status, rows_accepted, rows_quarantined from ops.submission_files order by 1"
        ).fetchall()
        assert files == [(FGJ, "accepted", 2, 1), ("区发改局", "rejected", 0, 0)]
    assert (inbox / "_archive" / FGJ / "accepted" / "满意度调查_2026Q2.csv.receipt.txt").exists()
    assert (inbox / "_archive" / "_unknown" / "区发改局" / "rejected" / "满意度调查_2026Q2.csv").exists()


def test_a_refused_directory_fails_the_run_with_its_message(airflow_db, warehouse_cfg, tmp_path):
    bad = tmp_path / "departments.csv"
    text = (REPO / "config" / "departments.csv").read_text(encoding="utf-8")
    bad.write_text(text.replace("scjgj@demo-county.gov.cn", "scjgj#demo-county.gov.cn"), encoding="utf-8")

    out = dags_test(
        {
            "AIRFLOW_CONN_WAREHOUSE": warehouse_cfg.airflow_uri(),
            "SUBMISSIONS_INBOX": str(tmp_path / "inbox"),
            "DEPARTMENTS_CSV": str(bad),
        }
    )
    log = out.stdout + out.stderr
    assert "scjgj#demo-county.gov.cn" in log and "malformed e-mail address" in log
    assert "new_state=failed" in log or "state=failed" in log
    assert "up_for_retry" not in log  # retrying cannot fix the operator's file


def test_dags_test_refuses_a_zip_bomb_and_a_symlink_and_lands_the_good_file(
    airflow_db, warehouse_cfg, tmp_path
):
    """Issue 12: one scan through the real DAG with a 2 MB → 2 GiB workbook, a link to a file outside
    the inbox and a good file: the DAG succeeds, the good file's 2 rows land (tests/hostile.py's
    GOOD_SURVEY), the other two are rejected with their reasons, the link is neither read nor moved."""
    import hostile as h  # tests/: pytest puts it on sys.path

    inbox = tmp_path / "inbox"
    old = time.time() - 120
    outside = tmp_path / "outside.csv"
    outside.write_bytes(h.csv_bytes([h.SURVEY_HEADERS, h.GOOD_SURVEY[1]]))
    for name, data in (
        ("满意度调查_2026Q1.xlsx", h.zip_bomb_xlsx()),
        ("满意度调查_2026Q2.csv", h.good_survey_csv()),
    ):
        (inbox / FGJ).mkdir(parents=True, exist_ok=True)
        (inbox / FGJ / name).write_bytes(data)
        os.utime(inbox / FGJ / name, (old, old))
    (inbox / FGJ / "满意度调查_2026Q3.csv").symlink_to(outside)

    out = dags_test(
        {
            "AIRFLOW_CONN_WAREHOUSE": warehouse_cfg.airflow_uri(),
            "SUBMISSIONS_INBOX": str(inbox),
            "DEPARTMENTS_CSV": str(REPO / "config" / "departments.csv"),
        }
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]

    with warehouse.connect(warehouse_cfg, autocommit=True) as conn:
        files = {
            name: (status, accepted, reason)
            for name, status, accepted, reason in conn.execute(
                "select file_name, status, rows_accepted, reason from ops.submission_files"
            ).fetchall()
        }
        landed = conn.execute("select count(*) from raw.submissions__satisfaction_survey").fetchone()[0]
    assert files["满意度调查_2026Q2.csv"] == ("accepted", 2, None) and landed == 2
    assert (
        files["满意度调查_2026Q1.xlsx"][0] == "rejected" and "压缩炸弹" in files["满意度调查_2026Q1.xlsx"][2]
    )
    assert files["满意度调查_2026Q3.csv"][0] == "rejected" and "符号链接" in files["满意度调查_2026Q3.csv"][2]
    assert (inbox / FGJ / "满意度调查_2026Q3.csv").is_symlink() and outside.exists()
    assert (inbox / "_archive" / FGJ / "rejected" / "满意度调查_2026Q1.xlsx.receipt.txt").exists()
