"""A DAG task against a warehouse older than PostgreSQL 15 fails at once, without retries."""

from __future__ import annotations

import pytest
from pg_servers import VersionStandIn  # tests/ (on sys.path through tests/conftest.py)

from market_access import warehouse


def test_a_task_fails_without_retries(monkeypatch):
    """What every DAG task resolves first (orchestration's warehouse_config) turns the refusal into
    AirflowFailException, which Airflow does not retry."""
    from airflow.sdk.exceptions import AirflowFailException

    from market_access.orchestration.connections import warehouse_config

    with VersionStandIn("14.11") as server:
        monkeypatch.setenv(warehouse.ENV_VAR, server.config().airflow_uri())
        with pytest.raises(AirflowFailException, match="PostgreSQL 14.11 不受支持"):
            warehouse_config()
