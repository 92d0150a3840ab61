"""One data-quality run: catalogue → batch tables → GX checkpoints per department → ops tables and Data Docs."""

from __future__ import annotations

import dataclasses
import html
import importlib
import logging
import os
import secrets
import shutil
import threading
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg

from market_access import warehouse
from market_access.quality import batches as batches_mod
from market_access.quality import catalogue as catalogue_mod
from market_access.quality import failing_rows, incremental
from market_access.quality import results as results_mod
from market_access.quality import suites as suites_mod
from market_access.quality.catalogue import CATEGORY_ZH, FEEDS_ASSET, SEVERITY_ZH, Catalogue, Rule
from market_access.quality.gxrun import (
    CONNECTION_ENV,
    Outcome,
    Project,
    failing_rows_from_gx,
    quiet,
    validate,
)
from market_access.settings import BEIJING, Settings
from market_access.warehouse import WarehouseConfig

log = logging.getLogger(__name__)

LOCK = "market_access.quality.run"
SAMPLE_IDS = 10


@dataclass(frozen=True)
class DepartmentSummary:
    dept_code: str
    dept_name: str
    rules_evaluated: int
    rules_failed: int
    blocking_failed: int
    warning_failed: int
    records_failed: int  # failing records over its row-level rules
    page: str | None = None  # its Data Docs overview page, relative to data_docs_dir


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    data_date: date
    status: str
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    data_docs_dir: str
    departments: tuple[DepartmentSummary, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    unresolved: dict[str, int] = field(default_factory=dict)  # asset → records of no known department
    # what the run could not check, and why: {"relation", "reason" (missing|empty|no_rules), "reason_zh"}
    not_checked: tuple[dict, ...] = ()
    # incremental runs (incremental.py): full | incremental, the run results were carried from,
    # why the run was full, result rows validated by this run and carried forward
    mode: str = "full"
    base_run_id: str | None = None
    mode_reason_zh: str = ""
    revalidated: int = 0
    carried: int = 0

    @property
    def rules_evaluated(self) -> int:
        return sum(d.rules_evaluated for d in self.departments)

    @property
    def rules_failed(self) -> int:
        return sum(d.rules_failed for d in self.departments)


def beijing_today() -> date:
    return datetime.now(BEIJING).date()


def new_run_id(data_date: date) -> str:
    now = datetime.now(UTC)
    return f"q{data_date:%Y%m%d}-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"


def run_quality(
    cfg: WarehouseConfig,
    *,
    settings: Settings | None = None,
    as_of: date | None = None,
    departments: list[str] | None = None,
    full: bool | None = None,
) -> RunSummary:
    """Check every department's data against the rule catalogue, as of `as_of` (Beijing date,
    default today); store the results in ops and Data Docs. Raises when the run fails (the run row
    then says 'failed' and no result of it is stored).

    Incremental unless `full` (default: QUALITY_FULL_RUN) or in doubt: the `records` rules of a
    (department, asset) whose data is unchanged since the previous run are carried forward from it;
    every other rule is validated (incremental.py)."""
    settings = settings or Settings()
    if full is None:
        full = settings.quality_full_run
    as_of = as_of or beijing_today()
    started = datetime.now(UTC)
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    run_id = new_run_id(as_of)
    docs_dir = settings.quality_data_docs_dir
    with warehouse.connect(cfg, autocommit=True) as conn:
        results_mod.ensure_tables(conn)
        # one run at a time per warehouse: batch tables and the GX working copy are shared
        conn.execute("select pg_advisory_lock(hashtext(%s))", (LOCK,))
        for stale in results_mod.abandon_stale_runs(conn, run_id, started):
            log.warning("quality run %s never finished (interrupted): marked failed", stale)
        _cleanup(conn)  # batch tables an interrupted run left behind
        results_mod.start_run(conn, run_id, started, as_of, str(docs_dir), departments)
        try:
            catalogue = catalogue_mod.load(settings.quality_rules_file)
            summary = _run(
                conn, cfg, settings, catalogue, run_id, as_of, departments, started, t0, timings, full=full
            )
        except BaseException as exc:
            log.exception("quality run %s failed", run_id)
            _record_failure(conn, cfg, run_id, exc)
            raise
        finally:
            # the connection string (with its password) lives in this process's environment only
            # while GX needs it
            os.environ.pop(CONNECTION_ENV, None)
            if not conn.broken:  # a broken session (the server restarted) has lost its locks already
                conn.execute("select pg_advisory_unlock(hashtext(%s))", (LOCK,))
    return summary


def _record_failure(conn: psycopg.Connection, cfg: WarehouseConfig, run_id: str, exc: BaseException) -> None:
    """Status 'failed' with the error, on the run's connection or, when the server dropped it (a
    restart), on a new one as soon as the server is back. If even that fails the row stays
    'running' until the next run marks it failed (abandon_stale_runs): never 'succeeded'."""
    error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:1000]
    if cfg.password:
        error = error.replace(cfg.password, "***")
    if not conn.broken:
        try:
            results_mod.fail_run(conn, run_id, datetime.now(UTC), error)
            _cleanup(conn)
            return
        except psycopg.Error:  # the session died under the run (it may not have noticed yet)
            pass
    try:
        with warehouse.connect_when_up(cfg, within=60, autocommit=True) as fresh:
            results_mod.fail_run(fresh, run_id, datetime.now(UTC), error)
            _cleanup(fresh)
    except psycopg.Error:
        log.warning("quality run %s: could not record the failure; the next run marks it failed", run_id)


def _cleanup(conn: psycopg.Connection) -> None:
    try:
        batches_mod.drop_all(conn)
    except psycopg.Error:
        log.warning("could not drop the quality batch tables", exc_info=True)


def _run(
    conn: psycopg.Connection,
    cfg: WarehouseConfig,
    settings: Settings,
    catalogue: Catalogue,
    run_id: str,
    as_of: date,
    departments: list[str] | None,
    started: datetime,
    t0: float,
    timings: dict[str, float],
    *,
    full: bool = False,
) -> RunSummary:
    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - t0 - sum(timings.values()), 2)

    quiet()
    # importing Great Expectations takes seconds of CPU; do it while the server writes the batches
    gx_import = threading.Thread(target=importlib.import_module, args=("great_expectations",), daemon=True)
    gx_import.start()
    directory = batches_mod.load_directory(conn)
    if departments:
        unknown = sorted(set(departments) - {d.code for d in directory})
        if unknown:
            raise batches_mod.QualityConfigError(
                [f"部门 {c} 不在部门目录中 (not in the directory)" for c in unknown]
            )
    missing = batches_mod.check(conn, catalogue, directory, as_of)
    lap("check")
    built = batches_mod.build(
        conn,
        catalogue,
        directory,
        as_of,
        departments,
        connect=lambda: warehouse.connect(cfg, autocommit=True),
        parallel=settings.quality_workers,
        missing=missing,
    )
    lap("batch_tables")
    rows = {rel: b.rows for rel, b in built.items()}
    plan = suites_mod.plan(catalogue, directory, rows, departments)
    asset_names = {rel: b.name for rel, b in built.items()}

    # which (asset, department) data changed since the previous run; carry the others' records rules
    config_fp = incremental.config_fingerprint(conn, settings.quality_rules_file)
    decision = incremental.decide(conn, run_id, as_of, config_fp, force_full=full, departments=departments)
    classes = incremental.classes(catalogue)
    fingerprints: dict[tuple[str, str], tuple[str, int]] = {}
    for relation, b in built.items():
        for dept, fp in incremental.fingerprints(conn, b, catalogue).items():
            fingerprints[(relation, dept)] = fp
    carried_rows: list[results_mod.ResultRow] = []
    carried_failures: list[tuple[str, str, str, str, str]] = []
    if decision.mode == "incremental":
        plan, carried_rows, carried_failures = _carry(conn, decision, plan, classes, fingerprints)
    lap("fingerprints")
    gx_import.join()

    project = Project(
        settings.quality_gx_config_dir, _work_dir(settings, run_id), settings.quality_data_docs_dir
    )
    project.create(cfg, {b.name: b.table for b in built.values() if not b.missing})
    # the carried results keep their Data Docs pages (of the run that validated them)
    project.clear_docs(keep={r.data_docs_page for r in carried_rows if r.data_docs_page})
    lap("gx_project")
    outcomes = _validate_all(project, plan, asset_names, settings.quality_workers) if plan else []
    lap("validate")
    errors = [o for o in outcomes if o.error]
    if errors:
        listed = "; ".join(f"{o.rule_id}@{o.dept_code}: {o.error}" for o in errors[:10])
        raise RuntimeError(f"{len(errors)} expectation(s) raised errors: {listed}")
    failing_rows.collect(
        conn,
        built,
        catalogue.by_id,
        outcomes,
        lambda left: failing_rows_from_gx(project, asset_names, catalogue.by_id, left),
    )
    lap("failing_rows")
    project.build_index()
    names = {d.code: d.name for d in directory}
    lap("data_docs")

    validated_rows, failures = _results(catalogue, built, outcomes, as_of)
    result_rows = sorted([*validated_rows, *carried_rows], key=lambda r: (r.dept_code, r.rule_id))
    failures = [*failures, *carried_failures]
    validation = {
        "mode": decision.mode,
        "reason_zh": decision.reason_zh,
        "revalidated": len(validated_rows),
        "carried": len(carried_rows),
        "rule_classes": {c: sum(v == c for v in classes.values()) for c in incremental.RULE_CLASSES},
        "timings": dict(timings),  # seconds per stage, up to the Data Docs
        # (asset, department) pairs whose records rules were validated again: data changed or new
        "records_revalidated": sorted(
            {
                f"{r.asset}|{r.dept_code}"
                for r in validated_rows
                if classes.get(r.rule_id) == incremental.RECORDS
            }
        )
        if decision.mode == "incremental"
        else None,
    }
    dept_pages = _department_pages(project.docs_dir, run_id, as_of, names, result_rows, catalogue)
    by_dept: dict[str, list[results_mod.ResultRow]] = defaultdict(list)
    for r in result_rows:
        by_dept[r.dept_code].append(r)
    summaries = tuple(
        DepartmentSummary(
            dept_code=code,
            dept_name=names.get(code, code),
            rules_evaluated=len(rs),
            rules_failed=sum(not r.success for r in rs),
            blocking_failed=sum(not r.success and r.severity == "blocking" for r in rs),
            warning_failed=sum(not r.success and r.severity == "warning" for r in rs),
            records_failed=sum(r.failed_count for r in rs if r.level == "row"),
            page=dept_pages.get(code),
        )
        for code, rs in sorted(by_dept.items())
    )
    not_checked = not_checked_relations(catalogue, built, directory, departments, conn=conn)
    if not validated_rows:  # everything carried or nothing to check: this run checked nothing itself
        not_checked.append(
            {
                "relation": None,
                "reason": "no_rules",
                "reason_zh": "本次没有评估任何规则 (no rule was evaluated)",
            }
        )
    status = "incomplete" if not_checked else "succeeded"
    finished = datetime.now(UTC)
    summary = RunSummary(
        run_id=run_id,
        data_date=as_of,
        status=status,
        started_at=started,
        finished_at=finished,
        duration_seconds=round(time.monotonic() - t0, 2),
        data_docs_dir=str(project.docs_dir),
        departments=summaries,
        timings=timings,
        unresolved={rel: b.unresolved for rel, b in built.items() if b.unresolved},
        not_checked=tuple(not_checked),
        mode=decision.mode,
        base_run_id=decision.base_run_id,
        mode_reason_zh=decision.reason_zh,
        revalidated=len(validated_rows),
        carried=len(carried_rows),
    )
    # the last thing that may fail: results, failing records and the status in one transaction
    results_mod.finish_run(
        conn,
        run_id,
        finished,
        result_rows,
        failures,
        status=status,
        not_checked=not_checked,
        fingerprints=fingerprints,
        run_info={
            "mode": decision.mode,
            "base_run_id": decision.base_run_id,
            "config_fingerprint": config_fp,
            "validation": validation,
        },
    )
    _cleanup(conn)
    lap("store")
    summary = dataclasses.replace(summary, duration_seconds=round(time.monotonic() - t0, 2))
    for n in not_checked:
        log.warning("quality run %s: not checked %s: %s", run_id, n["relation"] or "-", n["reason_zh"])
    log.info(
        "quality run %s (as of %s): %s, %d results, %d failed, %s: %d re-validated, %d carried from %s (%s), %.1f s %s",
        run_id,
        as_of,
        status,
        len(result_rows),
        sum(not r.success for r in result_rows),
        decision.mode,
        len(validated_rows),
        len(carried_rows),
        decision.base_run_id or "-",
        decision.reason_zh,
        summary.duration_seconds,
        timings,
    )
    return summary


_CARRIED_COLUMNS = (
    "rule_id, dept_code, asset, source, level, category, severity, success, evaluated_count, failed_count, "
    "failed_share, sample_record_ids, observed_on, observed, description_zh, fix_zh, deadline_zh, "
    "data_docs_page, basis_zh, coalesce(carried_from, run_id)"
)


def _carry(
    conn: psycopg.Connection,
    decision: incremental.Decision,
    plan: dict[str, list[suites_mod.SuiteSpec]],
    classes: dict[str, str],
    fingerprints: dict[tuple[str, str], tuple[str, int]],
) -> tuple[
    dict[str, list[suites_mod.SuiteSpec]], list[results_mod.ResultRow], list[tuple[str, str, str, str, str]]
]:
    """Take the `records` rules of every suite whose data is unchanged since the base run out of the
    plan and carry the base run's results (and failing records) of them instead. A suite is carried
    only when the base holds a result for each of those rules; otherwise it is validated."""
    base = decision.base_run_id
    stored: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for row in conn.execute(f"select {_CARRIED_COLUMNS} from ops.quality_results where run_id = %s", (base,)):
        stored[(row[2], row[1])].append(row)
    new_plan: dict[str, list[suites_mod.SuiteSpec]] = {}
    carried: list[results_mod.ResultRow] = []
    pairs: list[tuple[str, str, list[str]]] = []
    for code, specs in plan.items():
        kept = []
        for spec in specs:
            key = (spec.relation, code)
            records = [r.id for r in spec.rules if classes.get(r.id) == incremental.RECORDS]
            old = {row[0]: row for row in stored.get(key, ()) if row[0] in records}
            unchanged = key in fingerprints and decision.base_fingerprints.get(key) == fingerprints[key]
            if not records or not unchanged or set(old) != set(records):
                kept.append(spec)
                continue
            carried.extend(
                results_mod.ResultRow(*row[:11], tuple(row[11] or ()), *row[12:19], carried_from=row[19])
                for row in (old[r] for r in records)
            )
            pairs.append((spec.relation, code, records))
            rest = tuple(r for r in spec.rules if classes.get(r.id) != incremental.RECORDS)
            if rest:
                kept.append(dataclasses.replace(spec, rules=rest))
        if kept:
            new_plan[code] = kept
    failures: list[tuple[str, str, str, str, str]] = []
    if pairs:
        wanted = {(asset, dept, rule) for asset, dept, rules in pairs for rule in rules}
        for rule_id, asset, dept, record_id, severity in conn.execute(
            "select rule_id, asset, dept_code, record_id, severity from ops.quality_row_failures where run_id = %s",
            (base,),
        ):
            if (asset, dept, rule_id) in wanted:
                failures.append((rule_id, asset, dept, record_id, severity))
    log.info(
        "quality: %d suite(s) unchanged since %s: %d result(s) carried; %d department(s) to validate",
        len(pairs),
        base,
        len(carried),
        len(new_plan),
    )
    return new_plan, carried, failures


def not_checked_relations(
    catalogue: Catalogue,
    built: dict[str, batches_mod.AssetBatch],
    directory: list[batches_mod.DirectoryDept],
    departments: list[str] | None = None,
    *,
    conn: psycopg.Connection | None = None,
) -> list[dict]:
    """The assets the run could not check, and why: the relation does not exist (dbt has not built
    it), or it is empty although a department answers for it (its directory `sources` list the
    asset's system or template; an asset nobody answers for may well be empty). The missing feed
    itself is each department's finding (the freshness rules); this list is the run's own honesty.
    Emptiness is the relation's, not the batch's: a run for some departments whose batch is empty
    asks the relation itself (`conn`)."""
    out: list[dict] = []
    wanted = set(departments) if departments else None
    for relation, b in sorted(built.items()):
        if b.asset is None:
            continue
        answering = [
            d.code
            for d in directory
            if b.asset.answered_by in d.sources and (wanted is None or d.code in wanted)
        ]
        if b.missing:
            out.append(
                {
                    "relation": relation,
                    "reason": "missing",
                    "reason_zh": "关系不存在, 仓库尚未构建该模型 (the relation does not exist)",
                }
            )
        elif (
            answering
            and not sum(b.rows.values())
            and not b.unresolved
            and _relation_empty(conn, relation, departments)
        ):
            out.append(
                {
                    "relation": relation,
                    "reason": "empty",
                    "reason_zh": (
                        f"关系为空, 但部门目录中有 {len(answering)} 个部门负责 {b.asset.answered_by} "
                        f"(empty although {len(answering)} department(s) answer for it)"
                    ),
                }
            )
    return out


def _relation_empty(conn: psycopg.Connection | None, relation: str, departments: list[str] | None) -> bool:
    if not departments or conn is None:
        return True  # the batch held every record of the relation
    from psycopg import sql

    return not conn.execute(
        sql.SQL("select exists (select from {})").format(sql.Identifier(*relation.split(".", 1)))
    ).fetchone()[0]


def _work_dir(settings: Settings, run_id: str) -> Path:
    """This run's GX working copy; earlier runs' copies are removed in the background (thousands of
    small files: removing them in line would cost the run seconds)."""
    base = settings.quality_dir / "gx"
    base.mkdir(parents=True, exist_ok=True)
    old = [p for p in base.iterdir() if p.is_dir() and p.name != run_id]
    if old:
        threading.Thread(
            target=lambda: [shutil.rmtree(p, ignore_errors=True) for p in old],
            name="quality-gx-cleanup",
            daemon=True,
        ).start()
    return base / run_id


def _validate_all(
    project: Project, plan: dict[str, list[suites_mod.SuiteSpec]], asset_names: dict[str, str], workers: int
) -> list[Outcome]:
    """Spread the departments over worker processes, heaviest first onto the least loaded."""
    import multiprocessing

    items = sorted(plan.items(), key=lambda kv: -sum(len(s.rules) for s in kv[1]))
    if multiprocessing.current_process().daemon:  # e.g. a Celery prefork worker: no children allowed
        workers = 1
    workers = max(1, min(workers, len(items)))
    if workers == 1:
        return validate(project, items, asset_names)
    loads = [0] * workers
    shares: list[list] = [[] for _ in range(workers)]
    for code, specs in items:
        i = loads.index(min(loads))
        shares[i].append((code, specs))
        loads[i] += sum(len(s.rules) for s in specs) + 3 * len(specs)
    out: list[Outcome] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        for part in pool.map(validate, [project] * workers, shares, [asset_names] * workers):
            out.extend(part)
    return out


# --- from GX outcomes to result rows -----------------------------------------------------------


class _Blank(dict):
    def __missing__(self, key):
        return "无"


def _fmt(value) -> object:
    if value is None:
        return "无"
    if isinstance(value, float):
        return f"{value:g}"
    return value


def _results(
    catalogue: Catalogue, built: dict[str, batches_mod.AssetBatch], outcomes: list[Outcome], as_of: date
) -> tuple[list[results_mod.ResultRow], list[tuple[str, str, str, str, str]]]:
    rows: list[results_mod.ResultRow] = []
    failures: dict[tuple[str, str], tuple[str, str, str, str, str]] = {}
    feeds = built[FEEDS_ASSET].feed_rows if FEEDS_ASSET in built else {}
    for o in sorted(outcomes, key=lambda o: (o.dept_code, o.rule_id)):
        rule = catalogue.by_id[o.rule_id]
        if rule.level == "row":
            evaluated = (o.element_count or 0) - (o.missing_count or 0)
            failed = o.unexpected_count or 0
        elif o.element_count is not None:  # a per-row expectation on the one feeds row
            evaluated = (o.element_count or 0) - (o.missing_count or 0)
            failed = o.unexpected_count or 0
        else:  # table-level expectations
            evaluated, failed = 1, 0 if o.success else 1
        share = round(failed / evaluated, 6) if evaluated else None
        ids = sorted(set(o.failed_ids))
        observed_on = None
        if rule.level == "dataset":
            values = dict(feeds.get(o.dept_code) or {}) if rule.asset == FEEDS_ASSET else {}
            observed = _dataset_observed(rule, values, evaluated, failed, o)
            observed_on = values.get(rule_observed_on(rule)) if rule_observed_on(rule) else as_of
            if not isinstance(observed_on, date):
                observed_on = as_of
        else:
            separately = (
                built[rule.asset].separately.get((rule.id, o.dept_code), {}) if rule.asset in built else {}
            )
            observed = _row_observed(rule, evaluated, failed, share, o, separately)
            for rid in ids:
                failures[(rule.id, rid)] = (rule.id, rule.asset, o.dept_code, rid, rule.severity)
        rows.append(
            results_mod.ResultRow(
                rule_id=rule.id,
                dept_code=o.dept_code,
                asset=rule.asset,
                source=rule.source,
                level=rule.level,
                category=rule.category,
                severity=rule.severity,
                success=o.success,
                evaluated_count=evaluated,
                failed_count=failed,
                failed_share=share,
                sample_record_ids=tuple(ids[:SAMPLE_IDS]) if rule.level == "row" else (),
                observed_on=observed_on,
                observed=observed,
                description_zh=rule.description_zh,
                fix_zh=rule.fix_zh,
                deadline_zh=rule.deadline_zh,
                data_docs_page=o.page,
                basis_zh=rule.basis_zh,
            )
        )
    return rows, list(failures.values())


def rule_observed_on(rule: Rule) -> str | None:
    """The feeds column holding the day a dataset-level problem concerns (volume: the day checked)."""
    column = rule.kwargs.get("column")
    if rule.asset == FEEDS_ASSET and isinstance(column, str) and column.endswith("__volume_ok"):
        return column[: -len("ok")] + "on"
    return None


def _row_observed(
    rule: Rule, evaluated: int, failed: int, share: float | None, o: Outcome, separately: dict
) -> str:
    examples = list(dict.fromkeys(v for v in o.unexpected_values if v not in ("False", "True", "None")))
    if rule.observed_zh:
        text = rule.observed_zh.format_map(
            _Blank(
                evaluated=evaluated,
                failed=failed,
                share=f"{(share or 0):.1%}",
                examples="、".join(examples[:3]) if examples else "无",
            )
        )
    else:
        text = f"检查 {evaluated} 条, 不符合 {failed} 条"
        if evaluated and failed:
            text += f" ({failed / evaluated:.1%})"
        if failed and examples:
            text += "; 如: " + "；".join(examples[:3])
    for label, n in separately.items():
        if n:
            text += f"; {label} {n} 条 (单独计数, 不计为错误)"
    return text


def _dataset_observed(rule: Rule, values: dict, evaluated: int, failed: int, o: Outcome) -> str:
    if not evaluated:
        return "未判断: 该部门近期数据太少, 不足以判断 (not judged: too little recent data)"
    if rule.observed_zh:
        return rule.observed_zh.format_map(_Blank({k: _fmt(v) for k, v in values.items()}))
    return (
        f"观测值 {_fmt(o.observed_value)}"
        if o.observed_value is not None
        else ("符合" if not failed else "不符合")
    )


# --- a page per department ----------------------------------------------------------------------


def _department_pages(
    docs_dir: Path,
    run_id: str,
    as_of: date,
    names: dict[str, str],
    rows: list[results_mod.ResultRow],
    catalogue: Catalogue,
) -> dict[str, str]:
    """departments/<dept_code>.html: the department's rules at a glance, linking to the GX pages;
    departments/index.html lists them all. Returns dept_code → page (relative to docs_dir)."""
    folder = docs_dir / "departments"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.html"):
        old.unlink()
    by_dept: dict[str, list[results_mod.ResultRow]] = defaultdict(list)
    for r in rows:
        by_dept[r.dept_code].append(r)
    style = (
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}.fail{color:#b00020}.ok{color:#2e7d32}</style>"
    )
    pages: dict[str, str] = {}
    index_rows = []
    for code in sorted(by_dept):
        rs = sorted(by_dept[code], key=lambda r: (r.success, r.severity != "blocking", r.rule_id))
        lines = []
        for r in rs:
            link = f'<a href="../{html.escape(r.data_docs_page)}">GX</a>' if r.data_docs_page else ""
            state = '<span class="ok">通过</span>' if r.success else '<span class="fail">未通过</span>'
            checked = f"沿用 {html.escape(r.carried_from)}" if r.carried_from else "本次检查"
            lines.append(
                "<tr>"
                f"<td>{html.escape(r.rule_id)}</td><td>{state}</td><td>{SEVERITY_ZH[r.severity]}</td>"
                f"<td>{CATEGORY_ZH.get(r.category, r.category)}</td><td>{html.escape(r.description_zh)}</td>"
                f"<td>{r.failed_count} / {r.evaluated_count}</td><td>{html.escape(r.observed or '')}</td>"
                f"<td>{html.escape('; '.join(x for x in (r.deadline_zh, r.basis_zh) if x))}</td><td>{html.escape(r.fix_zh)}</td>"
                f"<td>{html.escape(', '.join(r.sample_record_ids))}</td><td>{link}</td><td>{checked}</td></tr>"
            )
        failed = sum(not r.success for r in rs)
        title = f"{html.escape(names.get(code, code))} ({code}) 数据质量检查结果"
        page = (
            f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>{title}</title>{style}</head><body>"
            f"<h1>{title}</h1><p>运行 {html.escape(run_id)}, 数据日期 {as_of}; 规则 {len(rs)} 条, 未通过 {failed} 条。"
            "<a href='index.html'>全部部门</a> · <a href='../index.html'>Great Expectations Data Docs</a></p>"
            "<table><tr><th>规则</th><th>结果</th><th>级别</th><th>类别</th><th>说明</th><th>不符合/检查</th>"
            "<th>观测</th><th>时限/依据</th><th>整改要求</th><th>示例记录</th><th>详情</th><th>核验 (本次/沿用)</th></tr>"
            + "".join(lines)
            + "</table></body></html>"
        )
        (folder / f"{code}.html").write_text(page, encoding="utf-8")
        pages[code] = f"departments/{code}.html"
        index_rows.append(
            f"<tr><td><a href='{code}.html'>{html.escape(names.get(code, code))}</a></td><td>{code}</td>"
            f"<td>{len(rs)}</td><td class='{'fail' if failed else 'ok'}'>{failed}</td></tr>"
        )
    index = (
        f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>各部门数据质量</title>{style}</head><body>"
        f"<h1>各部门数据质量 (运行 {html.escape(run_id)}, 数据日期 {as_of})</h1>"
        f"<p>规则目录 {html.escape(catalogue.source)}</p>"
        "<table><tr><th>部门</th><th>代码</th><th>规则</th><th>未通过</th></tr>"
        + "".join(index_rows)
        + "</table></body></html>"
    )
    (folder / "index.html").write_text(index, encoding="utf-8")
    return pages
