"""Airflow DAG: 同步 政务服务一体化平台 (`gov_service`) 到原始层 raw.

The tasks, schedule and Assets come from `include/market_access/sources/systems.yml`;
see `market_access.orchestration.sync_dag` for what each task does.
"""

from market_access.orchestration.sync_dag import build_sync_dag

dag = build_sync_dag("gov_service")
