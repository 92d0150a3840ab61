"""Staging end to end: simulators → raw → `dbt build` for real; row counts, PI scan, joins, increments, access."""

from __future__ import annotations

import hmac
import json
import re
from datetime import datetime, timedelta

import psycopg
import pytest
from pi_scan import find_leaks, norm, ric18  # tests/: shared with the end-to-end test
from stdnum.cn import ric
from test_sync import make_servers, sync_everything
from warehouse_world import (  # sibling module: pytest puts its folder on sys.path
    KEY,
    KEY_ID,
    prepare,
    scratch_database,
)

from market_access import warehouse
from market_access.dbt import run_dbt
from market_access.simulators.world import World
from market_access.sources import catalog

BUILD = ["build", "--select", "staging"]


def digits_phone(v: str) -> str:
    d = re.sub(r"\D", "", norm(v))
    return (
        d[4:]
        if d.startswith("0086") and len(d) == 15
        else (d[2:] if d.startswith("86") and len(d) == 13 else d)
    )


def live(world: World, res) -> dict[str, dict]:
    return {rid: rec for rid, rec in world.truth(res.system, res.name).items() if not rec["is_deleted"]}


def _stamp(store) -> str:
    return (datetime.fromisoformat(store.max_updated_at) + timedelta(seconds=1)).isoformat(" ", "seconds")


def plant_same_person(world: World) -> tuple[str, str, str]:
    """A 个体工商户's operator in entities and in a penalty, written differently by the two sources.

    Returns (entity id, penalty id, the clean 18-digit number).
    """
    entities = world.store("market_supervision", "entities")
    penalties = world.store("credit", "admin-penalties")
    by_uscc = {
        norm(e["uscc"]).upper(): e for e in entities.all().values() if not e["is_deleted"] and e["uscc"]
    }
    for pen in sorted(penalties.all().values(), key=lambda r: r["id"]):
        ent = by_uscc.get(norm(pen["uscc"] or "").upper())
        if pen["is_deleted"] or pen["party_category"] != "个体工商户" or ent is None or not pen["cert_no"]:
            continue
        clean = ric18(ent["legal_rep_cert_no"])
        if not ric.is_valid(clean) or clean[6:8] != "19":
            continue
        # entities: full-width digits and a 全角 space; the penalty: the 15-digit legacy form
        ent["legal_rep_cert_no"] = "".join(chr(ord(c) + 0xFEE0) for c in clean[:6]) + clean[6:] + "\u3000"
        ent["legal_rep_name"] = " " + norm(ent["legal_rep_name"]) + "\u3000"
        entities.replace(ent)
        pen["cert_no"] = clean[:6] + clean[8:17]
        pen["legal_rep_name"] = norm(ent["legal_rep_name"])
        penalties.replace(pen)
        return ent["id"], pen["id"], clean
    raise AssertionError("the world has no 个体工商户 penalty whose operator is in entities")


@pytest.fixture(scope="module")
def built(warehouse_server, tmp_path_factory):
    """World(11, 0.02) landed in raw, a test key installed, `dbt build --select staging` run."""
    target = tmp_path_factory.mktemp("dbt-target")
    world = World(seed=11, scale=0.02)
    planted = plant_same_person(world)
    servers = make_servers(world)
    try:
        with scratch_database(warehouse_server, "t_stg") as cfg, warehouse.connect(cfg, autocommit=True) as conn:
            prepare(conn)
            sync_everything(conn, servers)
            run_dbt(BUILD, cfg, target_path=target)
            yield {
                "cfg": cfg,
                "conn": conn,
                "world": world,
                "servers": servers,
                "planted": planted,
                "target": target,
            }
    finally:
        for s in servers.values():
            s.stop()


def count(conn, relation: str) -> int:
    return conn.execute(f"select count(*) from {relation}").fetchone()[0]


def test_every_resource_has_its_current_records(built):
    conn, world = built["conn"], built["world"]
    for res in catalog.all_resources():
        assert count(conn, f"staging.stg_{res.table}") == len(live(world, res)), res.table


def test_no_personal_information_in_clear(built):
    leaks = find_leaks(built["conn"], built["world"])
    assert not leaks, leaks[:20]


def test_the_same_person_joins_across_sources(built):
    conn = built["conn"]
    entity_id, penalty_id, clean = built["planted"]
    ent = conn.execute(
        """select legal_rep_cert_no_pseudonym, legal_rep_name_pseudonym, legal_rep_cert_no_masked, is_legal_rep_cert_no_valid
           from staging.stg_market_supervision__entities where entity_id = %s""",
        (entity_id,),
    ).fetchone()
    pen = conn.execute(
        """select cert_no_pseudonym, legal_rep_name_pseudonym, cert_no_masked, is_cert_no_valid
           from staging.stg_credit__admin_penalties where penalty_id = %s""",
        (penalty_id,),
    ).fetchone()
    expected = f"{KEY_ID}:" + hmac.new(KEY, clean.encode(), "sha256").hexdigest()
    assert ent[0] == pen[0] == expected
    assert ent[1] == pen[1] is not None
    assert ent[2] == pen[2] == clean[:3] + "*" * 11 + clean[-4:]
    assert ent[3] is pen[3] is True
    # and across systems generally: every penalty operator's number that entities also know joins
    joined = conn.execute(
        """select count(*) from staging.stg_credit__admin_penalties p
           join staging.stg_market_supervision__entities e on e.legal_rep_cert_no_pseudonym = p.cert_no_pseudonym
           where p.party_category = 'individual_business'"""
    ).fetchone()[0]
    assert joined >= 1


def test_codes_and_amounts(built):
    conn, world = built["conn"], built["world"]
    pen = world.truth("credit", "admin-penalties")
    fines = conn.execute(
        "select penalty_id, fine_amount_yuan from staging.stg_credit__admin_penalties"
    ).fetchall()
    for pid, yuan in fines:
        src = pen[pid]["fine_amount"]
        assert (yuan is None) == (src is None)
        if src is not None:
            assert abs(float(yuan) - src * 10000) < 0.005
    placeholders = conn.execute(
        "select count(*) from staging.stg_market_supervision__entities where is_uscc_placeholder and not is_uscc_valid"
    ).fetchone()[0]
    truth_placeholders = sum(
        1
        for r in live(world, catalog.system("market_supervision").resource("entities")).values()
        if norm(r["uscc"]) == "00000000000000000X"
    )
    assert placeholders == truth_placeholders >= 1


def test_analyst_cannot_read_staging(built):
    conn = built["conn"]
    for relation in ("staging.stg_gov_service__cases", "staging.stg_market_supervision__entities"):
        conn.execute("set role analyst")
        try:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"select 1 from {relation} limit 1")
        finally:
            conn.execute("reset role")


def _rows_affected(target, model: str) -> int:
    results = json.loads((target / "run_results.json").read_text())
    for r in results["results"]:
        if r["unique_id"] == f"model.market_access.{model}":
            return r["adapter_response"]["rows_affected"]
    raise AssertionError(f"{model} not in run_results.json")


def test_a_later_day_processes_only_what_changed(built):
    """Runs last: advances the world, plants tombstones, re-syncs, builds again."""
    conn, world, servers, cfg = built["conn"], built["world"], built["servers"], built["cfg"]
    gov = catalog.system("gov_service")
    built["first_day_batch"] = conn.execute("select max(batch_id) from ops.load_batches").fetchone()[0]
    before = {r: dict(world.truth("gov_service", r)) for r in ("cases", "evaluations")}
    world.advance(1)
    gone = {}
    for resource in ("cases", "evaluations"):  # a revocation delivered today for an old record
        store = world.store("gov_service", resource)
        rid = sorted(r for r, rec in store.all().items() if not rec["is_deleted"])[0]
        rec = store.get(rid)
        rec["is_deleted"], rec["updated_at"] = True, _stamp(store)
        store.put(rec)
        gone[resource] = rid
    sync_everything(conn, servers)
    run_dbt(BUILD, cfg, target_path=built["target"])
    for resource, model, key in (
        ("cases", "stg_gov_service__cases", "case_id"),
        ("evaluations", "stg_gov_service__evaluations", "evaluation_id"),
    ):
        after = world.truth("gov_service", resource)
        changed_live = [
            rid for rid, rec in after.items() if before[resource].get(rid) != rec and not rec["is_deleted"]
        ]
        assert changed_live, f"a simulated day should change some {resource}"
        assert _rows_affected(built["target"], model) == len(changed_live), model
        assert len(changed_live) < len(after) / 5  # in proportion to the change, not the table
        assert count(conn, f"staging.{model}") == len(live(world, gov.resource(resource)))
        assert (
            conn.execute(
                f"select count(*) from staging.{model} where {key} = %s", (gone[resource],)
            ).fetchone()[0]
            == 0
        )


SCRUBBED = {
    "stg_gov_service__evaluations": ("evaluation_id", "comment_scrubbed"),
    "stg_credit__admin_licenses": ("license_id", "content_scrubbed"),
    "stg_credit__admin_penalties": ("penalty_id", "violation_facts_scrubbed"),
}


def test_an_incremental_build_scrubs_as_a_full_refresh(built):
    """Runs after the later day. A comment changed at source to name an inspector (a dictionary name)
    is scrubbed by the incremental run as a full refresh scrubs it, and so is every record the
    incremental runs recomputed (the dictionary hits are found for the changed records' texts only)."""
    conn, world, servers, cfg = built["conn"], built["world"], built["servers"], built["cfg"]
    inspector = conn.execute(
        """select d.name from deid.person_names as d
           where 'random_inspection.inspectors.name' = any (d.fields) and length(d.name) = 3
           order by d.name limit 1"""
    ).fetchone()[0]
    store = world.store("gov_service", "evaluations")
    rid = sorted(r for r, rec in store.all().items() if not rec["is_deleted"])[-1]
    rec = store.get(rid)
    rec["comment"], rec["updated_at"] = f"窗口的{inspector}态度很好", _stamp(store)
    store.put(rec)
    sync_everything(conn, servers)
    selection = ["--select", "deid_person_names", *SCRUBBED]
    run_dbt(["run", *selection], cfg, target_path=built["target"])
    since = built["first_day_batch"]

    def recomputed() -> dict[str, dict]:
        return {
            model: dict(
                conn.execute(
                    f"select {key}, {col} from staging.{model} where _batch_id > %s", (since,)
                ).fetchall()
            )
            for model, (key, col) in SCRUBBED.items()
        }

    incremental = recomputed()
    # by hand: the three-character name is a dictionary entry; 窗口的 and 态度很好 hold none
    assert incremental["stg_gov_service__evaluations"][rid] == "窗口的[姓名]态度很好"
    assert sum(len(rows) for rows in incremental.values()) > 1  # the later day's records too
    run_dbt(["run", "--full-refresh", *selection], cfg, target_path=built["target"])
    assert recomputed() == incremental
