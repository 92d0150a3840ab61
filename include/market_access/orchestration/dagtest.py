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

The output is Airflow's, with one marker line before and after each DAG:

    ##market_access dag start <dag_id>
    ##market_access dag end <dag_id> rc=<exit code> seconds=<wall time>

so that the caller (platform.run_dags) can split it into one log per DAG. A DAG that fails does not
stop the others (its `rc` is 1); the caller restarts the rest in a new process if this one dies.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

from market_access.orchestration.inprocess_api import memoize as memoize_dependants
from market_access.orchestration.type_adapters import reuse as reuse_type_adapters
from market_access.platform import DAGTEST_MARK as MARK

PARSING_CONTEXT = "_AIRFLOW_PARSING_CONTEXT_DAG_ID"


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


def main(argv: list[str] | None = None) -> int:
    dag_ids = list(sys.argv[1:] if argv is None else argv)
    if not dag_ids:
        print("usage: python -m market_access.orchestration.dagtest <dag_id> …", file=sys.stderr)
        return 2
    return run(dag_ids)


if __name__ == "__main__":
    sys.exit(main())
