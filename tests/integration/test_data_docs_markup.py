"""Data Docs (Great Expectations renders them) with hostile values from data: a real GX run on the
committed project (market_access.quality.gxrun.Project) against the embedded PostgreSQL, a failing
expectation whose unexpected values — which Data Docs list — are hostile strings a department
could type; its pages parsed as HTML (issue 12, situation 2). Without docs_text's escaping GX
writes them into the page as markup (an <img onerror> element in the DOM)."""

from __future__ import annotations

import hostile as h  # tests/: pytest puts it on sys.path
import pytest

from market_access.quality.batches import DEPT_COLUMN, KEY_COLUMN
from market_access.quality.docs_text import escape_stored_results
from market_access.quality.gxrun import BATCH_DEFINITION, DATASOURCE, RESULT_FORMAT, Project

REPO = h.Path(__file__).resolve().parents[2]
DEPT = h.SCJ
VALUES = h.MARKUP_VALUES[:3]  # three rows, each a hostile 负面清单事项编码 (a 6-digit code by the rule)

pytestmark = pytest.mark.slow


def test_hostile_values_reach_data_docs_as_text(wconn, warehouse_cfg, tmp_path):
    import great_expectations as gx

    wconn.execute(
        f"create table public.hostile_batch ({DEPT_COLUMN} text, {KEY_COLUMN} text, item_code text)"
    )
    with wconn.cursor() as cur:
        cur.executemany(
            "insert into public.hostile_batch values (%s, %s, %s)",
            [(DEPT, f"WG{i}", v) for i, v in enumerate(VALUES)] + [(DEPT, "WG9", "200012")],
        )
    docs = tmp_path / "data_docs"
    project = Project(REPO / "expectations", tmp_path / "gx", docs)
    project.create(warehouse_cfg, {"hostile": "public.hostile_batch"})
    context = project.context()
    batch = context.data_sources.get(DATASOURCE).get_asset("hostile").get_batch_definition(BATCH_DEFINITION)
    suite = context.suites.add(
        gx.ExpectationSuite(
            name=f"{DEPT}.hostile",
            expectations=[
                gx.expectations.ExpectColumnValuesToMatchRegex(
                    column="item_code", regex=r"^\d{6}$", meta={"rule_id": "SB-VC-009"}
                )
            ],
        )
    )
    vd = context.validation_definitions.add(gx.ValidationDefinition(name=suite.name, data=batch, suite=suite))
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(name=DEPT, validation_definitions=[vd], actions=[], result_format=RESULT_FORMAT)
    )
    result = checkpoint.run(batch_parameters={DEPT_COLUMN: DEPT})
    (run,) = result.run_results.values()
    (er,) = run.results
    assert er.result["unexpected_count"] == 3 and sorted(er.result["partial_unexpected_list"]) == sorted(
        VALUES
    )
    # as gxrun.validate does before it builds the pages
    escape_stored_results(context, list(result.run_results))
    context.build_data_docs(resource_identifiers=list(result.run_results), build_index=True)

    pages = [p for p in docs.rglob("*.html") if "validations" in p.parts]
    assert pages, f"no validation page under {docs}"
    html = "\n".join(p.read_text(encoding="utf-8") for p in pages)
    for value in VALUES:
        h.assert_text_not_markup(html, value)
