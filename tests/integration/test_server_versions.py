"""Supported PostgreSQL versions (15–18): an older server is refused the moment the platform connects,
by the library, by a task (without retries) and by the command line; real 15 and 18 are accepted."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pg_servers import VersionStandIn  # tests/: sibling module

from market_access import warehouse

REFUSAL_ZH = "数仓 PostgreSQL 14.11 不受支持：本平台支持 PostgreSQL 15、16、17、18"
REFUSAL_EN = "the platform supports PostgreSQL 15, 16, 17, 18"


def test_a_14_server_is_refused_on_connect():
    with VersionStandIn("14.11") as server:
        cfg = server.config()
        with pytest.raises(warehouse.UnsupportedServerError) as refused:
            warehouse.connect(cfg, connect_timeout=5)
    message = str(refused.value)
    assert REFUSAL_ZH in message and REFUSAL_EN in message
    assert f"PostgreSQL 14.11 at {cfg.display()}" in message  # names the server found and where
    assert refused.value.retryable is False
    assert server.queries == []  # decided from the start-up ParameterStatus: no query sent


def test_the_stand_in_answers_like_a_14_server():
    """The stand-in is faithful where it matters: a plain connection sees version 14.11 both ways."""
    import psycopg

    with (
        VersionStandIn("14.11") as server,
        psycopg.connect(server.config().conninfo(), connect_timeout=5) as conn,
    ):
        assert conn.info.server_version == 140011
        assert conn.execute("show server_version_num").fetchone() == ("140011",)
        assert conn.execute("select version()").fetchone()[0].startswith("PostgreSQL 14.11 ")


@pytest.mark.parametrize("server", ["pg_server", "pg15_server"])
def test_15_and_18_are_accepted(server, request):
    cfg = request.getfixturevalue(server)
    with warehouse.connect(cfg, autocommit=True) as conn:
        num = conn.execute("select current_setting('server_version_num')::int").fetchone()[0]
        assert conn.info.server_version == num
        assert num // 10000 == {"pg_server": 18, "pg15_server": 15}[server]
    assert warehouse.check_server(cfg) == num


def test_a_newer_server_is_accepted_with_a_warning(caplog):
    with VersionStandIn("19.1") as server, caplog.at_level("WARNING", logger="market_access.warehouse"):
        warehouse.connect(server.config(), connect_timeout=5).close()
        warehouse.connect(server.config(), connect_timeout=5).close()
    warned = [r.getMessage() for r in caplog.records if "19.1" in r.getMessage()]
    assert len(warned) == 1, warned  # once per server, not on every connection
    assert "newer than the tested versions 15, 16, 17, 18" in warned[0]


def test_the_command_line_refuses_at_once():
    """`python -m market_access up` with AIRFLOW_CONN_WAREHOUSE at a 14 server: exit 2, the message, no traceback."""
    with VersionStandIn("14.11") as server:
        env = {**os.environ, warehouse.ENV_VAR: server.config().airflow_uri()}
        out = subprocess.run(
            [sys.executable, "-m", "market_access", "up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 2, out.stdout + out.stderr
    assert REFUSAL_ZH in out.stderr and "Traceback" not in out.stderr
