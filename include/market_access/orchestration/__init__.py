"""The Airflow layer: what DAG files import and DAG tasks call, one module per DAG family.

- `connections`: Airflow connections and Variables turned into the library's plain values;
- `defaults`: owner, start date and default_args of every DAG;
- `sync` / `sync_dag`: the sync tasks and the per-system DAG factory;
- `submissions`, `warehouse`, `quality`: the inbox, the dbt (Cosmos) and the data-quality DAGs.

Imports point one way: dags/ → orchestration → the library (tests/unit/test_import_direction.py).
Heavy imports (Airflow operators, Cosmos, the library's services) stay inside functions, so
parsing a DAG file stays cheap.
"""
