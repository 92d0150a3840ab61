"""Great Expectations for one run: a working copy of the file data context, its suites, one
checkpoint per department, validation in the database, Data Docs.

The committed project is `expectations/great_expectations.yml` (stores, Data Docs site; no
datasource, no credentials). GX writes into its project folder (datasource config, suites,
validation definitions, checkpoints, results), so each run opens a fresh working copy under
Settings.quality_dir/gx and never touches the committed files. The datasource's connection string
is `${MARKET_ACCESS_QUALITY_WAREHOUSE_URL}`: GX substitutes it from this process's environment,
so the working copy holds no credential either.

Departments are validated by worker processes (GX spends its time in Python, one expectation at a
time; two cores validate two departments at once). Each worker opens the same working copy, runs
the checkpoints of its departments and renders their Data Docs pages; the parent builds the index.

Checkpoints run with the BASIC result format (counts and sample values: about a third of the cost
of COMPLETE per expectation); every failing record id is collected afterwards (failing_rows.py).
They run without GX's freshness checks of objects this run has just stored (`stored_just_now`),
and each expectation builds its configuration once per run (`configurations_built_once`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from market_access.quality.batches import DEPT_COLUMN, KEY_COLUMN, SCHEMA
from market_access.quality.suites import SuiteSpec, build_suite
from market_access.warehouse import WarehouseConfig

log = logging.getLogger(__name__)

CONNECTION_ENV = "MARKET_ACCESS_QUALITY_WAREHOUSE_URL"
DOCS_ENV = "QUALITY_DATA_DOCS_DIR"
DATASOURCE = "warehouse"
BATCH_DEFINITION = "by_department"
PROJECT_FILE = "great_expectations.yml"
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 20}
FAILING_ROWS_FORMAT = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [KEY_COLUMN],
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
    # GX limits even COMPLETE's index list to partial_unexpected_count
    "partial_unexpected_count": 1_000_000_000,
}


def sqlalchemy_url(cfg: WarehouseConfig) -> str:
    """The warehouse as a SQLAlchemy URL (psycopg 3); batch tables are found through search_path."""
    from sqlalchemy.engine import URL

    query: dict[str, str] = {
        # no parallel scans: the rows of a department's batch come in the table's order (its examples
        # are the same in every run), and two cores are busy with two departments already
        "options": f"-c search_path={SCHEMA} -c max_parallel_workers_per_gather=0",
        "application_name": "market_access_quality",
    }
    host: str | None = cfg.host
    if cfg.host.startswith("/"):
        query["host"], host = cfg.host, None
    for k in ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout"):
        if k in cfg.options:
            query[k] = str(cfg.options[k])
    url = URL.create(
        "postgresql+psycopg",
        username=cfg.user,
        password=cfg.password,
        host=host,
        port=cfg.port,
        database=cfg.dbname,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def quiet() -> None:
    """GX prints progress bars and deprecation chatter; a scheduled run wants its own log only."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    warnings.filterwarnings("ignore", module="great_expectations")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass
class Outcome:
    """What GX said about one rule for one department (plain data: crosses process boundaries)."""

    rule_id: str
    dept_code: str
    relation: str
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    missing_count: int | None = None
    observed_value: object = None
    failed_ids: list[str] = field(default_factory=list)
    unexpected_values: list[str] = field(default_factory=list)  # a sample (up to 20)
    page: str | None = None  # Data Docs page, relative to the docs folder
    error: str | None = None


class Project:
    """The run's working copy of the GX file data context."""

    def __init__(self, config_dir: Path, work_dir: Path, docs_dir: Path):
        self.config_dir = Path(config_dir)
        self.root = Path(work_dir)
        self.docs_dir = Path(docs_dir)

    def create(self, cfg: WarehouseConfig, batch_tables: dict[str, str]) -> None:
        """Fresh working copy: the committed config plus the datasource with one table asset per
        batch table (asset name → table), each with a batch definition partitioned by department.

        The datasource is written into the copy's config directly rather than added through the
        API, which rewrites the whole file once per asset and batch definition."""
        import uuid

        import yaml

        source = self.config_dir / PROJECT_FILE
        if not source.exists():
            raise FileNotFoundError(f"the committed GX project config is missing: {source}")
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        assets = {
            name: {
                "type": "table",
                "id": str(uuid.uuid4()),
                "table_name": table,
                "batch_metadata": {},
                "batch_definitions": {
                    BATCH_DEFINITION: {"id": str(uuid.uuid4()), "partitioner": {"column_name": DEPT_COLUMN}}
                },
            }
            for name, table in batch_tables.items()
        }
        datasource = {
            "fluent_datasources": {
                DATASOURCE: {
                    "type": "postgres",
                    "id": str(uuid.uuid4()),
                    "connection_string": "${" + CONNECTION_ENV + "}",
                    "assets": assets,
                }
            }
        }
        text = source.read_text(encoding="utf-8").rstrip() + "\n\n# added for this run\n"
        text += yaml.safe_dump(datasource, allow_unicode=True, sort_keys=False)
        (self.root / PROJECT_FILE).write_text(text, encoding="utf-8")
        self.environment(cfg)

    def environment(self, cfg: WarehouseConfig) -> None:
        os.environ[CONNECTION_ENV] = sqlalchemy_url(cfg)
        os.environ[DOCS_ENV] = str(self.docs_dir)

    def context(self):
        import great_expectations as gx

        quiet()
        return gx.get_context(mode="file", context_root_dir=str(self.root))

    def clear_docs(self, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """The docs folder shows the latest run only, plus the pages in `keep` (relative to the docs
        folder): those of the results an incremental run carries forward."""
        for section in ("expectations", "static"):
            shutil.rmtree(self.docs_dir / section, ignore_errors=True)
        validations = self.docs_dir / "validations"
        if keep and validations.is_dir():
            for p in sorted(validations.rglob("*"), key=lambda p: -len(p.parts)):
                if p.is_file() and p.relative_to(self.docs_dir).as_posix() not in keep:
                    p.unlink()
                elif p.is_dir() and not any(p.iterdir()):
                    p.rmdir()
        else:
            shutil.rmtree(validations, ignore_errors=True)
        self.docs_dir.mkdir(parents=True, exist_ok=True)

    def build_index(self) -> Path:
        """The Data Docs index over every stored result (the pages are built by the workers)."""
        from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

        context = self.context()
        # an identifier that matches no result: no page is rendered again, only the index
        none = ValidationResultIdentifier.from_tuple(("-", "-", "-", "-", "-"))
        context.build_data_docs(resource_identifiers=[none], build_index=True)
        return self.docs_dir / "index.html"


@contextlib.contextmanager
def stored_just_now() -> Iterator[None]:
    """Within this block GX does not re-read its stores to check that a checkpoint and its
    validation definitions are "fresh".

    Before it runs a checkpoint, and again before each validation definition, GX reads every
    suite, definition and the checkpoint back from the file stores, deserialises them and compares
    them with the objects in memory (about three times per definition, counting the comparison of
    the checkpoint's serialised form). `validate` adds each of them to the stores immediately
    before it runs them, in this process, so the comparison cannot fail; in a py-spy profile of a
    full quality run at scale 1 it was a quarter of the checkpoints' time. Outside the block GX's
    own checks apply again (tests/integration/test_gx_freshness.py checks both)."""
    from great_expectations.checkpoint.checkpoint import Checkpoint
    from great_expectations.core.freshness_diagnostics import (
        CheckpointFreshnessDiagnostics,
        ValidationDefinitionFreshnessDiagnostics,
    )
    from great_expectations.core.validation_definition import ValidationDefinition

    originals = Checkpoint.is_fresh, ValidationDefinition.is_fresh
    Checkpoint.is_fresh = lambda self: CheckpointFreshnessDiagnostics(errors=[])
    ValidationDefinition.is_fresh = lambda self: ValidationDefinitionFreshnessDiagnostics(errors=[])
    try:
        yield
    finally:
        Checkpoint.is_fresh, ValidationDefinition.is_fresh = originals


@contextlib.contextmanager
def configurations_built_once() -> Iterator[None]:
    """Within this block each Expectation object builds its ExpectationConfiguration once.

    GX's `Expectation.configuration` is a property that serialises the expectation and builds a new
    ExpectationConfiguration on every read, and GX reads it once per domain key and once per
    success key while it plans an expectation's metrics (`_get_domain_kwargs`,
    `_get_success_kwargs`, `get_metric_kwargs`): about a third of the checkpoints' time in a py-spy
    profile of a full quality run at scale 1. Inside a checkpoint run the expectations are not
    changed (the validator plans and evaluates fresh copies of the suite's configurations), so the
    first configuration an object builds is the one every later read would build. The memo holds
    each object it answered for until the block ends (so no other object can take its id) and is
    dropped then. tests/integration/test_gx_freshness.py compares the results with and without it."""
    from great_expectations.expectations.expectation import Expectation

    original = Expectation.__dict__["configuration"]
    built: dict[int, tuple[object, object]] = {}

    def configuration(self):
        hit = built.get(id(self))
        if hit is not None and hit[0] is self:
            return hit[1]
        made = original.fget(self)
        built[id(self)] = (self, made)
        return made

    Expectation.configuration = property(configuration, doc=original.__doc__)
    try:
        yield
    finally:
        Expectation.configuration = original
        built.clear()


def validate(
    project: Project, departments: list[tuple[str, list[SuiteSpec]]], asset_names: dict[str, str]
) -> list[Outcome]:
    """Add the departments' suites, validation definitions and checkpoints, run each department's
    checkpoint on its batches, render the departments' Data Docs pages, and return what every rule
    observed (its failing records are collected afterwards). Runs in a worker process."""
    import great_expectations as gx

    started = time.monotonic()
    spent = {"setup": 0.0, "checkpoints": 0.0, "results": 0.0, "docs": 0.0}
    context = project.context()
    ds = context.data_sources.get(DATASOURCE)
    outcomes: list[Outcome] = []
    keys = []
    for dept_code, specs in departments:
        t = time.monotonic()
        vds = []
        by_suite: dict[str, SuiteSpec] = {}
        for spec in specs:
            suite = context.suites.add(build_suite(spec))
            batch_definition = ds.get_asset(asset_names[spec.relation]).get_batch_definition(BATCH_DEFINITION)
            vds.append(
                context.validation_definitions.add(
                    gx.ValidationDefinition(name=spec.name, data=batch_definition, suite=suite)
                )
            )
            by_suite[spec.name] = spec
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(name=dept_code, validation_definitions=vds, actions=[], result_format=RESULT_FORMAT)
        )
        spent["setup"] += time.monotonic() - t
        t = time.monotonic()
        with stored_just_now(), configurations_built_once():  # stored above, in this process
            result = checkpoint.run(batch_parameters={DEPT_COLUMN: dept_code})
        spent["checkpoints"] += time.monotonic() - t
        log.info(
            "department %s: %d suite(s), %d rule(s) validated in %.2f s",
            dept_code,
            len(specs),
            sum(len(s.rules) for s in specs),
            time.monotonic() - t,
        )
        t = time.monotonic()
        for key, suite_result in result.run_results.items():
            spec = by_suite[suite_result.suite_name]
            page = _page(context, key, project.docs_dir)
            outcomes.extend(_outcome(er, spec, page) for er in suite_result.results)
            keys.append(key)
        spent["results"] += time.monotonic() - t
    t = time.monotonic()
    if keys:
        from market_access.quality.docs_text import escape_stored_results

        escape_stored_results(context, keys)  # GX puts unexpected values into its pages unescaped
        context.build_data_docs(resource_identifiers=keys, build_index=False)
    spent["docs"] += time.monotonic() - t
    log.info(
        "validated %d department(s), %d rule results in %.1f s (%s)",
        len(departments),
        len(outcomes),
        time.monotonic() - started,
        ", ".join(f"{k} {v:.1f} s" for k, v in spent.items()),
    )
    return outcomes


def failing_rows_from_gx(
    project: Project, asset_names: dict[str, str], rules: dict, outcomes: list[Outcome]
) -> None:
    """Ask GX for every failing record of these outcomes: their expectations validated again, in
    memory (nothing stored), with COMPLETE and the record key as index column."""
    import great_expectations as gx

    from market_access.quality.suites import expectation_for

    context = project.context()
    ds = context.data_sources.get(DATASOURCE)
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault((o.dept_code, o.relation), []).append(o)
    for (dept_code, relation), outs in groups.items():
        suite = gx.ExpectationSuite(name=f"{dept_code}.{asset_names[relation]}.failing_rows")
        for o in outs:
            suite.add_expectation(expectation_for(rules[o.rule_id]))
        batch_definition = ds.get_asset(asset_names[relation]).get_batch_definition(BATCH_DEFINITION)
        batch = batch_definition.get_batch(batch_parameters={DEPT_COLUMN: dept_code})
        again = batch.validate(suite, result_format=FAILING_ROWS_FORMAT)
        by_rule = {o.rule_id: o for o in outs}
        for er in again.results:
            o = by_rule.get((er.expectation_config.meta or {}).get("rule_id"))
            if o is None:
                continue
            o.failed_ids = _index_ids((er.result or {}).get("unexpected_index_list"))
            if len(set(o.failed_ids)) != o.unexpected_count:
                log.warning(
                    "%s %s: GX lists %d failing records for %s failing rows",
                    dept_code,
                    o.rule_id,
                    len(set(o.failed_ids)),
                    o.unexpected_count,
                )


def _index_ids(index_list) -> list[str]:
    """Record keys from an unexpected_index_list: one dict per row, or (when unexpected values are
    excluded) one dict holding the list of keys."""
    ids: list[str] = []
    for item in index_list or ():
        if isinstance(item, dict):
            value = item.get(KEY_COLUMN)
            if isinstance(value, list):
                ids.extend(str(v) for v in value)
            elif value is not None:
                ids.append(str(value))
    return ids


def _page(context, key, docs_dir: Path) -> str | None:
    try:
        urls = context.get_docs_sites_urls(resource_identifier=key, only_if_exists=False)
    except Exception:  # a docs site misconfiguration must not lose the results
        log.warning("no Data Docs page for %s", key, exc_info=True)
        return None
    for u in urls or ():
        url = u.get("site_url") or ""
        if url.startswith("file://"):
            from urllib.parse import unquote, urlsplit

            path = Path(unquote(urlsplit(url).path))
            try:
                return path.relative_to(docs_dir).as_posix()
            except ValueError:
                return str(path)
    return None


def _outcome(er, spec: SuiteSpec, page: str | None) -> Outcome:
    meta = er.expectation_config.meta or {}
    res = er.result or {}
    info = er.exception_info or {}
    error = None
    if info.get("raised_exception"):
        error = info.get("exception_message") or "expectation raised an exception"
    return Outcome(
        rule_id=meta.get("rule_id", "?"),
        dept_code=spec.dept_code,
        relation=spec.relation,
        success=bool(er.success),
        element_count=res.get("element_count"),
        unexpected_count=res.get("unexpected_count"),
        missing_count=res.get("missing_count"),
        observed_value=res.get("observed_value"),
        unexpected_values=[str(v) for v in res.get("partial_unexpected_list") or ()],
        page=page,
        error=error,
    )
