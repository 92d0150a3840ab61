"""gxrun.stored_just_now and gxrun.configurations_built_once: a checkpoint run inside them gives GX's
own results, reads no store to check freshness and builds each expectation's configuration once;
after them GX's freshness checks and its configuration property are back (a real GX run on the
committed project against the embedded PostgreSQL)."""

from __future__ import annotations

import pytest

from market_access.quality.batches import DEPT_COLUMN, KEY_COLUMN
from market_access.quality.gxrun import (
    BATCH_DEFINITION,
    DATASOURCE,
    RESULT_FORMAT,
    Project,
    configurations_built_once,
    stored_just_now,
)

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def comparable(result) -> list[tuple]:
    rows = []
    for run in result.run_results.values():
        for er in run.results:
            rows.append((er.expectation_config.type, er.success, dict(er.result or {})))
    return sorted(rows, key=repr)


def test_same_results_no_store_reads_and_checks_back_after(wconn, warehouse_cfg, tmp_path, monkeypatch):
    import great_expectations as gx
    from great_expectations.data_context.store.expectations_store import ExpectationsStore

    wconn.execute(f"create table public.fresh_batch ({DEPT_COLUMN} text, {KEY_COLUMN} text, amount int)")
    with wconn.cursor() as cur:
        cur.executemany(
            "insert into public.fresh_batch values (%s, %s, %s)",
            [("D1", "R1", 5), ("D1", "R2", -3), ("D1", "R3", None), ("D2", "R4", 7)],
        )
    project = Project(REPO / "expectations", tmp_path / "gx", tmp_path / "docs")
    project.create(warehouse_cfg, {"fresh": "public.fresh_batch"})
    context = project.context()
    batch = context.data_sources.get(DATASOURCE).get_asset("fresh").get_batch_definition(BATCH_DEFINITION)
    suite = context.suites.add(
        gx.ExpectationSuite(
            name="D1.fresh",
            expectations=[
                gx.expectations.ExpectColumnValuesToNotBeNull(column="amount"),
                gx.expectations.ExpectColumnValuesToBeBetween(column="amount", min_value=0),
                gx.expectations.ExpectColumnValuesToBeUnique(column=KEY_COLUMN),
            ],
        )
    )
    vd = context.validation_definitions.add(gx.ValidationDefinition(name=suite.name, data=batch, suite=suite))
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(name="D1", validation_definitions=[vd], actions=[], result_format=RESULT_FORMAT)
    )

    reads = []
    real_get = ExpectationsStore.get

    def counting_get(self, *args, **kwargs):
        reads.append(args)
        return real_get(self, *args, **kwargs)

    monkeypatch.setattr(ExpectationsStore, "get", counting_get)

    checked = comparable(checkpoint.run(batch_parameters={DEPT_COLUMN: "D1"}))
    reads_checked = len(reads)
    reads.clear()
    with stored_just_now():
        trusted = comparable(checkpoint.run(batch_parameters={DEPT_COLUMN: "D1"}))
    assert trusted == checked
    assert reads == []

    from great_expectations.expectations.expectation import Expectation

    original = Expectation.__dict__["configuration"]
    builds = []
    real_fget = original.fget
    monkeypatch.setattr(
        Expectation, "configuration", property(lambda self: builds.append(id(self)) or real_fget(self))
    )
    checkpoint.run(batch_parameters={DEPT_COLUMN: "D1"})
    built_each_read = len(builds)
    builds.clear()
    with stored_just_now(), configurations_built_once():
        once = comparable(checkpoint.run(batch_parameters={DEPT_COLUMN: "D1"}))
    assert once == checked
    # every object built its configuration once (GX reads it several times per expectation)
    assert len(builds) == len(set(builds)) and built_each_read > 2 * len(builds) > 0
    monkeypatch.setattr(Expectation, "configuration", original)
    # by hand: D1 has 3 rows, one null amount, one negative, keys unique
    by_type = {t: (ok, r) for t, ok, r in trusted}
    assert by_type["expect_column_values_to_not_be_null"][0] is False
    assert by_type["expect_column_values_to_not_be_null"][1]["unexpected_count"] == 1
    assert by_type["expect_column_values_to_be_between"][0] is False
    assert by_type["expect_column_values_to_be_between"][1]["unexpected_count"] == 1
    assert by_type["expect_column_values_to_be_unique"][0] is True
    assert reads_checked > 0
    assert Expectation.__dict__["configuration"] is original

    # after the block GX checks again: a suite changed in memory and not saved is refused
    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=KEY_COLUMN))
    suite.expectations[-1].column = "amount"  # now differs from the stored copy in a way GX sees
    from great_expectations.exceptions.resource_freshness import CheckpointRelatedResourcesFreshnessError

    with pytest.raises(
        CheckpointRelatedResourcesFreshnessError, match="has changed since it has last been saved"
    ):
        checkpoint.run(batch_parameters={DEPT_COLUMN: "D1"})
