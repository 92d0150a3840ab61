"""Peak memory of the inbox DAG for each hostile file: `airflow dags test submissions_inbox` on an
inbox holding only that file, its whole process tree sampled with psutil.

    .venv/bin/python bench/inbox_hostile.py [--only NAME ...] [--limit-mib 1024]

Each file is built for real by tests/hostile.py (a 2 MB → 2 GiB zip bomb, a workbook with macros,
a 1,000,000-row CSV, symlinks …). A fresh embedded PostgreSQL and a throw-away Airflow home (SQLite
metadata) serve every run. Prints one line per file: its size, the outcome recorded in
ops.submission_files, the peak RSS of the process tree (the sum over the `airflow dags test`
process and its children, sampled every 20 ms) and the wall time. Exits 1 when a peak reaches
the limit (1 GiB, issue 12).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "include"))
sys.path.insert(0, str(REPO / "tests"))

import hostile as h  # noqa: E402

from market_access import warehouse  # noqa: E402


def _put(inbox: Path, folder: str, name: str, data: bytes | None = None, writer=None) -> None:
    path = inbox / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if writer is not None:
        writer(path)
    else:
        path.write_bytes(data)
    old = time.time() - 120
    os.utime(path, (old, old))


def cases(outside: Path) -> dict:
    """name → function(inbox) that puts that one hostile file there."""
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "满意度调查_2026Q1.csv").write_bytes(h.good_survey_csv())
    (outside / "dir").mkdir(exist_ok=True)
    (outside / "dir" / "满意度调查_2026Q1.csv").write_bytes(h.good_survey_csv())

    def link(target: Path):
        def put(inbox: Path) -> None:
            (inbox / h.SCJ).mkdir(parents=True, exist_ok=True)
            (inbox / h.SCJ / "满意度调查_2026Q2.csv").symlink_to(target)

        return put

    def data(name: str, build, folder: str = h.SCJ):
        return lambda inbox: _put(inbox, folder, name, build())

    # the heaviest first: on a shared machine the lock may come late, and lines print as they finish
    return {
        "zip bomb 2 MB -> 2 GiB": data("满意度调查_2026Q2.xlsx", h.zip_bomb_xlsx),
        "1,000,000-row CSV": lambda inbox: _put(
            inbox, h.SCJ, "满意度调查_2026Q2.csv", writer=lambda p: h.write_survey_csv(p, 1_000_000)
        ),
        "16,384 columns": data("满意度调查_2026Q2.xlsx", h.wide_xlsx),
        "1 MB cell": data("满意度调查_2026Q2.csv", h.big_cell_csv),
        "zip bomb 300 KB -> 300 MiB (ratio)": data(
            "满意度调查_2026Q2.xlsx", lambda: h.zip_bomb_xlsx(300 * 2**20)
        ),
        ".xlsm with vbaProject.bin": data("满意度调查_2026Q2.xlsm", h.xlsm_with_macros),
        "macros renamed .xlsx": data("满意度调查_2026Q2.xlsx", h.xlsm_with_macros),
        "symlink to a file outside": link(outside / "满意度调查_2026Q1.csv"),
        "symlink to a folder outside": link(outside / "dir"),
        "null bytes": data("满意度调查_2026Q2.csv", h.null_bytes_csv),
        "invalid UTF-8": data("满意度调查_2026Q2.csv", h.invalid_utf8_csv),
        "255-byte name": data(h.HOSTILE_NAMES["long"], h.good_survey_csv, folder=h.FGJ),
        "name with .., spaces, emoji": data(
            h.HOSTILE_NAMES["odd"], lambda: h.csv_bytes([h.SURVEY_HEADERS, *h.GOOD_SURVEY[::-1]])
        ),
        "good file (2 rows)": data("满意度调查_2026Q3.csv", h.good_survey_csv),
    }


def peak_rss(cmd: list[str], env: dict) -> tuple[int, float, int]:
    """(peak RSS in bytes of the process tree, seconds, exit code)."""
    started = time.monotonic()
    proc = psutil.Popen(cmd, env=env, stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115
    peak = 0
    while proc.poll() is None:
        total = 0
        try:
            for p in [proc, *proc.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            pass
        peak = max(peak, total)
        time.sleep(0.02)
    return peak, time.monotonic() - started, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="run only the cases whose name contains one of these")
    ap.add_argument("--limit-mib", type=int, default=1024)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="inbox-hostile-"))
    pgdata = work / "pgdata"
    cfg = warehouse.start_embedded(pgdata)
    home = work / "airflow"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Shanghai",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        "DEPARTMENTS_CSV": str(REPO / "config" / "departments.csv"),
        "ALERT_MAIL_DIR": str(work / "outbox"),
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    try:
        psutil.Popen([airflow, "db", "migrate"], env=env, stdout=open(os.devnull, "w")).wait()  # noqa: SIM115
        print(f"{'file':<38} {'size':>10}  {'outcome':<60} {'peak RSS':>10} {'time':>7}", flush=True)
        failed = False
        for n, (name, put) in enumerate(cases(work / "outside").items()):
            if args.only and not any(o in name for o in args.only):
                continue
            inbox = work / f"inbox{n}"
            put(inbox)
            db = dataclasses.replace(cfg, dbname=f"hostile_{n}")  # each file its own warehouse
            with warehouse.connect(cfg, autocommit=True) as conn:
                conn.execute(f'create database "{db.dbname}"')
            size = sum(p.lstat().st_size for p in inbox.rglob("*") if not p.is_dir() or p.is_symlink())
            peak, took, rc = peak_rss(
                [airflow, "dags", "test", "submissions_inbox"],
                {**env, "SUBMISSIONS_INBOX": str(inbox), "AIRFLOW_CONN_WAREHOUSE": db.airflow_uri()},
            )
            with warehouse.connect(db, autocommit=True) as conn:
                row = conn.execute(
                    "select status, rows_accepted, coalesce(reason, '') from ops.submission_files "
                    "order by submission_id desc limit 1"
                ).fetchone()
            outcome = f"{row[0]} {row[1]} rows {row[2][:40]}" if row else "(no record)"
            over = peak >= args.limit_mib * 2**20
            failed |= over or rc != 0
            print(
                f"{name:<38} {size:>10,}  {outcome:<60} {peak / 2**20:>7,.0f} MiB {took:>6.1f}s"
                + ("  OVER LIMIT" if over else "")
                + (f"  exit {rc}" if rc else ""),
                flush=True,
            )
            shutil.rmtree(inbox, ignore_errors=True)
        return 1 if failed else 0
    finally:
        warehouse.stop_embedded(pgdata)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
