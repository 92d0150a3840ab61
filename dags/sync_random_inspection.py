"""Airflow DAG: 同步 “双随机、一公开”监管平台 (`random_inspection`) 到原始层 raw.

The tasks, schedule and Assets come from `include/market_access/sources/systems.yml`;
see `market_access.orchestration.sync_dag` for what each task does.
"""

from market_access.orchestration.sync_dag import build_sync_dag

dag = build_sync_dag("random_inspection")
