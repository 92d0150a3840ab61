"""市场监管信息系统: market entities (the county's registry) and the 经营异常名录."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING

from market_access.simulators import credit, inspection
from market_access.simulators import reference as ref
from market_access.simulators.dirty import PLACEHOLDER_USCC
from market_access.simulators.names import COUNTY, NameMaker, weighted
from market_access.simulators.registry import EntityRef
from market_access.simulators.workdays import office_time

if TYPE_CHECKING:
    from market_access.simulators.world import World

STOCK_TOTAL = 35_200  # registered before the base year; ≈ 4,800 more register during it
PLACEHOLDER_SHARE = 0.015  # of 个体工商户, registered without a code
REGULATOR = "区市场监督管理局"

_TYPES = tuple(t for t, _ in ref.ENTITY_TYPES)
_TYPE_CUM = list(accumulate(w for _, w in ref.ENTITY_TYPES))
_FIRM_FORMS = tuple(f for f, _ in ref.FIRM_FORMS)
_FORM_CUM = list(accumulate(w for _, w in ref.FIRM_FORMS))
_FIRM_CUM = list(accumulate(i[3] for i in ref.INDUSTRIES))
_SHOP_CUM = list(accumulate(i[4] for i in ref.INDUSTRIES))
_STATUSES = tuple(s for s, _ in ref.STOCK_STATUSES)
_STATUS_CUM = list(accumulate(w for _, w in ref.STOCK_STATUSES))
_REASONS = tuple(r for r, _ in ref.ABNORMAL_REASONS)
_REASON_CUM = list(accumulate(w for _, w in ref.ABNORMAL_REASONS))


def regulator(w: World):
    return next((d for d in w.depts if d.name == REGULATOR), w.depts[0])


# --- entities ----------------------------------------------------------------------------------
def _new_ref(
    w: World, rng: random.Random, nm: NameMaker, established: date, status: str
) -> tuple[EntityRef, str, float]:
    """A clean entity plus its industry code and registered capital."""
    etype = _TYPES[weighted(rng, _TYPE_CUM)]
    rep = nm.person(min_age=20, max_age=65, ref=established)
    if etype == "企业":
        industry = ref.INDUSTRIES[weighted(rng, _FIRM_CUM)]
        place = COUNTY if rng.random() < 0.85 else "江西"
        name = f"{place}{nm.brand()}{rng.choice(industry[1])}{_FIRM_FORMS[weighted(rng, _FORM_CUM)]}"
        code, capital = nm.uscc("91"), round(10 ** rng.uniform(1, 3.7), 2)
    elif etype == "个体工商户":
        industry = ref.INDUSTRIES[weighted(rng, _SHOP_CUM)]
        shop = rng.choice(industry[2])
        r = rng.random()
        if r < 0.45:
            name = f"{COUNTY}{rep.name}{shop}"
        elif r < 0.7:
            name = f"{COUNTY}{nm.brand()}{shop}"
        elif r < 0.9:
            name = f"{rep.name[0]}记{shop}"
        else:
            name = f"{COUNTY}{rep.name}{nm.brand()}{shop}"
        code = PLACEHOLDER_USCC if rng.random() < PLACEHOLDER_SHARE else nm.uscc("92")
        capital = round(rng.uniform(0.5, 50), 1)
    else:
        industry = ref.INDUSTRIES[0] if rng.random() < 0.8 else ref.INDUSTRIES[1]
        name = f"{COUNTY}{nm.village()}{nm.farm_product()}专业合作社"
        code, capital = nm.uscc("93"), round(rng.uniform(10, 500), 1)
    entity = EntityRef(
        "", code, name, etype, rep.name, rep.cert_no, rep.phone, nm.address(), established, status
    )
    return entity, industry[0], capital


def _record(w: World, e: EntityRef, industry: str, capital: float, changed: date | None, dirt) -> dict:
    return {
        "id": e.id,
        "uscc": dirt.uscc(e.uscc),
        "name": dirt.spaces(e.name),
        "entity_type": e.etype,
        "legal_rep_name": dirt.text(e.rep_name),
        "legal_rep_cert_no": dirt.cert(e.rep_cert),
        "phone": dirt.phone(e.phone),
        "address": dirt.text(e.address),
        "industry_code": dirt.code(industry),
        "registered_capital": capital,
        "established_on": dirt.date(e.established),
        "status": e.status,
        "status_changed_on": dirt.date(changed),
        "reg_authority_code": dirt.dept(regulator(w)),
        "updated_at": None,
        "is_deleted": False,
    }


def build_stock(w: World) -> None:
    """Entities registered before the base year, in order of registration."""
    rng = w.rng("entities", "stock")
    nm = NameMaker(rng)
    dirt = w.dirt("entities", rng)
    drafts = []
    for _ in range(round(STOCK_TOTAL * w.scale)):
        year = 1998 + int(27.5 * rng.random() ** 0.6)  # more registrations in recent years
        established = min(date(year, 1, 1) + timedelta(days=rng.randrange(365)), date(2025, 6, 30))
        status = _STATUSES[weighted(rng, _STATUS_CUM)]
        drafts.append((established, status))
    drafts.sort()
    end = datetime(2026, 6, 30, 23, 0)
    for established, status in drafts:
        e, industry, capital = _new_ref(w, rng, nm, established, status)
        changed = None
        if status != "存续":
            span = (date(2026, 6, 30) - established).days
            changed = established + timedelta(days=rng.randint(min(30, span), span))
        last = datetime.combine(max(changed or established, date(2020, 1, 1)), datetime.min.time())
        updated = last + timedelta(seconds=rng.randrange(max(int((end - last).total_seconds()), 1)))
        e = e._replace(id=f"ZT{w.next_seq('entities'):09d}")
        w.reg.add_entity(e)
        w.emit("entities", [(updated, _record(w, e, industry, capital, changed, dirt))])


def new_entities(w: World, day: date, n: int, rng: random.Random) -> None:
    nm = NameMaker(rng)
    dirt = w.dirt("entities", rng)
    for _ in range(n):
        e, industry, capital = _new_ref(w, rng, nm, day, "存续")
        e = e._replace(id=f"ZT{w.next_seq('entities'):09d}")
        index = w.reg.add_entity(e)
        when = office_time(day, rng)
        w.emit("entities", [(when, _record(w, e, industry, capital, None, dirt))])
        if rng.random() < 0.8:
            credit.rate_later(w, rng, e, office_time(w.cal.add(day, rng.randint(20, 80)), rng))
        if rng.random() < 0.5:
            inspection.join_pool_later(w, rng, index, office_time(w.cal.add(day, rng.randint(1, 10)), rng))


# --- 经营异常名录 ---------------------------------------------------------------------------------
def new_abnormal(w: World, day: date, n: int, rng: random.Random) -> None:
    dirt = w.dirt("abnormal-operations", rng)
    authority = regulator(w)
    count = w.reg.entities_by(day)
    for _ in range(n):
        types = ("企业", "农民专业合作社") if rng.random() < 0.85 else ("个体工商户",)
        e = w.reg.pick(rng, count, types)
        if e is None:
            continue
        reason = _REASONS[weighted(rng, _REASON_CUM)]
        listed = office_time(day, rng)
        rec = {
            "id": f"YC{w.next_seq('abnormal-operations'):09d}",
            "uscc": dirt.uscc(e.uscc),
            "listed_on": dirt.date(day),
            "listed_reason": dirt.spaces(reason),
            "removed_on": dirt.missing(None),
            "removed_reason": dirt.missing(None),
            "authority_code": dirt.dept(authority),
            "updated_at": None,
            "is_deleted": False,
        }
        events = [(listed, rec)]
        if rng.random() < 0.35:
            removed = w.cal.add(day, rng.randint(10, 200))
            why = next(v for k, v in ref.ABNORMAL_REMOVALS.items() if reason.startswith(k))
            events.append(
                (office_time(removed, rng), {"removed_on": dirt.date(removed), "removed_reason": why})
            )
        w.emit("abnormal-operations", events)
        w.reg.abnormal.add(e.uscc)
