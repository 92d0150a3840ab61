"""What the warehouse DAGs run: preparing the warehouse, the Cosmos task groups, the Assets between them.

The build is split where the quality rules sit: `build_warehouse` builds seeds, staging and
intermediate; `data_quality` validates staging per department (Great Expectations) and mails the
departments; `publish_marts` builds the facts and indicator marts, which enforce the run's verdicts.
"""

from __future__ import annotations

from datetime import timedelta

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


def cosmos_profile_mapping(conn_id: str = "warehouse"):
    """Cosmos' Postgres user/password mapping for the `warehouse` connection, role transformer.

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

    return _Mapping(conn_id=conn_id, profile_args={"schema": "staging", "role": "transformer"})
