"""The tests each Cosmos watcher producer runs (issue #13): `producer_tests()` against dbt's own selection.

A model's test task in watcher mode passes once every test expected for it has reported; expecting a
test the producer's `dbt build` does not run would let that task pass without any result, expecting
too few would let it pass before a failing test reported. So the expected set must be exactly what
dbt selects: here dbt itself (`dbt ls`, same --select/--exclude/--indirect-selection as the producer,
no database needed) is the reference.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from market_access.dbt import PROJECT_DIR, dbt_executable
from market_access.orchestration import warehouse as wh

pytestmark = pytest.mark.slow  # two `dbt ls` (a project parse each)

DAGS = {
    "build_warehouse": (wh.BUILD_SELECT, wh.BUILD_EXCLUDE),
    "publish_marts": (wh.PUBLISH_SELECT, []),
}


def dbt_ls_tests(select: list[str], exclude: list[str], target) -> set[str]:
    env = {**os.environ, "DBT_HOST": "unused", "DBT_USER": "unused", "DBT_DBNAME": "unused",
           "DBT_PROFILES_DIR": str(PROJECT_DIR)}
    cmd = [str(dbt_executable()), "ls", "--quiet", "--target-path", str(target), "--resource-type", "test",
           "--indirect-selection", "cautious", "--output", "json", "--output-keys", "unique_id",
           "--select", *select]
    if exclude:
        cmd += ["--exclude", *exclude]
    out = subprocess.run(cmd, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return {json.loads(line)["unique_id"] for line in out.stdout.splitlines() if line.startswith("{")}


@pytest.mark.parametrize("dag_id", DAGS)
def test_producer_tests_are_what_dbt_selects(dag_id, tmp_path):
    select, exclude = DAGS[dag_id]
    expected = dbt_ls_tests(select, exclude, tmp_path)
    assert expected  # each DAG runs tests
    assert wh.producer_tests(select, exclude) == expected


def test_a_mart_to_seed_relationship_belongs_to_publish_marts():
    """Cautious selection, as before watcher mode: defined in models/marts, so publish_marts runs it;
    build_warehouse (which builds the seed) does not, its mart parent not being selected there."""
    nodes = json.loads(wh.MANIFEST.read_text(encoding="utf-8"))["nodes"]
    to_seed = {
        uid for uid, n in nodes.items()
        if n["resource_type"] == "test" and (n.get("test_metadata") or {}).get("name") == "relationships"
        and any(d.startswith("seed.") for d in n["depends_on"]["nodes"])
        and any(d.startswith("model.") and nodes[d]["original_file_path"].startswith("models/marts/")
                for d in n["depends_on"]["nodes"])
    }
    assert to_seed
    assert to_seed <= wh.producer_tests(*DAGS["publish_marts"])
    assert not to_seed & wh.producer_tests(*DAGS["build_warehouse"])
