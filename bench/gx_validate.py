"""The quality run's Great Expectations validation with and without gxrun's two shortcuts.

    .venv/bin/python bench/gx_validate.py --local-dir DIR [--as-of 2026-07-02] [--repeat 2]

DIR is a `make run` local directory with a built warehouse (MARKET_ACCESS_LOCAL_DIR of a run, for
instance the one `bench/daily_cycle.py --keep DIR` leaves). In one process, on that warehouse's
data, it runs the full quality run (`--full`: every department validated, nothing carried)
`--repeat` rounds of three variants:

  without     GX as it comes: freshness checks re-read the stores, every configuration read rebuilds
  fresh       gxrun.stored_just_now only
  both        stored_just_now and configurations_built_once (what the quality run does)

and prints, per variant, the best time of the run's `validate` step (the worker processes'
validation and Data Docs pages, as the run's timings measure it), then checks that every variant
stored the same results and failing records (the stored rows of each run, compared). Its last
line:

    gx_validate departments=<n> rules=<n> without_s=<validate> fresh_s=<validate> both_s=<validate> ratio=<both/without>

Each run is stored in the warehouse's ops.quality_* tables like any run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "include"))


def stored_rows(conn, run_id: str) -> tuple[set, set]:
    results = {
        tuple(r)
        for r in conn.execute(
            "select rule_id, dept_code, success, evaluated_count, failed_count, observed::text"
            " from ops.quality_results where run_id = %s",
            (run_id,),
        )
    }
    failures = {
        tuple(r)
        for r in conn.execute(
            "select rule_id, dept_code, record_id from ops.quality_row_failures where run_id = %s", (run_id,)
        )
    }
    return results, failures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--local-dir", type=Path, required=True)
    ap.add_argument("--as-of", type=date.fromisoformat, default=None)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    os.environ["MARKET_ACCESS_LOCAL_DIR"] = str(args.local_dir.resolve())

    from market_access import warehouse
    from market_access.quality import gxrun, run_quality
    from market_access.settings import settings

    s = settings()
    started_here = warehouse.configured() is None and not (s.pgdata / "postmaster.pid").exists()
    cfg = warehouse.configured() or warehouse.start_embedded(s.pgdata)
    real = {"fresh": gxrun.stored_just_now, "once": gxrun.configurations_built_once}
    variants = {
        "without": {
            "stored_just_now": contextlib.nullcontext,
            "configurations_built_once": contextlib.nullcontext,
        },
        "fresh": {"stored_just_now": real["fresh"], "configurations_built_once": contextlib.nullcontext},
        "both": {"stored_just_now": real["fresh"], "configurations_built_once": real["once"]},
    }
    validate_s: dict[str, list[float]] = {v: [] for v in variants}
    runs: dict[str, str] = {}
    summary = None
    try:
        for r in range(args.repeat):
            for name, patch in variants.items():
                for attr, value in patch.items():
                    setattr(gxrun, attr, value)
                try:
                    summary = run_quality(cfg, settings=s, as_of=args.as_of, full=True)
                finally:
                    gxrun.stored_just_now, gxrun.configurations_built_once = real["fresh"], real["once"]
                validate_s[name].append(summary.timings["validate"])
                runs[name] = summary.run_id
                print(
                    f"round {r + 1} {name:<8} validate {summary.timings['validate']:6.2f} s ({summary.status})",
                    flush=True,
                )
        with warehouse.connect(cfg) as conn:
            stored = {name: stored_rows(conn, run_id) for name, run_id in runs.items()}
    finally:
        if started_here:
            warehouse.stop_embedded(s.pgdata)
    same = all(v == stored["without"] for v in stored.values())
    results, failures = stored["without"]
    print(
        f"the three variants stored {'the same' if same else 'DIFFERENT'} results "
        f"({len(results)} results, {len(failures)} failing records each)"
    )
    best = {k: min(v) for k, v in validate_s.items()}
    for name in variants:
        print(f"  {name:<8} validate best {best[name]:6.2f} s  ratio {best[name] / best['without']:.3f}")
    if not same:
        raise SystemExit("the variants' results differ")
    print(
        f"gx_validate departments={len(summary.departments)} rules={len(results)} "
        f"without_s={best['without']:.2f} fresh_s={best['fresh']:.2f} both_s={best['both']:.2f} "
        f"ratio={best['both'] / best['without']:.3f}"
    )


if __name__ == "__main__":
    main()
