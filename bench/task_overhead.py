"""What an Airflow task costs under `airflow dags test`, with and without `make run`'s two changes.

    .venv/bin/python bench/task_overhead.py [--tasks 100] [--repeat 3]

A scratch Airflow home (SQLite, migrated once) holds one DAG shaped like a Cosmos watcher group: a
producer that pushes one XCom per model, and `--tasks` tasks that each read their model's XCom, as
the watcher sensors do. In one process it runs `airflow dags test` of that DAG once to warm up
(the first run pays the imports and the execution API's app), then `--repeat` rounds of three runs:
without either change, with orchestration/inprocess_api.py's dependency memo, and with the memo
and orchestration/type_adapters.py's shared adapters (what dagtest.py installs). It prints the
best of each, and last:

    task_overhead tasks=<n> baseline_s=<s> memo_s=<s> both_s=<s> per_task_ms=<baseline>/<both> ratio=<both/baseline>
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "include"))

DAG_ID = "task_overhead"

DAG_FILE = """
from datetime import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

N = {tasks}


def produce(ti):
    for i in range(N):
        ti.xcom_push(key=f"model_{{i}}_status", value={{"status": "success", "model": i}})


def watch(ti, i):
    got = ti.xcom_pull(task_ids="producer", key=f"model_{{i}}_status")
    if got != {{"status": "success", "model": i}}:
        raise ValueError(f"model {{i}}: {{got!r}}")


with DAG("{dag_id}", start_date=datetime(2026, 1, 1), schedule=None, catchup=False) as dag:
    producer = PythonOperator(task_id="producer", python_callable=produce)
    for i in range(N):
        producer >> PythonOperator(task_id=f"model_{{i}}", python_callable=watch, op_kwargs={{"i": i}})
"""


def dags_test(parser, log: Path) -> float:
    """One `airflow dags test`; Airflow's output goes to `log` (file descriptors 1 and 2)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        started = time.monotonic()
        try:
            args = parser.parse_args(["dags", "test", DAG_ID])
            args.func(args)
        except SystemExit as exc:
            if exc.code:
                raise RuntimeError(f"dags test {DAG_ID} failed: {exc.code}; see {log}") from exc
        finally:
            took = time.monotonic() - started
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="task-overhead-"))
    try:
        (home / "dags").mkdir()
        (home / "dags" / f"{DAG_ID}.py").write_text(
            textwrap.dedent(DAG_FILE.format(tasks=args.tasks, dag_id=DAG_ID)), encoding="utf-8"
        )
        os.environ.update(
            AIRFLOW_HOME=str(home / "airflow"),
            AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            _AIRFLOW_PARSING_CONTEXT_DAG_ID=DAG_ID,
        )
        airflow = Path(sys.executable).with_name("airflow")
        subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)

        from airflow.cli import cli_parser

        from market_access.orchestration.inprocess_api import memoize
        from market_access.orchestration.type_adapters import reuse as reuse_adapters

        parser = cli_parser.get_parser()
        log = Path(tempfile.gettempdir()) / "task_overhead.log"
        log.unlink(missing_ok=True)
        print(f"Airflow's output: {log}", flush=True)
        print(f"warm-up run: {dags_test(parser, log):.1f} s", flush=True)
        variants = {
            "without": [],
            "memo": [memoize],
            "memo+adapters": [memoize, reuse_adapters],
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for r in range(args.repeat):
            for name, installers in variants.items():
                undos = [install() for install in installers]
                if None in undos:
                    raise SystemExit(f"{name}: does not install on this Airflow/FastAPI/Cadwyn")
                try:
                    times[name].append(dags_test(parser, log))
                finally:
                    for undo in reversed(undos):
                        undo()
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
        n = args.tasks + 1
        best = {k: min(v) for k, v in times.items()}
        b = best["without"]
        for name, t in best.items():
            print(f"  {name:<14} best {t:6.2f} s  {1000 * t / n:5.0f} ms per task  ratio {t / b:.3f}")
        m = best["memo+adapters"]
        print(
            f"task_overhead tasks={n} baseline_s={b:.2f} memo_s={best['memo']:.2f} both_s={m:.2f} "
            f"per_task_ms={1000 * b / n:.0f}/{1000 * m / n:.0f} ratio={m / b:.3f}"
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
