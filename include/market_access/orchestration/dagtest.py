"""`airflow dags test` of several DAGs, one after the other, in one process (what `make run` runs).

    python -m market_access.orchestration.dagtest sync_gov_service sync_credit … publish_marts

Each DAG runs exactly as `airflow dags test <dag_id>` runs it — the same command-line function,
its whole DAG run with every task through Airflow's task runner and the metadata database — but
Python, Airflow, its providers, dbt and Great Expectations are imported once for all of them
instead of once per DAG. On this machine a quiet sync DAG took 26–29 s as its own
`airflow dags test` and takes 3–5 s here (the first, gov_service, 15 s: it pays the imports).
Before each DAG, Airflow's parsing context names it, so the other DAG files (the Cosmos ones above
all) skip rendering. The in-process execution API every task calls does not rebuild its
dependencies on every request (orchestration/inprocess_api.py), and the task runner builds its
pydantic adapters once (orchestration/type_adapters.py).

With `--env-from-stdin` (what `make run` starts once Airflow's metadata database is migrated) it
first does what every run of the DAGs needs and nothing it must wait for — Airflow's imports and
command parser, the in-process execution API's app, dbt's import — and then reads one JSON line
from stdin, `{"env": {…}, "dags": [...]}`: the environment of the stack the caller brought up
meanwhile (warehouse, simulators' connections) and the DAGs to run. An empty line runs nothing.

The output is Airflow's, with one marker line before and after each DAG:

    ##market_access dag start <dag_id>
    ##market_access dag end <dag_id> rc=<exit code> seconds=<wall time>

so that the caller (platform.run_dags) can split it into one log per DAG. A DAG that fails does not
stop the others (its `rc` is 1); the caller restarts the rest in a new process if this one dies.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

from market_access.orchestration.inprocess_api import memoize as memoize_dependants
from market_access.orchestration.type_adapters import reuse as reuse_type_adapters
from market_access.platform import DAGTEST_MARK as MARK

PARSING_CONTEXT = "_AIRFLOW_PARSING_CONTEXT_DAG_ID"
ENV_FROM_STDIN = "--env-from-stdin"


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr, flush=True)  # e.g. "DagRun failed", as the CLI prints it
    return 1


def run(dag_ids: list[str]) -> int:
    from airflow.cli import cli_parser
    from airflow.configuration import write_default_airflow_configuration_if_needed

    write_default_airflow_configuration_if_needed()
    memoize_dependants()
    reuse_type_adapters()
    parser = cli_parser.get_parser()
    worst = 0
    for dag_id in dag_ids:
        os.environ[PARSING_CONTEXT] = dag_id
        print(f"{MARK}start {dag_id}", flush=True)
        started = time.monotonic()
        try:
            args = parser.parse_args(["dags", "test", dag_id])
            args.func(args)
            rc = 0
        except SystemExit as exc:
            rc = _exit_code(exc)
        except Exception:  # a DAG that fails to load or crashes the runner: its own failure, not the others'
            traceback.print_exc()
            rc = 1
        sys.stderr.flush()
        print(f"{MARK}end {dag_id} rc={rc} seconds={time.monotonic() - started:.2f}", flush=True)
        worst = worst or rc
    os.environ.pop(PARSING_CONTEXT, None)
    return worst


def warm_up() -> float:
    """What every run of the DAGs needs before its first task, none of it touching the metadata
    database or a connection: Airflow's command parser, the in-process execution API (its app, about
    2.5 s, and the routers of its nine API versions, which Cadwyn builds on the first request, about
    6 s: one request to its health route), the runner's two per-task savings and dbt's import (what
    the build's producer imports first). Returns the seconds it took."""
    started = time.monotonic()
    import httpx
    from airflow.cli import cli_parser
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    cli_parser.get_parser()
    memoize_dependants()
    reuse_type_adapters()
    api = in_process_api_server()  # the one instance every task's client uses (cached)
    with httpx.Client(transport=api.transport, base_url="http://in-process.invalid") as client:
        client.get("/health").raise_for_status()
    import dbt.cli.main  # noqa: F401

    return time.monotonic() - started


def run_when_told() -> int:
    """Warm up, then run what the caller sends on stdin once its stack is up (module docstring)."""
    print(f"warmed up in {warm_up():.1f}s; waiting for the stack's environment", flush=True)
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the caller's stack did not come up: nothing to run
    request = json.loads(line)
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})
    return run([str(d) for d in request["dags"]])


def main(argv: list[str] | None = None) -> int:
    dag_ids = list(sys.argv[1:] if argv is None else argv)
    if dag_ids == [ENV_FROM_STDIN]:
        return run_when_told()
    if not dag_ids:
        print("usage: python -m market_access.orchestration.dagtest <dag_id> …", file=sys.stderr)
        return 2
    return run(dag_ids)


if __name__ == "__main__":
    sys.exit(main())
