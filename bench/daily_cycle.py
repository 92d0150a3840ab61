"""The daily cycle: a first `make run` on a fresh warehouse, then a second one a simulated day later.

    .venv/bin/python bench/daily_cycle.py [--scale 1] [--seed 7] [--keep DIR]

Each run is `python -m market_access run` (what `make run` does) with its own MARKET_ACCESS_LOCAL_DIR
(a fresh embedded PostgreSQL, simulators, Airflow metadata); the second run's simulators advance
their clock one day (SIM_ADVANCE_DAYS), so it pulls and builds exactly that day's changes. Prints,
per run, each phase's time as `make run` measured it (syncs = the four sync_* DAGs, inbox, build,
quality, publish, and the rest: starting the warehouse and simulators, the Airflow metadata
database, the summary); the last line reads

    daily_cycle first_run_s=<n> day_run_s=<n> ratio=<n>

with ratio = day_run_s ÷ first_run_s (wall-clock of each whole `make run`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "include"))

from market_access import warehouse  # noqa: E402
from market_access.platform import PHASES, TIMINGS_FILE  # noqa: E402


def platform_env(local_dir: Path, scale: float, seed: int) -> dict[str, str]:
    # the embedded defaults only: nothing of the caller's Airflow, sync or simulator settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SYNC_", "SIM_"))}
    env.update(MARKET_ACCESS_LOCAL_DIR=str(local_dir), SIM_SEED=str(seed), SIM_SCALE=str(scale))
    return env


def make_run(env: dict[str, str], local_dir: Path, label: str) -> tuple[float, dict[str, float]]:
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "market_access", "run"], env=env, capture_output=True, text=True)
    took = time.monotonic() - t0
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-6000:] + out.stderr[-3000:])
        raise SystemExit(f"{label}: make run failed (exit {out.returncode})")
    timings = json.loads((local_dir / TIMINGS_FILE).read_text(encoding="utf-8"))
    return took, timings


def phases(total: float, timings: dict[str, float]) -> dict[str, float]:
    out = {phase: sum(t for dag, t in timings.items() if pick(dag)) for phase, pick in PHASES.items()}
    out["other"] = total - sum(out.values())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=float(os.environ.get("SIM_SCALE", "1")))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", type=Path, help="use (and keep) this folder instead of a temporary one")
    args = ap.parse_args()

    local_dir = args.keep or Path(tempfile.mkdtemp(prefix="daily-cycle-"))
    if any(local_dir.iterdir()) if local_dir.exists() else False:
        raise SystemExit(f"{local_dir} is not empty: the benchmark needs a fresh warehouse")
    local_dir.mkdir(parents=True, exist_ok=True)
    env = platform_env(local_dir, args.scale, args.seed)
    print(f"daily cycle at SIM_SCALE={args.scale}, seed {args.seed}, in {local_dir}", flush=True)
    results = {}
    try:
        for label in ("first", "day"):
            total, timings = make_run(env, local_dir, label)
            results[label] = total
            split = phases(total, timings)
            print(f"{label} run: {total:.1f}s", flush=True)
            for phase, t in split.items():
                print(f"  {phase:<8}{t:>8.1f}s", flush=True)
            for dag, t in timings.items():
                print(f"    {dag:<26}{t:>8.1f}s", flush=True)
    finally:
        warehouse.stop_embedded(local_dir / "pgdata")
        if not args.keep:
            shutil.rmtree(local_dir, ignore_errors=True)
    ratio = results["day"] / results["first"]
    print(f"daily_cycle first_run_s={results['first']:.1f} day_run_s={results['day']:.1f} ratio={ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
