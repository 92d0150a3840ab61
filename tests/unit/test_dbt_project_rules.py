"""The dbt project by its own rules (style.md, issue #10), read from the manifest `make manifest` builds:
only staging calls source(); every model has a tested key; every source has warn-only freshness or a
stated reason for having none."""

from __future__ import annotations

import json
import subprocess
from functools import cache

import pytest

from market_access.dbt import PROJECT_DIR

MANIFEST = PROJECT_DIR / "target" / "manifest.json"
REPO = PROJECT_DIR.parent


@cache
def manifest() -> dict:
    # `make manifest` is a no-op when the manifest is newer than every dbt file
    subprocess.run(["make", "-s", "manifest"], cwd=REPO, check=True)
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def models() -> dict[str, dict]:
    return {uid: n for uid, n in manifest()["nodes"].items() if n["resource_type"] == "model"}


def key_tests() -> dict[str, set[str]]:
    """Per model: the keys its tests guard — a column with both `unique` and `not_null`, or a
    `unique_key` (several columns, unique and none null)."""
    unique: dict[str, set[str]] = {}
    not_null: dict[str, set[str]] = {}
    keys: dict[str, set[str]] = {}
    for node in manifest()["nodes"].values():
        meta = node.get("test_metadata") or {}
        model = node.get("attached_node")
        if node["resource_type"] != "test" or not model:
            continue
        if meta.get("name") == "unique":
            unique.setdefault(model, set()).add(node["column_name"])
        elif meta.get("name") == "not_null":
            not_null.setdefault(model, set()).add(node["column_name"])
        elif meta.get("name") == "unique_key":
            keys.setdefault(model, set()).add("+".join(meta["kwargs"]["columns"]))
    for model, cols in unique.items():
        keys.setdefault(model, set()).update(cols & not_null.get(model, set()))
    return keys


def test_only_staging_calls_source():
    outside = {
        n["name"]: n["sources"]
        for n in models().values()
        if n["sources"] and not n["original_file_path"].startswith("models/staging/")
    }
    assert not outside, outside


def test_every_model_has_a_tested_key():
    keys = key_tests()
    missing = sorted(n["name"] for uid, n in models().items() if not keys.get(uid))
    assert not missing, f"models without a unique + not_null (or unique_key) test: {missing}"


def test_every_source_has_warn_only_freshness_or_a_reason():
    problems = []
    for uid, src in manifest()["sources"].items():
        freshness = src.get("freshness") or {}
        warn = (freshness.get("warn_after") or {}).get("count")
        error = (freshness.get("error_after") or {}).get("count")
        reason = (src.get("meta") or {}).get("freshness_none_reason") or (
            (src.get("config") or {}).get("meta") or {}
        ).get("freshness_none_reason")
        if error:
            problems.append(f"{uid}: error_after set (freshness must only warn)")
        if warn and not src.get("loaded_at_field"):
            problems.append(f"{uid}: freshness without loaded_at_field")
        if not warn and not (reason and reason.strip()):
            problems.append(f"{uid}: no freshness and no meta.freshness_none_reason")
    assert not problems, problems


@pytest.mark.parametrize("name", ["int_quality__latest_run", "mart_data_quality_scorecard"])
def test_quality_results_are_read_through_staging(name):
    node = next(n for n in models().values() if n["name"] == name)
    assert any(d.startswith("model.market_access.stg_quality__") for d in node["depends_on"]["nodes"])


def test_quality_staging_is_built_after_the_quality_run():
    """build_warehouse runs before the quality run, publish_marts after it: the staging views over
    ops.quality_* must belong to the second (the selectors are paths into the manifest)."""
    from market_access.orchestration import warehouse as wh

    def selected(select: list[str], exclude: list[str]) -> set[str]:
        def hit(n, sel):
            return n["original_file_path"].startswith(sel.removeprefix("path:") + "/")

        return {
            n["name"]
            for n in models().values()
            if any(hit(n, s) for s in select) and not any(hit(n, s) for s in exclude)
        }

    build = selected(wh.BUILD_SELECT, wh.BUILD_EXCLUDE)
    publish = selected(wh.PUBLISH_SELECT, [])
    quality_staging = {n["name"] for n in models().values() if n["name"].startswith("stg_quality__")}
    assert len(quality_staging) == 3
    assert quality_staging <= publish
    assert not quality_staging & build
    assert not build & publish
    assert build | publish == {n["name"] for n in models().values()}
