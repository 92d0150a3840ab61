"""Airflow DAG: 构建数仓 (dbt 贴源层 staging → intermediate → marts), run through Cosmos.

- **Trigger**: whenever a sync DAG updates one of the raw Assets (`raw.<system>__<resource>`);
  one run at a time, so updates that arrive during a run are picked up by the next one.
- **First task** `install_deid_key`: creates roles/schemas if needed, lets the transformer create the
  layer schemas, and installs the HMAC key for pseudonyms (environment `MARKET_ACCESS_HMAC_KEY` /
  `MARKET_ACCESS_HMAC_KEY_ID`, else the Airflow Variable `market_access_hmac_key`; the embedded
  default generates a local key once). The key never reaches dbt, its SQL or the logs.
- **dbt**: one Airflow task per model (run, then its tests) and one source-freshness task per raw
  table upstream of its models; rendered from `dbt_project/target/manifest.json`, which `dbt parse`
  builds ahead of time so parsing this DAG stays cheap. Without a manifest the DAG falls back to a
  single `dbt build` task.
- **Profile**: from the Airflow connection `warehouse` (role `transformer`; all objects belong to it).
- **Incremental**: the case and evaluation staging models merge only what changed since their last
  run; deletions (撤销) delivered by the sources are applied.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetAny, dag, task

from market_access.dbt import PROJECT_DIR, dbt_executable
from market_access.settings import settings
from market_access.sources import catalog

OWNER = "数据管理局"
MANIFEST = PROJECT_DIR / "target" / "manifest.json"


@dag(
    dag_id="build_warehouse",
    description="dbt 构建数仓 (Cosmos): staging → intermediate → marts",
    schedule=AssetAny(*(Asset(r.asset_name) for r in catalog.all_resources())),
    start_date=pendulum.parse(settings().start_date, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["warehouse", "dbt", "cosmos"],
    doc_md=__doc__,
    default_args={
        "owner": OWNER,
        "retries": max(1, settings().task_retries),
        "retry_delay": timedelta(seconds=settings().retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=2),
    },
)
def build_warehouse():
    @task
    def install_deid_key() -> str:
        """Roles, schemas, the transformer's CREATE grant and the active HMAC key (returns its id)."""
        from market_access import dbt, deid, warehouse
        from market_access.orchestration.sync import warehouse_config

        with warehouse.connect(warehouse_config(), autocommit=True) as conn:
            try:
                return dbt.prepare_warehouse(conn, settings())
            except deid.MissingKeyError as exc:
                from airflow.sdk.exceptions import AirflowFailException

                raise AirflowFailException(str(exc)) from exc  # an operator must act; no retries

    prepared = install_deid_key()

    if not MANIFEST.exists():

        @task
        def build_without_manifest() -> None:
            """`dbt build` in one task, until `dbt parse` has produced the manifest."""
            from market_access.dbt import run_dbt
            from market_access.orchestration.sync import warehouse_config

            print(run_dbt(["build"], warehouse_config()).stdout[-20_000:])

        prepared >> build_without_manifest()
        return

    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import LoadMode, SourceRenderingBehavior

    from market_access.dbt import cosmos_profile_mapping

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=PROJECT_DIR, manifest_path=MANIFEST, install_dbt_deps=False
        ),
        profile_config=ProfileConfig(
            profile_name="market_access",
            target_name="warehouse",
            profile_mapping=cosmos_profile_mapping("warehouse"),
        ),
        execution_config=ExecutionConfig(dbt_executable_path=str(dbt_executable())),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            # a test on two models (relationships: mart → seed) gets its own task after both;
            # attached to one parent it would run before the other exists
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,
        ),
        operator_args={"install_deps": False},
        default_args={"owner": OWNER},
    )
    prepared >> dbt


build_warehouse()
