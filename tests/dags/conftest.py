"""Airflow for the DAG tests: a throw-away AIRFLOW_HOME with a SQLite metadata DB, set before import."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_HOME = Path(tempfile.mkdtemp(prefix="airflow-home-"))

AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Shanghai",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    # Cosmos' parse cache of this session only (another pytest session may run the same DAGs)
    "AIRFLOW__COSMOS__CACHE_DIR": str(_HOME / "cosmos"),
    # as make run and docker-compose.yml set it (platform.WATCHER_BACKUP_ON_FAILURE_ONLY)
    "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
    # connections as contract §7 gives them; parsing a DAG never opens them
    "AIRFLOW_CONN_GOV_SERVICE": "http://gov:secret@127.0.0.1:9?base_path=%2Fgw",
    "AIRFLOW_CONN_MARKET_SUPERVISION": "http://ms:secret@127.0.0.1:9",
    "AIRFLOW_CONN_CREDIT": "https://cr:secret@127.0.0.1:9?verify=false",
    "AIRFLOW_CONN_RANDOM_INSPECTION": "http://ri:secret@127.0.0.1:9",
    "AIRFLOW_CONN_WAREHOUSE": "postgresql://postgres@%2Ftmp%2Fnowhere/warehouse",
}
os.environ.update(AIRFLOW_ENV)


@pytest.fixture(scope="session")
def airflow_db():
    """Migrate the metadata DB once per session (needed by `airflow dags test`)."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    out = subprocess.run([airflow, "db", "migrate"], capture_output=True, text=True, env=dict(os.environ))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return _HOME
