"""The quality run over one day's increment: full (before issue 13) against incremental (after).

Run it on a warehouse after two `make run`s (the second one a simulated day later):

    .venv/bin/python bench/quality_incremental.py

It takes the newest quality run (the day) and the previous one with an earlier data date (the base),
copies the warehouse twice (`create database … template …`, nothing else may be connected), and
on the day's data runs in one copy a forced full run, in the other an incremental run against the
base (the runs after the base are removed from that copy, so the day's increment is what changed).
Then it compares their results (minus run ids and Data Docs file names) and prints both runs' times
per stage; the last line reads
`quality_incremental full_s=<n> incremental_s=<n> ratio=<n> identical=<yes|no>`.
The warehouse itself is not changed; the copies are dropped.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path

RESULT_COLUMNS = (
    "rule_id, dept_code, asset, source, level, category, severity, success, evaluated_count, failed_count, "
    "failed_share, sample_record_ids, observed_on, observed, description_zh, fix_zh, deadline_zh, basis_zh, "
    "data_docs_page"
)


def main(argv: list[str] | None = None) -> int:
    from market_access import warehouse
    from market_access.dbt import grant_transformer
    from market_access.quality import run_quality
    from market_access.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    s = Settings()
    cfg = warehouse.configured() or warehouse.start_embedded(s.pgdata)
    with warehouse.connect(cfg, autocommit=True) as conn:
        runs = conn.execute(
            "select run_id, data_date, started_at, status, mode from ops.quality_runs "
            "where departments is null order by started_at desc"
        ).fetchall()
    if not runs:
        print("no quality run in the warehouse: run `make run` twice first", file=sys.stderr)
        return 2
    day_run, day, *_ = runs[0]
    base = next((r for r in runs if r[1] < day and r[3] == "succeeded"), None)
    if base is None:
        print(f"no succeeded run before {day}: run `make run` a second time", file=sys.stderr)
        return 2
    print(f"day {day} (run {day_run}, {runs[0][4] or 'full'}), base {base[0]} of {base[1]}")
    os.environ["QUALITY_DATA_DOCS_DIR"] = tempfile.mkdtemp(prefix="quality-bench-docs-")
    out: dict[str, dict] = {}
    for label in ("full", "incremental"):
        name = f"{cfg.dbname}_qbench_{label}"
        with warehouse.connect(cfg, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}"')
            conn.execute(f'create database "{name}" template "{cfg.dbname}"')
        copy = dataclasses.replace(cfg, dbname=name)
        with warehouse.connect(copy, autocommit=True) as conn:
            grant_transformer(conn)  # a database's own grants are not copied from its template
        try:
            if label == "incremental":
                with warehouse.connect(copy, autocommit=True) as conn:
                    conn.execute("set role loader")
                    conn.execute("delete from ops.quality_runs where started_at > %s", (base[2],))
            t = time.monotonic()
            summary = run_quality(copy, settings=Settings(), as_of=day, full=label == "full")
            wall = time.monotonic() - t
            with warehouse.connect(copy, autocommit=True) as conn:
                rows = conn.execute(
                    f"select {RESULT_COLUMNS} from ops.quality_results where run_id = %s order by dept_code, rule_id",
                    (summary.run_id,),
                ).fetchall()
                failures = conn.execute(
                    "select rule_id, asset, dept_code, record_id from ops.quality_row_failures where run_id = %s "
                    "order by 1, 2, 3, 4",
                    (summary.run_id,),
                ).fetchall()
            page = re.compile(r"^(validations/[^/]+/[^/]+)/.*$")
            out[label] = {
                "summary": summary,
                "wall": wall,
                "rows": [(*r[:-1], page.sub(r"\1/…", r[-1] or "")) for r in rows],
                "failures": failures,
            }
            print(
                f"{label:12s} {wall:7.1f} s  mode {summary.mode}: re-validated {summary.revalidated}, "
                f"carried {summary.carried}; status {summary.status}; stages {summary.timings}"
            )
        finally:
            with warehouse.connect(cfg, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{name}" with (force)')
    identical = (
        out["full"]["rows"] == out["incremental"]["rows"]
        and out["full"]["failures"] == out["incremental"]["failures"]
    )
    full_s, inc_s = out["full"]["wall"], out["incremental"]["wall"]
    print(
        f"quality_incremental full_s={full_s:.1f} incremental_s={inc_s:.1f} ratio={inc_s / full_s:.2f} "
        f"identical={'yes' if identical else 'no'}"
    )
    return 0 if identical else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))
    sys.exit(main())
