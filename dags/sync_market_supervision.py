"""Airflow DAG: 同步 市场监管信息系统 (`market_supervision`) 到原始层 raw.

The tasks, schedule and Assets come from `include/market_access/sources/systems.yml`;
see `market_access.orchestration.sync_dag` for what each task does.
"""

from market_access.orchestration.sync_dag import build_sync_dag

dag = build_sync_dag("market_supervision")
