"""How far one machine goes: the platform's phases at growing simulated scales, and how they grow.

    .venv/bin/python bench/scale.py                    # 0.25,0.5,1,2,4
    .venv/bin/python bench/scale.py --scales 0.25,0.5,1

For each SIM_SCALE it starts the bundled simulators in their own process (as `make run` does, so
the simulated world's memory is not the platform's), a fresh embedded PostgreSQL with a scratch
warehouse, and runs the daily cycle twice through the library, not Airflow:

  land        every resource synced over HTTP by the real connector (ContractClient →
              sync_resource), then the departments' files of day 0 through the inbox
  build       the first `dbt build` (build_warehouse's selection, then — after the quality run —
              publish_marts' selection; the time is the sum of both)
  quality     the quality service's run over all departments as of the simulated day
  day_land    one simulated day later (simulators restarted with --advance 1): the day's
              changes synced and the day's files through the inbox
  day_build   the incremental `dbt build` of the same two selections
  day_quality the quality run as of the new day

and prints for each scale: rows in raw, each phase's time and peak memory, the warehouse's size on
disk. Then the growth exponent of each phase's time (least-squares slope of log time on log scale;
1.0 = linear; raw rows grow with the scale, their own exponent is printed too), and as its last line `scale exponents <phase>=<n> …`.

Peak memory is the peak, sampled every 0.2 s, of the summed **PSS** (proportional set size,
/proc/<pid>/smaps_rollup) of the process tree that does the work: this process and its children
(dbt, the quality run's worker processes) and the PostgreSQL postmaster with all its backends —
not the simulators' process. PSS divides each shared page (PostgreSQL's shared buffers) among the
processes that map it, so the sum counts it once, where summed RSS would count it per backend.
Warehouse size: `pg_database_size` of the scratch database after the day's run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "include"))

from market_access import deid, directory, warehouse  # noqa: E402
from market_access.dbt import ensure_sources, grant_transformer, run_dbt  # noqa: E402
from market_access.load.sync import sync_resource  # noqa: E402
from market_access.sources import catalog  # noqa: E402
from market_access.sources.client import ContractClient  # noqa: E402
from market_access.sources.connection import SourceConnection  # noqa: E402

UNTIL = datetime(2030, 1, 1, tzinfo=UTC)
DAY0 = date(2026, 7, 1)  # the simulators' BASE_CLOCK: day n's data ends on DAY0 + n
PHASES = ("land", "build", "quality", "day_land", "day_build", "day_quality")
# the DAGs' dbt selections (market_access.orchestration.warehouse; copied, that module is Airflow's side)
QUALITY_RESULTS = "path:models/staging/quality"
QUALITY_ENFORCEMENT = "path:models/intermediate/quality"
ON_FACTS = "path:models/intermediate/supervision"
ON_QUALITY_RUN = "path:models/intermediate/indicators"
BUILD = [
    "build",
    "--indirect-selection",
    "cautious",
    "--select",
    "path:seeds",
    "path:models/staging",
    "path:models/intermediate",
    "--exclude",
    QUALITY_RESULTS,
    QUALITY_ENFORCEMENT,
    ON_FACTS,
    ON_QUALITY_RUN,
]
PUBLISH = [
    "build",
    "--indirect-selection",
    "cautious",
    "--select",
    QUALITY_RESULTS,
    QUALITY_ENFORCEMENT,
    ON_FACTS,
    ON_QUALITY_RUN,
    "path:models/marts",
]


# --- memory ------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid …; comm may contain spaces and parentheses
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory:
    """Peak summed PSS of the trees under `roots`, leaving out the trees under `skip`."""

    def __init__(self, roots, skip=(), interval: float = 0.2) -> None:
        self.roots, self.skip, self.interval = list(roots), set(skip), interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> int:
        kids = _children()
        seen, todo, total = set(), list(self.roots), 0
        while todo:
            pid = todo.pop()
            if pid in seen or pid in self.skip:
                continue
            seen.add(pid)
            total += _pss_kib(pid)
            todo.extend(kids.get(pid, ()))
        return total * 1024

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.sample())

    def __enter__(self) -> TreeMemory:
        self.peak = self.sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample())


# --- the world ---------------------------------------------------------------------------------


class Simulators:
    """The four systems in one `python -m market_access.simulators serve` process."""

    def __init__(self, state_dir: Path, scale: float, seed: int) -> None:
        self.state_dir, self.scale, self.seed = state_dir, scale, seed
        self.proc: subprocess.Popen | None = None

    def start(self, advance: int = 0) -> dict[str, SourceConnection]:
        endpoints = self.state_dir / "endpoints.json"
        endpoints.unlink(missing_ok=True)
        cmd = [
            sys.executable, "-m", "market_access.simulators", "serve", "--host", "127.0.0.1",
            "--port-base", "0", "--seed", str(self.seed), "--scale", str(self.scale),
            "--faults", "off", "--state-dir", str(self.state_dir),
        ]  # fmt: skip
        if advance:
            cmd += ["--advance", str(advance)]
        log = open(self.state_dir / "simulators.log", "a", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 3600
        while not endpoints.exists():
            if self.proc.poll() is not None:
                raise SystemExit(f"the simulators exited ({self.proc.returncode}); see {log.name}")
            if time.monotonic() > deadline:
                raise SystemExit("the simulators did not come up within an hour")
            time.sleep(0.5)
        time.sleep(0.2)
        info = json.loads(endpoints.read_text(encoding="utf-8"))
        return {
            system: SourceConnection.from_uri(
                system, ep["url"].replace("://", f"://{ep['client_id']}:{ep['client_secret']}@", 1)
            )
            for system, ep in info.items()
        }

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def land(conn, sources: dict[str, SourceConnection], inbox: Path, depts, seed: int, day: int) -> None:
    from market_access.simulators.submissions import generate as generate_submissions
    from market_access.submissions.inbox import process_inbox

    for res in catalog.all_resources():
        sync_resource(conn, ContractClient(sources[res.system]), res, until=UNTIL, page_size=500)
    generate_submissions(inbox, seed=seed, day=day, directory=depts)
    process_inbox(conn, inbox, depts, settle_seconds=0)


def raw_rows(conn) -> int:
    tables = [
        r[0]
        for r in conn.execute(
            "select format('%I.%I', table_schema, table_name) from information_schema.tables"
            " where table_schema = 'raw' and table_type = 'BASE TABLE'"
        )
    ]
    return sum(conn.execute(f"select count(*) from {t}").fetchone()[0] for t in tables)


# --- one scale ---------------------------------------------------------------------------------


def run_scale(scale: float, seed: int, tmp: Path) -> dict:
    from market_access.quality import run_quality
    from market_access.settings import Settings

    work = tmp / f"scale-{scale:g}"
    work.mkdir(parents=True)
    os.environ["MARKET_ACCESS_LOCAL_DIR"] = str(work / "local")
    for var in ("QUALITY_DATA_DOCS_DIR", "QUALITY_RULES", "QUALITY_AS_OF"):
        os.environ.pop(var, None)
    (work / "sim").mkdir()
    sims = Simulators(work / "sim", scale, seed)
    pgdata = work / "pgdata"
    out: dict = {"scale": scale, "time": {}, "peak": {}}
    t = time.monotonic()
    sources = sims.start()
    out["generate_s"] = time.monotonic() - t
    cfg = warehouse.start_embedded(pgdata)
    try:
        with warehouse.connect(cfg, autocommit=True) as conn:
            conn.execute('create database "scale_bench"')
        cfg = dataclasses.replace(cfg, dbname="scale_bench")
        memory = TreeMemory([os.getpid(), postmaster_pid(pgdata)], skip=[sims.proc.pid])
        target = work / "dbt-target"

        def phase(name, fn):
            t0 = time.monotonic()
            with memory:
                fn()
            took = time.monotonic() - t0
            # build and day_build come in two parts (before and after the quality run): summed, max of peaks
            out["time"][name] = out["time"].get(name, 0.0) + took
            out["peak"][name] = max(out["peak"].get(name, 0), memory.peak)
            print(f"  scale {scale:g} {name}: {took:.1f} s, peak {memory.peak / 2**20:.0f} MiB", flush=True)

        def quality(day: int):
            summary = run_quality(cfg, settings=Settings(), as_of=DAY0 + timedelta(days=day))
            out.setdefault("quality_status", []).append(summary.status)

        with warehouse.connect(cfg, autocommit=True) as conn:
            ensure_sources(conn)
            grant_transformer(conn)
            deid.install_key(conn, b"bench-key-" + bytes(range(32)), "bench-1")
            depts = directory.load(REPO / "config" / "departments.csv")
            directory.load_into_warehouse(conn, depts)
            phase("land", lambda: land(conn, sources, work / "inbox", depts, seed, 0))
            out["raw_rows"] = raw_rows(conn)
            print(f"  scale {scale:g}: {out['raw_rows']} rows in raw", flush=True)
            # build = build_warehouse's dbt build + publish_marts' (after the quality run), as the DAGs run them
            phase("build", lambda: run_dbt(BUILD, cfg, target_path=target))
            phase("quality", lambda: quality(0))
            phase("build", lambda: run_dbt(PUBLISH, cfg, target_path=target))
            sims.stop()
            sources = sims.start(advance=1)
            phase("day_land", lambda: land(conn, sources, work / "inbox", depts, seed, 1))
            out["day_raw_rows"] = raw_rows(conn) - out["raw_rows"]
            phase("day_build", lambda: run_dbt(BUILD, cfg, target_path=target))
            phase("day_quality", lambda: quality(1))
            phase("day_build", lambda: run_dbt(PUBLISH, cfg, target_path=target))
            out["db_bytes"] = conn.execute("select pg_database_size(current_database())").fetchone()[0]
            # where the bytes are: per schema, and the largest relations (tables with their indexes)
            out["schema_bytes"] = dict(
                conn.execute(
                    """select n.nspname, sum(pg_total_relation_size(c.oid))::bigint from pg_class c
                       join pg_namespace n on n.oid = c.relnamespace
                       where c.relkind in ('r', 'm') and n.nspname not in ('pg_catalog', 'information_schema')
                       group by 1 order by 2 desc"""
                ).fetchall()
            )
            out["largest"] = [
                [name, size, rows]
                for name, size, rows in conn.execute(
                    """select format('%I.%I', n.nspname, c.relname), pg_total_relation_size(c.oid),
                              c.reltuples::bigint from pg_class c
                       join pg_namespace n on n.oid = c.relnamespace
                       where c.relkind in ('r', 'm') and n.nspname not in ('pg_catalog', 'information_schema')
                       order by 2 desc limit 12"""
                )
            ]
    finally:
        sims.stop()
        warehouse.stop_embedded(pgdata)
        shutil.rmtree(work, ignore_errors=True)
    return out


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y on log x."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", default="0.25,0.5,1,2,4", help="comma list of SIM_SCALE values")
    ap.add_argument("--seed", type=int, default=20260701)
    ap.add_argument(
        "--from-log",
        type=Path,
        help="print the summary of the `scale-result` lines of an earlier run's output instead of running",
    )
    args = ap.parse_args()
    if args.from_log:
        lines = args.from_log.read_text(encoding="utf-8").splitlines()
        summarise([json.loads(line.split(" ", 1)[1]) for line in lines if line.startswith("scale-result ")])
        return
    scales = [float(s) for s in args.scales.split(",")]
    # a `kill` stops the simulators and the embedded server too (the finally blocks), leaving nothing behind
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    results = []
    try:
        for scale in scales:
            print(f"scale {scale:g}: generating the world …", flush=True)
            results.append(run_scale(scale, args.seed, tmp))
            # the figures of each scale as soon as they exist (a later scale may run out of time)
            print("scale-result " + json.dumps(results[-1]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summarise(results)


def summarise(results: list[dict]) -> None:
    print()
    header = f"{'scale':>6} {'raw rows':>10} {'day rows':>9} {'size MiB':>9} " + " ".join(
        f"{p + ' s':>13} {'MiB':>6}" for p in PHASES
    )
    print(header)
    for r in results:
        cells = " ".join(f"{r['time'][p]:>13.1f} {r['peak'][p] / 2**20:>6.0f}" for p in PHASES)
        print(
            f"{r['scale']:>6g} {r['raw_rows']:>10} {r['day_raw_rows']:>9} {r['db_bytes'] / 2**20:>9.0f} {cells}"
        )
    last = results[-1]
    print(
        f"where the bytes are at scale {last['scale']:g} (MiB): "
        + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in last["schema_bytes"].items())
    )
    for name, size, rows in last["largest"]:
        print(f"  {name:<60} {size / 2**20:>8.1f} MiB {rows:>10} rows")
    print(
        "quality run statuses: "
        + ", ".join(f"{r['scale']:g}: {'/'.join(r['quality_status'])}" for r in results)
    )
    if len(results) < 2:
        print("scale exponents need two scales or more")
        return
    xs = [r["scale"] for r in results]
    print(
        f"growth with the scale (log-log slope): raw rows {slope(xs, [r['raw_rows'] for r in results]):.2f}, "
        f"day's rows {slope(xs, [max(r['day_raw_rows'], 1) for r in results]):.2f}, "
        f"warehouse size {slope(xs, [r['db_bytes'] for r in results]):.2f}"
    )
    print(
        "peak memory exponents "
        + " ".join(f"{p}={slope(xs, [r['peak'][p] for r in results]):.2f}" for p in PHASES)
    )
    print(
        "scale exponents " + " ".join(f"{p}={slope(xs, [r['time'][p] for r in results]):.2f}" for p in PHASES)
    )


if __name__ == "__main__":
    main()
