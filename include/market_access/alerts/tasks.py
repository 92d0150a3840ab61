"""What Airflow tasks call: the warehouse from Airflow's `warehouse` connection, a dict for XCom."""

from __future__ import annotations


def send_quality_alerts(run_id: str) -> dict:
    """Mail the alerts of quality run `run_id` (after the run's results are stored)."""
    from market_access.alerts import send_alerts
    from market_access.orchestration.sync import warehouse_config

    return send_alerts(warehouse_config(), run_id).as_dict()


def send_submission_receipts() -> dict:
    """Mail every submission receipt not mailed yet (after the inbox was processed)."""
    from market_access.alerts import send_receipts
    from market_access.alerts.service import destination
    from market_access.orchestration.sync import warehouse_config

    return {"receipts": send_receipts(warehouse_config()), "to": destination()}
