"""Command line of the data-quality engine: `python -m market_access.quality run [--as-of YYYY-MM-DD]`."""

from __future__ import annotations

import argparse
import logging
import sys
import unicodedata
from datetime import date

from market_access import warehouse
from market_access.quality.catalogue import CatalogueError
from market_access.settings import settings


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(width - _width(text), 0)
    return gap + text if right else text + gap


def render_summary(summary) -> str:
    """A compact zh/en table: one line per department, then the total."""
    headers = [
        "部门 department",
        "规则 rules",
        "未通过 failed",
        "阻断 blocking",
        "警告 warning",
        "失败记录 rows",
    ]
    rows = [
        [
            f"{d.dept_name} {d.dept_code}",
            str(d.rules_evaluated),
            str(d.rules_failed),
            str(d.blocking_failed),
            str(d.warning_failed),
            str(d.records_failed),
        ]
        for d in summary.departments
    ]
    total = [
        "合计 total",
        str(summary.rules_evaluated),
        str(summary.rules_failed),
        str(sum(d.blocking_failed for d in summary.departments)),
        str(sum(d.warning_failed for d in summary.departments)),
        str(sum(d.records_failed for d in summary.departments)),
    ]
    widths = [max(_width(r[i]) for r in [headers, *rows, total]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(_pad(c, widths[i], right=i > 0) for i, c in enumerate(cells))

    out = [
        f"数据质量检查 data-quality run {summary.run_id}: 数据日期 as of {summary.data_date}, "
        f"{summary.status}, {summary.duration_seconds:.1f} s",
        line(headers),
        line(["-" * w for w in widths]),
        *(line(r) for r in rows),
        line(["-" * w for w in widths]),
        line(total),
        f"检查方式 mode: {summary.mode}, 本次检查 re-validated {summary.revalidated} 条结果, "
        f"沿用 carried {summary.carried} 条"
        + (f" (自 from {summary.base_run_id})" if summary.base_run_id else "")
        + f"; {summary.mode_reason_zh}",
        f"Data Docs: {summary.data_docs_dir}/index.html (各部门 per department: {summary.data_docs_dir}/departments/)",
    ]
    if summary.unresolved:
        listed = ", ".join(f"{k} {v}" for k, v in sorted(summary.unresolved.items()))
        out.append(f"部门无法识别的记录 records without a known department (not checked): {listed}")
    return "\n".join(out)


def cmd_run(args) -> int:
    from market_access.quality import run_quality
    from market_access.quality.batches import QualityConfigError

    s = settings()
    cfg = warehouse.configured() or warehouse.start_embedded(s.pgdata)
    departments = [c.strip() for c in args.departments.split(",") if c.strip()] if args.departments else None
    try:
        summary = run_quality(
            cfg, settings=s, as_of=args.as_of, departments=departments, full=True if args.full else None
        )
    except (CatalogueError, QualityConfigError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(render_summary(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m market_access.quality", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="check every department's data against config/quality_rules.yml")
    run.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=None,
        help="data date YYYY-MM-DD (default: today, Beijing)",
    )
    run.add_argument("--departments", default=None, help="comma-separated dept_codes (default: all)")
    run.add_argument(
        "--full", action="store_true", help="validate everything, carry nothing forward (QUALITY_FULL_RUN=1)"
    )
    run.add_argument("-v", "--verbose", action="store_true", help="log progress")
    run.set_defaults(func=cmd_run)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
