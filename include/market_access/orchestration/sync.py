"""What a sync task runs: resolve the connections Airflow holds, then sync one resource."""

from __future__ import annotations

from datetime import datetime

from market_access import warehouse
from market_access.load.sync import sync_resource
from market_access.settings import settings
from market_access.sources import catalog
from market_access.sources.client import ContractClient, PermanentSourceError
from market_access.sources.connection import SourceConnection, env_var_for


def source_connection(system: str) -> SourceConnection:
    """The system's Airflow connection (env var, secrets backend or metadata DB) as a SourceConnection."""
    from airflow.sdk import BaseHook

    conn_id = catalog.system(system).conn_id
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException and friends
        raise RuntimeError(
            f"no Airflow connection {conn_id!r} for {catalog.system(system).title}: set {env_var_for(conn_id)} "
            f"(see README, 'Pointing at the real systems')"
        ) from exc
    return SourceConnection.from_parts(
        system,
        scheme=conn.conn_type,
        host=conn.host,
        port=conn.port,
        login=conn.login,
        password=conn.password,
        extra=conn.extra_dejson,
    )


def warehouse_config() -> warehouse.WarehouseConfig:
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection("warehouse")
    except Exception as exc:
        raise RuntimeError(f"no Airflow connection 'warehouse': set {warehouse.ENV_VAR}") from exc
    cfg = warehouse.WarehouseConfig.from_airflow_connection(conn)
    try:
        # every task resolves the warehouse here first: an unsupported server fails it at once
        warehouse.check_server(cfg)
    except warehouse.UnsupportedServerError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc
    return cfg


def run_sync(system: str, resource: str, window_end: datetime) -> dict:
    """Sync one resource up to the run's window end; returns the batch summary (pushed to XCom)."""
    s = settings()
    res = catalog.system(system).resource(resource)
    client = ContractClient(
        source_connection(system),
        timeout=s.http_timeout,
        max_attempts=s.max_attempts,
        backoff_max=s.backoff_max,
    )
    with warehouse.connect(warehouse_config(), autocommit=True) as conn:
        try:
            result = sync_resource(
                conn, client, res, until=window_end, page_size=s.page_size, lookback=s.lookback
            )
        except PermanentSourceError as exc:
            from airflow.sdk.exceptions import AirflowFailException

            # retrying cannot fix bad credentials or parameters: fail now, without task retries
            raise AirflowFailException(str(exc)) from exc
    out = result.as_dict()
    out["http"] = dict(client.stats)
    return out
