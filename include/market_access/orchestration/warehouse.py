"""What the warehouse DAGs run: preparing the warehouse, the Cosmos task groups, the Assets between them.

The build is split where the quality rules sit: `build_warehouse` builds seeds, staging and
intermediate; `data_quality` validates staging per department (Great Expectations) and mails the
departments; `publish_marts` builds the facts and indicator marts, which enforce the run's verdicts.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from market_access.dbt import PROJECT_DIR, dbt_executable
from market_access.orchestration.defaults import OWNER, default_args
from market_access.settings import settings

MANIFEST = PROJECT_DIR / "target" / "manifest.json"

# Assets between the three DAGs
STAGING_ASSET = "warehouse.staging"
QUALITY_ASSET = "ops.quality_results"
MARTS_ASSET = "warehouse.marts"

# dbt selections (manifest paths relative to the project)
# the quality run's own results (staging views over ops.quality_*) and the verdicts built on them:
# only after the quality run, so in publish_marts, never in build_warehouse
QUALITY_RESULTS = "path:models/staging/quality"
QUALITY_ENFORCEMENT = "path:models/intermediate/quality"
# intermediate models built on facts (inspection coverage reads fct_inspection_results)
ON_FACTS = "path:models/intermediate/supervision"
# the rows every indicator mart must have run up to the newest quality run's data date
ON_QUALITY_RUN = "path:models/intermediate/indicators"
BUILD_SELECT = ["path:seeds", "path:models/staging", "path:models/intermediate"]
BUILD_EXCLUDE = [QUALITY_RESULTS, QUALITY_ENFORCEMENT, ON_FACTS, ON_QUALITY_RUN]
PUBLISH_SELECT = [QUALITY_RESULTS, QUALITY_ENFORCEMENT, ON_FACTS, ON_QUALITY_RUN, "path:models/marts"]


def parsing_another_dag(dag_id: str) -> bool:
    """Whether this parse is for another DAG (Airflow's parsing context): then the Cosmos DAG files
    need not render their ~100 tasks. `make run` sets the context for each `airflow dags test`, which
    otherwise parses the whole DAG folder twice — both Cosmos DAGs included — for every sync."""
    from airflow.sdk import get_parsing_context

    current = get_parsing_context().dag_id
    return bool(current) and current != dag_id


def raw_assets() -> list[str]:
    """Every raw Asset build_warehouse is scheduled on: the synced resources and the submission templates."""
    from market_access.orchestration.submissions import template_assets
    from market_access.sources import catalog

    return [r.asset_name for r in catalog.all_resources()] + template_assets()


def dbt_default_args() -> dict:
    """Task defaults of the two dbt DAGs: at least one retry, with backoff, two hours per task."""
    return default_args(timedelta(hours=2), min_retries=1)


def prepare_warehouse() -> str:
    """Roles, schemas, every source table, the transformer's CREATE grant and the active HMAC key.

    Returns the key id. A missing key fails the task without retries: an operator must set one.
    """
    from market_access import deid, warehouse
    from market_access.dbt import prepare_warehouse as prepare
    from market_access.orchestration.connections import hmac_key_variable, warehouse_config

    with warehouse.connect(warehouse_config(), autocommit=True) as conn:
        try:
            return prepare(conn, settings(), key_variable=hmac_key_variable())
        except deid.MissingKeyError as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc


def require_manifest() -> None:
    """The Cosmos DAGs render from dbt_project/target/manifest.json, which `make manifest` builds."""
    if not MANIFEST.exists():
        raise FileNotFoundError(
            f"{MANIFEST} is missing: run `make manifest` (dbt parse) before the warehouse DAGs are parsed"
        )


def no_freshness_skips(context, dag, task_group, nodes, sources_json) -> list:
    """The watcher producer's freshness callback: skip nothing.

    Cosmos' default skips every model whose sources are all stale (status warn or error). Our
    freshness only warns (an empty source on day one is "infinitely old"): a late source never stops
    the build; which department is late is a quality rule.
    """
    return []


def dbt_task_group(
    group_id: str,
    select: list[str],
    exclude: list[str] | None = None,
):
    """A Cosmos DbtTaskGroup over part of the project in Cosmos' WATCHER mode: one `dbt build` of the
    whole selection (the producer task `dbt_producer_watcher`), and per model or seed one Airflow task
    that reports its outcome and its tests' from the producer's events (with dbt's message when one
    failed; orchestration/watchers.py); source freshness tasks as before (warn-only). The producer
    pushes only the XComs the watchers read (orchestration/producer.py).

    Tests run only when all the models they test are selected, or when they are defined in a selected
    path (dbt's cautious indirect selection): a relationships test from a mart to a seed belongs to
    publish_marts, not to the build of the seed. A test on two models is reported by the task of
    each.
    """
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import (
        PRODUCER_WATCHER_TASK_ID,
        ExecutionMode,
        LoadMode,
        SourceRenderingBehavior,
        TestBehavior,
        TestIndirectSelection,
    )

    from market_access.orchestration.producer import adopt
    from market_access.orchestration.watchers import WITH_ITS_TESTS, report_tests

    require_manifest()
    group = DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=PROJECT_DIR, manifest_path=MANIFEST, install_dbt_deps=False
        ),
        profile_config=ProfileConfig(
            profile_name="market_access",
            target_name="warehouse",
            profile_mapping=cosmos_profile_mapping("warehouse"),
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            dbt_executable_path=str(dbt_executable()),
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
            # the producer: one dbt build; a retry would only skip (Cosmos), so none. dbt's unit tests
            # check our SQL on fixed inputs: they run in `make test` and CI (as dbt advises), not
            # in every day's build, where they would only repeat the same answer
            setup_operator_args={
                "freshness_callback": no_freshness_skips,
                "retries": 0,
                "dbt_cmd_flags": ["--exclude-resource-type", "unit_test"],
            },
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=select,
            exclude=exclude or [],
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            # no test tasks: each model's task reports its tests too (watchers.py); the producer's
            # build still runs them (_build_with_tests)
            test_behavior=TestBehavior.NONE,
            should_detach_multiple_parents_tests=False,
            emit_datasets=False,
        ),
        operator_args={"install_deps": False},
        default_args={"owner": OWNER},
    )
    producer = adopt(group.get_child_by_label(PRODUCER_WATCHER_TASK_ID))
    _build_with_tests(producer)
    _run_watchers_after_producer(group, producer)
    # a model's task waits for the tests the producer's `dbt build` runs on it, and only those (Cosmos
    # lists every test on the model, also those of later layers; their results never come)
    ran = producer_tests(select, exclude or [])
    producer.tests_per_model = {
        model: kept
        for model, tests in producer.tests_per_model.items()
        if (kept := [t for t in tests if t in ran])
    }
    for task in group.iter_tasks():
        if type(task) in WITH_ITS_TESTS:
            report_tests(task, producer.tests_per_model.get(task.model_unique_id, []))
    return group


def _build_with_tests(producer) -> None:
    """Take back the `--resource-type model|seed|snapshot` flags Cosmos gives the producer for
    `TestBehavior.NONE`: its `dbt build` runs the selection's tests as before, and the nodes' own
    tasks report them."""
    flags, kept = list(producer.dbt_cmd_flags or []), []
    while flags:
        flag = flags.pop(0)
        if flag == "--resource-type" and flags:
            flags.pop(0)
            continue
        kept.append(flag)
    producer.dbt_cmd_flags = kept


def _path_selected(path: str, selectors: list[str]) -> bool:
    return any(
        path == p or path.startswith(p.rstrip("/") + "/")
        for p in (s.removeprefix("path:") for s in selectors)
    )


def producer_tests(select: list[str], exclude: list[str], manifest: Path = MANIFEST) -> set[str]:
    """The unique ids of the tests `dbt build --select … --exclude … --indirect-selection cautious` runs.

    From the manifest, as dbt selects them (the selectors are all `path:`): a test defined in a
    selected path, or a test all of whose parents are selected; none in an excluded path or on an
    excluded node.
    tests/unit/test_watcher_tests.py checks this against `dbt ls`.
    """
    nodes = json.loads(manifest.read_text(encoding="utf-8"))["nodes"]

    def chosen(node: dict) -> bool:
        path = node["original_file_path"]
        return _path_selected(path, select) and not _path_selected(path, exclude)

    resources = {uid: n for uid, n in nodes.items() if n["resource_type"] != "test"}
    selected = {uid for uid, n in resources.items() if chosen(n)}
    excluded = {uid for uid, n in resources.items() if _path_selected(n["original_file_path"], exclude)}
    return {
        uid
        for uid, n in nodes.items()
        if n["resource_type"] == "test"
        and not _path_selected(n["original_file_path"], exclude)
        and not set(n["depends_on"]["nodes"]) & excluded  # excluding a model excludes its tests
        and (chosen(n) or set(n["depends_on"]["nodes"]) <= selected)
    }


def _run_watchers_after_producer(group, producer) -> None:
    """Put the producer upstream of every watcher that has no upstream in the group.

    Cosmos leaves them unconnected in a task group, so under `airflow dags test` (one task at a
    time, `make run`) a watcher picked before the producer would wait for ever. After the producer
    they read its finished results at once. `one_done`: they also run when the producer failed (so a
    failed model fails its own task, with dbt's message), and are skipped only when the producer
    never ran.
    """
    from airflow.task.trigger_rule import TriggerRule
    from cosmos.constants import PRODUCER_WATCHER_DONE_TASK_ID

    # Cosmos' gate after the producer: done whatever the producer's outcome, so that once a failed
    # model is fixed and its task cleared and rerun, what follows the group can run (the failure
    # itself is the failed model's or test's task; the DAG files also put the preparing task
    # directly upstream of what follows, so a failed preparation is never masked by skips)
    group.get_child_by_label(PRODUCER_WATCHER_DONE_TASK_ID).trigger_rule = TriggerRule.ALL_DONE
    tasks = list(group.iter_tasks())
    ids = {t.task_id for t in tasks}
    for task in tasks:
        if task is producer or task.task_id in producer.downstream_task_ids:
            continue
        if not (task.upstream_task_ids & ids):
            producer >> task
            task.trigger_rule = TriggerRule.ONE_DONE


def cosmos_profile_mapping(conn_id: str = "warehouse"):
    """Cosmos' Postgres user/password mapping for the `warehouse` connection, role transformer.

    dbt runs `DBT_THREADS` models at a time (2, as in profiles.yml; Cosmos' default is one).
    A connection without a password (the embedded server trusts local users) gets an empty one:
    Cosmos insists on a value for the secret field, and trust authentication ignores it. A
    connection without a port gets 5432 (dbt requires one; a socket path uses .s.PGSQL.5432).
    """
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    class _Mapping(PostgresUserPasswordProfileMapping):
        def get_dbt_value(self, name: str):
            value = super().get_dbt_value(name)
            if value is None and name == "password":
                return ""
            if value is None and name == "port":  # a socket directory or default port: libpq's default
                return 5432
            return value

        def can_claim_connection(self) -> bool:
            return self.conn.conn_type in ("postgres", "postgresql")

    # threads as in profiles.yml: Cosmos' generated profile would otherwise run dbt on one thread
    return _Mapping(
        conn_id=conn_id,
        profile_args={"schema": "staging", "role": "transformer", "threads": settings().dbt_threads},
    )
