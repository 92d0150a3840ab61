"""What a sync task runs: resolve the connections Airflow holds, then sync one resource."""

from __future__ import annotations

from datetime import datetime

from market_access.orchestration.connections import source_connection, warehouse_config


def run_sync(system: str, resource: str, window_end: datetime) -> dict:
    """Sync one resource up to the run's window end; returns the batch summary (pushed to XCom)."""
    from market_access import warehouse
    from market_access.load.sync import sync_resource
    from market_access.settings import settings
    from market_access.sources import catalog
    from market_access.sources.client import ContractClient, PermanentSourceError

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
