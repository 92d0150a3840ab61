"""Everything read from Airflow's connections and Variables, turned into the library's plain values.

The library never asks Airflow itself: a task resolves here what it needs (a SourceConnection, a
WarehouseConfig, an SmtpConnection or None, the HMAC key Variable's text) and passes the value on.
Airflow is imported inside the functions, so importing this module costs nothing at DAG parse time.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from market_access.sources import catalog
from market_access.sources.connection import SourceConnection, env_var_for

if TYPE_CHECKING:
    from market_access.alerts.transport import SmtpConnection
    from market_access.warehouse import WarehouseConfig

WAREHOUSE_CONN_ID = "warehouse"
SMTP_CONN_ID = "smtp_default"


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


def warehouse_config() -> WarehouseConfig:
    """The `warehouse` connection as a WarehouseConfig."""
    from airflow.sdk import BaseHook

    from market_access import warehouse

    try:
        conn = BaseHook.get_connection(WAREHOUSE_CONN_ID)
    except Exception as exc:
        raise RuntimeError(f"no Airflow connection {WAREHOUSE_CONN_ID!r}: set {warehouse.ENV_VAR}") from exc
    cfg = warehouse.WarehouseConfig.from_airflow_connection(conn)
    try:
        # every task resolves the warehouse here first: an unsupported server fails it at once, unretried
        warehouse.check_server(cfg)
    except warehouse.UnsupportedServerError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc
    return cfg


def smtp_connection(conn_id: str = SMTP_CONN_ID) -> SmtpConnection | None:
    """The mail relay, or None for the .eml outbox.

    `AIRFLOW_CONN_SMTP_DEFAULT` wins (parsed by the library, with its clear errors); otherwise Airflow
    is asked (secrets backends, metadata database); a connection Airflow does not know means the outbox.
    """
    from market_access.alerts import transport

    found = transport.resolve(conn_id)
    if found is not None:
        return found
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:
        if type(exc).__name__ == "AirflowNotFoundException":
            return None
        raise
    return transport.SmtpConnection.from_parts(
        host=conn.host,
        port=conn.port,
        login=conn.login,
        password=conn.password,
        extra=conn.extra_dejson,
        conn_id=conn_id,
        origin="Airflow connection",
    )


def hmac_key_variable() -> str | None:
    """The Airflow Variable `market_access_hmac_key`, or None when it is not set or unreachable.

    Asked only when the environment has no MARKET_ACCESS_HMAC_KEY (which wins anyway), so a task
    with the key in its environment never talks to the API server for it.
    """
    from market_access import deid

    if os.environ.get(deid.KEY_ENV, "").strip():
        return None
    from airflow.sdk import Variable

    try:
        return Variable.get(deid.AIRFLOW_VARIABLE, default=None)
    except Exception:  # noqa: BLE001 - no API server / no task context: the next source of the key
        return None
