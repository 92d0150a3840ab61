"""What the warehouse DAGs run: preparing the warehouse, the Cosmos task groups, the quality run.

The build is split where the quality rules sit: `build_warehouse` builds seeds, staging and
intermediate; `data_quality` validates staging per department (Great Expectations) and mails the
departments; `publish_marts` builds the facts and indicator marts, which enforce the run's verdicts.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from market_access.dbt import PROJECT_DIR, dbt_executable
from market_access.settings import BEIJING, settings

OWNER = "数据管理局"
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


def dbt_default_args() -> dict:
    """Task defaults of the two dbt DAGs: at least one retry, with backoff, two hours per task."""
    return {
        "owner": OWNER,
        "retries": max(1, settings().task_retries),
        "retry_delay": timedelta(seconds=settings().retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=2),
    }


def prepare_warehouse() -> str:
    """Roles, schemas, every source table, the transformer's CREATE grant and the active HMAC key.

    Returns the key id. A missing key fails the task without retries: an operator must set one.
    """
    from market_access import deid, warehouse
    from market_access.dbt import prepare_warehouse as prepare
    from market_access.orchestration.sync import warehouse_config

    with warehouse.connect(warehouse_config(), autocommit=True) as conn:
        try:
            return prepare(conn, settings())
        except deid.MissingKeyError as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc


def require_manifest() -> None:
    """The Cosmos DAGs render from dbt_project/target/manifest.json, which `make manifest` builds."""
    if not MANIFEST.exists():
        raise FileNotFoundError(
            f"{MANIFEST} is missing: run `make manifest` (dbt parse) before the warehouse DAGs are parsed"
        )


def dbt_task_group(
    group_id: str,
    select: list[str],
    exclude: list[str] | None = None,
    *,
    detach_multi_parent_tests: bool = True,
):
    """A Cosmos DbtTaskGroup over part of the project: one `dbt build` task per model (the model and
    its tests), source freshness upstream, profile from the `warehouse` connection (role transformer).

    Tests run only when all the models they test are selected (cautious indirect selection): a
    relationships test from a mart to a seed belongs to publish_marts, not to the build of the seed.
    With `detach_multi_parent_tests` such a test gets its own task after all its parents in the group.
    """
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import LoadMode, SourceRenderingBehavior, TestBehavior, TestIndirectSelection

    from market_access.dbt import cosmos_profile_mapping

    require_manifest()
    return DbtTaskGroup(
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
            dbt_executable_path=str(dbt_executable()), test_indirect_selection=TestIndirectSelection.CAUTIOUS
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=select,
            exclude=exclude or [],
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            # one `dbt build` per model (the model, then its tests): half the tasks of run + test
            test_behavior=TestBehavior.BUILD,
            should_detach_multiple_parents_tests=detach_multi_parent_tests,
            emit_datasets=False,
        ),
        operator_args={"install_deps": False},
        default_args={"owner": OWNER},
    )


def as_of_date(logical: datetime | None) -> date:
    """The Beijing date a quality run is "as of": QUALITY_AS_OF, else the run's logical date, else today."""
    if settings().quality_as_of is not None:
        return settings().quality_as_of
    if logical is None:
        return datetime.now(BEIJING).date()
    return logical.astimezone(BEIJING).date()


def run_quality(logical: datetime | None = None) -> dict:
    """Validate staging per department; a failed run raises (its run row says 'failed'). A run that
    could not check some relation ends 'incomplete' and the task still succeeds: it is logged and
    listed in the run's row, the bureau's summary and `make run`'s summary."""
    from market_access.orchestration.sync import warehouse_config
    from market_access.quality import run_quality as run

    summary = run(warehouse_config(), settings=settings(), as_of=as_of_date(logical))
    failed = [d for d in summary.departments if d.rules_failed]
    return {
        "run_id": summary.run_id,
        "data_date": summary.data_date.isoformat(),
        "status": summary.status,
        "duration_seconds": round(summary.duration_seconds, 1),
        "rules_evaluated": summary.rules_evaluated,
        "rules_failed": summary.rules_failed,
        "departments_failing": len(failed),
        "data_docs_dir": summary.data_docs_dir,
        "not_checked": [dict(n) for n in summary.not_checked],
    }
