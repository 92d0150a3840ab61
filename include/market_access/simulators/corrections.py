"""更正: how a source changes an existing record (late publication, fixed typos, changed facts)."""

from __future__ import annotations

import random
from datetime import datetime
from typing import TYPE_CHECKING

from market_access.simulators import reference as ref
from market_access.simulators.names import NameMaker

if TYPE_CHECKING:
    from market_access.simulators.world import World


def _ts(dt: datetime) -> str:
    return dt.isoformat(" ", "seconds")


def _strip(rec: dict, *fields: str) -> None:
    for f in fields:
        if isinstance(rec.get(f), str):
            rec[f] = rec[f].strip()


def _service_item(w, rec, rng, when):
    if rec["promised_limit_days"] > 0 and rng.random() < 0.6:
        rec["promised_limit_days"] -= 1  # 承诺时限 keeps being compressed
    else:
        rec["online_depth"] = min(4, rec["online_depth"] + 1)


def _case(w, rec, rng, when):
    if rng.random() < 0.6:
        rec["contact_phone"] = NameMaker(rng).phone()
    else:
        rec["contact_name"] = NameMaker(rng).person_name()


def _evaluation(w, rec, rng, when):
    if rec["rating"] <= 2 and not rec["rectified_at"]:
        rec["rectified_at"] = _ts(when)
    else:
        pool = ref.COMMENTS_BAD if rec["rating"] <= 2 else ref.COMMENTS_GOOD[:12]
        rec["comment"] = rng.choice([c for c in pool if c != rec["comment"]])


def _entity(w, rec, rng, when):
    r = rng.random()
    if r < 0.1 and rec["status"] == "存续":
        rec["status"], rec["status_changed_on"] = (
            rng.choice(("注销", "迁出", "吊销")),
            when.date().isoformat(),
        )
    elif r < 0.5:
        rec["phone"] = NameMaker(rng).phone()
    elif r < 0.8:
        rec["address"] = NameMaker(rng).address()
    else:
        rec["registered_capital"] = round(rec["registered_capital"] * rng.choice((0.5, 2, 5)), 2)


def _abnormal(w, rec, rng, when):
    if not rec["removed_on"]:
        rec["removed_on"] = when.date().isoformat()
        rec["removed_reason"] = next(
            (v for k, v in ref.ABNORMAL_REMOVALS.items() if rec["listed_reason"].strip().startswith(k)),
            "其他",
        )
    else:
        _strip(rec, "listed_reason", "removed_reason", "uscc")
        rec["removed_reason"] = (rec["removed_reason"] or "") + "（更正）"


def _license(w, rec, rng, when):
    if not rec["reported_at"]:
        rec["reported_at"] = _ts(when)
    elif rec["valid_until"]:
        rec["valid_until"] = None  # corrected to 长期有效
    else:
        rec["content"] = rec["content"] + "（更正）"


def _penalty(w, rec, rng, when):
    if not rec["reported_at"]:
        rec["reported_at"] = _ts(when)
    elif rec["fine_amount"]:
        rec["fine_amount"] = round(rec["fine_amount"] * rng.choice((0.5, 0.8, 1.5, 2)), 2) or 0.01
    else:
        rec["repair_notice_served"] = True
        rec["legal_basis"] = rec["legal_basis"] + "（更正）"


def _repair(w, rec, rng, when):
    if rec["status"] == "受理中":
        rec["status"], rec["finished_on"] = "已修复", when.date().isoformat()
    else:
        rec["status"] = "不予修复" if rec["status"] == "已修复" else "已修复"


def _rating(w, rec, rng, when):
    rec["risk_level"] = rng.choice([x for x in "ABCD" if x != rec["risk_level"]])
    rec["rated_on"] = when.date().isoformat()


def _insp_item(w, rec, rng, when):
    rec["category"] = "重点检查事项" if rec["category"] == "一般检查事项" else "一般检查事项"


def _pool(w, rec, rng, when):
    dept = next((d for i, d in w.reg.insp_items if i == rec["inspection_item_id"]), None)
    others = [i for i in w.reg.insp_by_dept.get(dept, []) if i != rec["inspection_item_id"]]
    if others:
        rec["inspection_item_id"] = rng.choice(others)
    else:
        rec["uscc"] = rec["uscc"].strip().upper() + (
            " " if rec["uscc"] == rec["uscc"].strip().upper() else ""
        )


def _inspector(w, rec, rng, when):
    rec["phone"] = NameMaker(rng).phone()


def _plan(w, rec, rng, when):
    rec["name"] = rec["name"].strip().removesuffix("（修订）") + "（修订）"


def _task(w, rec, rng, when):
    rec["sample_size"] = max(1, rec["sample_size"] + rng.choice((-5, -2, 2, 5)))


def _result(w, rec, rng, when):
    if not rec["published_on"]:
        rec["published_on"] = when.date().isoformat()
    else:
        outcomes = [o for o, _ in ref.RESULT_OUTCOMES if o != rec["outcome"]]
        rec["outcome"] = rng.choice(outcomes)


_FIXES = {
    "service-items": _service_item,
    "cases": _case,
    "evaluations": _evaluation,
    "entities": _entity,
    "abnormal-operations": _abnormal,
    "admin-licenses": _license,
    "admin-penalties": _penalty,
    "credit-repairs": _repair,
    "risk-ratings": _rating,
    "inspection-items": _insp_item,
    "object-pool": _pool,
    "inspectors": _inspector,
    "plans": _plan,
    "tasks": _task,
    "results": _result,
}


def correct(w: World, resource: str, rec: dict, rng: random.Random, when: datetime) -> None:
    """Change rec's content in place as a 更正 made at when would."""
    fix = _FIXES.get(resource)
    if fix is not None:  # a resource added to the catalog without a fix is just re-sent
        fix(w, rec, rng, when)
