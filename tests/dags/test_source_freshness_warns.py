"""Source freshness only warns (issue #9): on an empty warehouse — no sync, no submitted file, no quality
run yet — `dbt source freshness` and the Cosmos-rendered freshness tasks of build_warehouse succeed
(the latter asserted in test_failing_model.py).

dbt 1.11 reads an empty table's (or an all-null loaded_at column's) max(loaded_at) as null and takes it
as "infinitely long ago" (BaseAdapter._create_freshness_response): the age exceeds warn_after, and with
no error_after anywhere the status is WARN, which neither fails `dbt source freshness` nor Cosmos'
DbtSourceLocalOperator (it raises only on a failed dbt invocation)."""

from __future__ import annotations

import json

import pytest
from warehouse_world import prepare  # tests/: pytest puts it on sys.path via rootdir conftest

from market_access.dbt import run_dbt

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

EMPTY_SUBMISSIONS = "submissions__barrier_complaints_current"  # no department has sent one on day one


def test_freshness_warns_on_an_empty_warehouse(warehouse_cfg, wconn, tmp_path):
    prepare(wconn)
    assert wconn.execute(f"select count(*) from raw.{EMPTY_SUBMISSIONS}").fetchone()[0] == 0
    proc = run_dbt(["source", "freshness"], warehouse_cfg, target_path=tmp_path, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    results = json.loads((tmp_path / "sources.json").read_text())["results"]
    status = {r["unique_id"].removeprefix("source.market_access."): r["status"] for r in results}
    # every source with freshness is checked; all are empty, so each warns and none errors
    assert status[f"submissions.{EMPTY_SUBMISSIONS}"] == "warn"
    assert status["gov_service.gov_service__evaluations"] == "warn"
    assert set(status.values()) == {"warn"}, status
    # sources without freshness (their reason is in their YAML) are not checked at all
    assert not any(k.startswith(("quality.", "directory.")) for k in status)


# The Cosmos freshness tasks: since issue #13 build_warehouse runs in Cosmos' watcher mode, where the
# producer task runs `dbt source freshness` for the whole selection and each `<source>_source` task
# reads its source's status (warn counts as success); such a task alone (`airflow tasks test`) has no
# producer to read from. That every freshness task succeeds on an empty warehouse is asserted on a
# whole `airflow dags test build_warehouse` run in tests/dags/test_failing_model.py.
