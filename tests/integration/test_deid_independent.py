"""De-identification against values nobody here wrote: an independent generator plants people
(compound surnames, IDs and phones in every spelling, landlines, e-mails, 个体工商户 with broken
codes) into the simulators' records and the departments' files; after a full `dbt build` no planted
value may appear in any text column of staging, intermediate, marts (or pub)."""

from __future__ import annotations

from collections import Counter

import psycopg
import pytest
from pi_independent import plant_submissions, plant_world, scan  # tests/: pytest puts it on sys.path
from pi_scan import text_values
from test_sync import make_servers, sync_everything
from warehouse_world import prepare, scratch_database

from market_access import warehouse
from market_access.dbt import run_dbt
from market_access.simulators.submissions import generate as generate_submissions
from market_access.simulators.world import World
from market_access.submissions.inbox import process_inbox


@pytest.fixture(scope="module")
def planted_build(pg_server, tmp_path_factory):
    """World(23, 0.01) with the independent plants, synced, the departments' files loaded, full dbt build."""
    world = World(seed=23, scale=0.01)
    planted = plant_world(world, seed=97)
    servers = make_servers(world)
    try:
        with scratch_database(pg_server, "t_deid") as cfg, warehouse.connect(cfg, autocommit=True) as conn:
            depts = prepare(conn)
            sync_everything(conn, servers)
            inbox = tmp_path_factory.mktemp("inbox")
            generate_submissions(inbox, seed=23, directory=depts)
            process_inbox(conn, inbox, depts, settle_seconds=0)
            plant_submissions(conn, 98, planted)
            run_dbt(["build"], cfg, target_path=tmp_path_factory.mktemp("dbt-target"))
            yield {"conn": conn, "planted": planted}
    finally:
        for s in servers.values():
            s.stop()


def layers(conn) -> tuple[str, ...]:
    present = {r[0] for r in conn.execute("select nspname from pg_namespace").fetchall()}
    return tuple(s for s in ("staging", "intermediate", "marts", "pub") if s in present)


def test_no_planted_value_in_clear(planted_build):
    conn, planted = planted_build["conn"], planted_build["planted"]
    assert len(planted.names()) > 150 and len(planted.shops) > 30  # the plants really happened
    leaks = scan(text_values(conn, layers(conn)), planted)
    by_place = Counter((rel, col, kind) for rel, col, kind, _ in leaks)
    for (rel, col, kind), n in sorted(by_place.items()):
        print(f"leak: {rel}.{col} {kind} × {n}")
    assert not leaks, sorted(by_place.items())


def test_evaluation_comments_keep_their_meaning(planted_build):
    conn, planted = planted_build["conn"], planted_build["planted"]
    ids = sorted(planted.evaluation_comments)
    rows = dict(
        conn.execute(
            "select evaluation_id, comment_scrubbed from staging.stg_gov_service__evaluations where evaluation_id = any(%s)",
            (ids,),
        ).fetchall()
    )
    # planted as 办事员态度差，请回电<mobile in some spelling>，我是<name of the rated case's contact>
    assert rows == {i: "办事员态度差，请回电[手机号]，我是[姓名]" for i in ids}


def test_legal_persons_with_a_valid_code_stay_in_clear(planted_build):
    conn, planted = planted_build["conn"], planted_build["planted"]
    rows = dict(
        conn.execute(
            "select penalty_id, party_name from staging.stg_credit__admin_penalties where penalty_id = any(%s)",
            (sorted(planted.legal_persons),),
        ).fetchall()
    )
    assert rows == planted.legal_persons  # 双公示: an enterprise with a valid 91/93 code is public


def test_shops_of_unknown_kind_are_persons(planted_build):
    conn, planted = planted_build["conn"], planted_build["planted"]
    ids = planted.records["cases"]
    rows = conn.execute(
        "select is_applicant_person, applicant_name, applicant_name_pseudonym is not null, applicant_name_masked "
        "from staging.stg_gov_service__cases where case_id = any(%s)",
        (ids,),
    ).fetchall()
    assert len(rows) == len(set(ids))
    assert all(r[0] and r[1] is None and r[2] and r[3] for r in rows)


def test_the_name_dictionary_is_not_for_analysts(planted_build):
    conn, planted = planted_build["conn"], planted_build["planted"]
    conn.execute("set role transformer")
    try:
        n = conn.execute(
            "select count(*) from deid.person_names where name = any(%s)", (sorted(planted.names()),)
        ).fetchone()[0]
    finally:
        conn.execute("reset role")
    # every planted person named in a name field (not the context-only ones) is in the dictionary
    assert n == len({p.name for p in planted.people})
    conn.execute("set role analyst")
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select name from deid.person_names limit 1")
    finally:
        conn.execute("reset role")
