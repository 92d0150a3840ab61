"""Build-time cost of the de-identification: `dbt build --full-refresh` of two dbt projects on one raw layer.

    .venv/bin/python bench/deid_build.py --scale 0.25 --baseline /path/to/old/dbt_project [--baseline …]
        [--without-dictionary] [--repeat 2]

Lands a simulator world (every source over HTTP through the real connector, the departments'
files through the inbox) into a scratch warehouse on an embedded PostgreSQL, then times the full
build of each baseline project and of this one, alternating (best of --repeat each, so a
neighbour's burst of CPU does not decide the figure), and prints the ratio against each baseline
(a second baseline can be the old project with only this one's general speed-ups applied, so the
ratio against it is the cost of what was added, not hidden by what was sped up; --without-dictionary
adds this project with the name dictionary emptied, so that ratio is the dictionary's own cost). Afterwards it reports
how often the scrubber wrote [姓名] into the simulator's evaluation comments, against how many
comments the simulator wrote a name into (its only name-bearing comment is 感谢工作人员<name>…).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "include"))

from market_access import deid, directory, warehouse  # noqa: E402
from market_access.dbt import PROJECT_DIR, dbt_env, dbt_executable, ensure_sources, grant_transformer  # noqa: E402
from market_access.load.sync import sync_resource  # noqa: E402
from market_access.simulators.server import SimulatorServer  # noqa: E402
from market_access.simulators.submissions import generate as generate_submissions  # noqa: E402
from market_access.simulators.world import World  # noqa: E402
from market_access.sources import catalog  # noqa: E402
from market_access.sources.client import ContractClient  # noqa: E402
from market_access.sources.connection import SourceConnection  # noqa: E402
from market_access.submissions.inbox import process_inbox  # noqa: E402

SECRET = "bench-secret"
UNTIL = datetime(2030, 1, 1, tzinfo=UTC)


def land(conn, world: World, inbox: Path, depts) -> None:
    servers = {}
    try:
        for name in catalog.systems():
            srv = SimulatorServer(world, name, port=0, client_id=f"{name}-c", client_secret=SECRET)
            srv.start()
            servers[name] = srv
        for res in catalog.all_resources():
            url = servers[res.system].url.replace("://", f"://{res.system}-c:{SECRET}@", 1)
            client = ContractClient(SourceConnection.from_uri(res.system, url))
            sync_resource(conn, client, res, until=UNTIL, page_size=500)
    finally:
        for s in servers.values():
            s.stop()
    generate_submissions(inbox, seed=world.seed, directory=depts)
    process_inbox(conn, inbox, depts, settle_seconds=0)


def build(project: Path, cfg, target: Path) -> float:
    env = {
        **os.environ,
        **dbt_env(cfg),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target),
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "DBT_PROJECT_DIR": str(project),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    started = time.monotonic()
    proc = subprocess.run(
        [str(dbt_executable()), "build", "--full-refresh"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"dbt build of {project} failed:\n" + "\n".join(proc.stdout.splitlines()[-40:]))
    return took


def model_times(target: Path) -> dict[str, float]:
    """Each node's execution time in the last build, from dbt's run_results.json."""
    import json

    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    return {r["unique_id"].split(".", 2)[-1]: float(r["execution_time"]) for r in results}


def slowest_models(baseline: Path, this: Path, top: int = 12) -> None:
    """Where the difference is: the nodes whose time grew most between the two last builds."""
    before, after = model_times(baseline), model_times(this)
    grew = sorted(after, key=lambda n: after[n] - before.get(n, 0.0), reverse=True)[:top]
    print("nodes whose time grew most (last build of each; seconds before → after):")
    for n in grew:
        print(f"  {n:<60} {before.get(n, 0.0):7.1f} → {after[n]:7.1f}")


def without_dictionary(into: Path) -> Path:
    """A copy of this dbt project whose name dictionary is empty and never probed: deid_person_names
    selects no row, dictionary_hits finds no name without computing a text's windows. Everything
    else (the registry, the patterns, the code lists) is as in this project, so a build of it
    against this one's is the dictionary's own cost."""
    import shutil

    copy = into / "dbt_project-without-dictionary"
    shutil.copytree(
        PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "target-*", "logs", "dbt_packages")
    )
    model = copy / "models" / "staging" / "deid" / "deid_person_names.sql"
    text = model.read_text(encoding="utf-8")
    if not text.rstrip().endswith("select * from dictionary"):
        raise SystemExit(f"{model} no longer ends with `select * from dictionary`: update the bench")
    model.write_text(text.rstrip() + "\nwhere false\n", encoding="utf-8")
    macros = copy / "macros" / "deid_names.sql"
    text = macros.read_text(encoding="utf-8")
    start = text.find("{% macro dictionary_hits(texts) -%}")
    end = text.find("{%- endmacro %}", start)
    if start < 0 or end < 0:
        raise SystemExit(f"{macros} has no dictionary_hits macro: update the bench")
    body = "{% macro dictionary_hits(texts) -%}\n    select null::text as text, null::text[] as names where false\n"
    macros.write_text(text[:start] + body + text[end:], encoding="utf-8")
    return copy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=20260701)
    ap.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="a dbt_project folder to compare against (repeatable; the first one's nodes are compared)",
    )
    ap.add_argument(
        "--without-dictionary",
        action="store_true",
        help="also compare against this project with the name dictionary emptied (its own cost)",
    )
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="deid-bench-"))
    if args.without_dictionary:
        args.baseline.append(without_dictionary(tmp))
    if not args.baseline:
        ap.error("give a --baseline, --without-dictionary or both")
    cfg = warehouse.start_embedded(tmp / "pgdata")
    try:
        with warehouse.connect(cfg, autocommit=True) as conn:
            conn.execute('create database "deid_bench"')
        cfg = dataclasses.replace(cfg, dbname="deid_bench")
        with warehouse.connect(cfg, autocommit=True) as conn:
            ensure_sources(conn)
            grant_transformer(conn)
            deid.install_key(conn, b"bench-key-" + bytes(range(32)), "bench-1")
            depts = directory.load(REPO / "config" / "departments.csv")
            directory.load_into_warehouse(conn, depts)
            t0 = time.monotonic()
            world = World(seed=args.seed, scale=args.scale)
            land(conn, world, tmp / "inbox", depts)
            cases = conn.execute("select count(*) from raw.gov_service__cases").fetchone()[0]
            print(
                f"landed scale {args.scale}: {cases} case versions in {time.monotonic() - t0:.0f} s",
                flush=True,
            )
        projects = {f"baseline {i + 1}": p for i, p in enumerate(args.baseline)} | {"this": PROJECT_DIR}
        targets = {label: tmp / f"target-{i}" for i, label in enumerate(projects)}
        for label, project in projects.items():
            print(f"{label}: {project}", flush=True)
        times: dict[str, list[float]] = {label: [] for label in projects}
        for i in range(args.repeat):
            for label, project in projects.items():
                took = build(project, cfg, targets[label])
                times[label].append(took)
                print(f"run {i + 1} {label}: {took:.1f} s", flush=True)
        slowest_models(targets["baseline 1"], targets["this"])
        best = {k: min(v) for k, v in times.items()}
        for label in projects:
            if label != "this":
                print(
                    f"best {label} {best[label]:.1f} s, this {best['this']:.1f} s, "
                    f"ratio {best['this'] / best[label]:.3f}"
                )
        with warehouse.connect(cfg, autocommit=True) as conn:
            names, marked, other = conn.execute(
                """select (select count(*) from deid.person_names),
                          count(*) filter (where e.comment_scrubbed like '%%[姓名]%%'),
                          count(*) filter (where e.comment_scrubbed like '%%[姓名]%%'
                                           and r.payload ->> 'comment' not like '%%感谢工作人员%%')
                   from staging.stg_gov_service__evaluations e
                   join raw.gov_service__evaluations r on r.record_id = e.evaluation_id
                                                      and r.source_updated_at = e.source_updated_at"""
            ).fetchone()
            told = conn.execute(
                """select count(distinct record_id) from raw.gov_service__evaluations
                   where payload ->> 'comment' like '%%感谢工作人员%%'"""
            ).fetchone()[0]
            print(
                f"dictionary: {names} names; comments with [姓名]: {marked} (simulator wrote a name into {told}); "
                f"[姓名] where the simulator wrote none: {other}"
            )
            for (text,) in conn.execute(
                """select e.comment_scrubbed from staging.stg_gov_service__evaluations e
                   join raw.gov_service__evaluations r on r.record_id = e.evaluation_id
                   where e.comment_scrubbed like '%%[姓名]%%' and r.payload ->> 'comment' not like '%%感谢工作人员%%'
                   limit 10"""
            ):
                print("  e.g.", text)
    finally:
        warehouse.stop_embedded(tmp / "pgdata")


if __name__ == "__main__":
    main()
