"""信用信息共享平台: 双公示 licences and penalties, credit repairs and risk ratings."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING

from market_access.simulators import reference as ref
from market_access.simulators.dirty import PLACEHOLDER_USCC
from market_access.simulators.names import NameMaker, weighted
from market_access.simulators.registry import EntityRef
from market_access.simulators.workdays import office_time

if TYPE_CHECKING:
    from market_access.simulators.world import World

REPAIR_SHARE = 0.011  # of penalties with a code; the seed documents quote 8 repairs per ~800 penalised
MIN_REPAIRS = 3
BASE_LAST_DAY = date(2026, 6, 30)
_LIC_CATS = tuple(c for c, _ in ref.LICENSE_CATEGORIES)
_LIC_CUM = list(accumulate(w for _, w in ref.LICENSE_CATEGORIES))
_COMBOS = tuple(c for c, _ in ref.PENALTY_COMBOS)
_COMBO_CUM = list(accumulate(w for _, w in ref.PENALTY_COMBOS))
_RISK = tuple(r for r, _ in ref.RISK_LEVELS)
_RISK_CUM = list(accumulate(w for _, w in ref.RISK_LEVELS))
_RISK_BAD_CUM = list(accumulate(w for _, w in ref.RISK_LEVELS_PENALISED))
_GENERIC_VIOLATION = (
    ("违反行政管理秩序", "《中华人民共和国行政处罚法》第二十八条", "{party}违反有关管理规定"),
)


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(y, m, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _fmt(dt: datetime) -> str:
    return dt.isoformat(" ", "seconds")


class Party:
    """The 行政相对人 of a decision, clean, and how it is served."""

    def __init__(self, w: World, rng: random.Random, nm: NameMaker, day: date, shares: tuple[int, int, int]):
        kind = weighted(rng, list(accumulate(shares)))
        entity = None
        if kind < 2:
            types = ("企业", "农民专业合作社") if kind == 0 else ("个体工商户",)
            entity = w.reg.pick(rng, w.reg.entities_by(day), types)
        self.entity: EntityRef | None = entity
        if entity is None:
            p = nm.person()
            self.category, self.name, self.uscc = "自然人", p.name, None
            self.person_name, self.cert, self.phone = p.name, p.cert_no, p.phone
        else:
            self.category = "法人及非法人组织" if entity.etype != "个体工商户" else "个体工商户"
            self.name, self.uscc = entity.name, entity.uscc
            self.person_name, self.cert, self.phone = entity.rep_name, entity.rep_cert, entity.phone

    @property
    def is_person(self) -> bool:
        return self.category != "法人及非法人组织"

    def fields(self, rng: random.Random, dirt) -> dict:
        if self.category == "自然人":
            return {
                "party_name": dirt.text(self.name),
                "party_category": self.category,
                "uscc": dirt.missing(None),
                "legal_rep_name": dirt.missing(None),
                "cert_type": "身份证",
                "cert_no": dirt.cert(self.cert),
            }
        with_cert = self.category == "个体工商户" or rng.random() < 0.4
        return {
            "party_name": dirt.spaces(self.name),
            "party_category": self.category,
            "uscc": dirt.uscc(self.uscc),
            "legal_rep_name": dirt.text(self.person_name),
            "cert_type": "身份证" if with_cert else dirt.missing(None),
            "cert_no": dirt.cert(self.cert) if with_cert else dirt.missing(None),
        }


def _report_lag(rng: random.Random, on_time: float, late: float, late_max: int) -> int | None:
    r = rng.random()
    if r < on_time:
        return rng.randint(0, 7)
    if r < on_time + late:
        return rng.randint(8, late_max)
    return None


def _reported(w: World, rng, decided: datetime, lag: int | None) -> datetime | None:
    if lag is None:
        return None
    if lag == 0:
        return decided + timedelta(minutes=rng.randint(30, 240))
    return office_time(w.cal.add(decided.date(), lag), rng)


# --- 行政许可 ------------------------------------------------------------------------------------
def new_licenses(w: World, day: date, n: int, rng: random.Random) -> None:
    if not n or not w.reg.license_items:
        return
    nm = NameMaker(rng)
    dirt = w.dirt("admin-licenses", rng)
    for _ in range(n):
        item = w.reg.license_items[weighted(rng, w.reg.license_cum)]
        dept = w.depts[item.dept]
        party = Party(w, rng, nm, day, (55, 35, 10))
        decided = office_time(day, rng)
        category = _LIC_CATS[weighted(rng, _LIC_CUM)]
        base = item.name.split("（")[0]
        no = w.reg.doc_no(dept.index, day.year, "许")
        until = None
        if rng.random() < 0.7:
            until = add_months(day, 12 * rng.choice((1, 3, 5))) - timedelta(days=1)
        rec = {
            "id": f"XK{w.next_seq('admin-licenses'):09d}",
            "decision_no": dirt.spaces(f"示{dept.doc_abbr}许字〔{day.year}〕{no}号"),
            "license_name": base + "证" if base.endswith("许可") else base + "决定书",
            "license_no": (
                dirt.code(f"XK{dept.index:02d}{day.year}{no:06d}")
                if category != "登记" or rng.random() < 0.3
                else dirt.missing(None)
            ),
            "license_category": category,
            "content": f"准予{item.name}",
            **party.fields(rng, dirt),
            "decided_on": dirt.date(day),
            "valid_from": dirt.date(day),
            "valid_until": dirt.date(until),
            "authority_name": dirt.dept_name(dept),
            "authority_uscc": dirt.uscc(dept.code),
            "dept_code": dirt.dept(dept),
            "service_item_id": item.id if rng.random() < 0.9 else dirt.missing(None),
            "reported_at": dirt.missing(None),
            "updated_at": None,
            "is_deleted": False,
        }
        events = [(decided, rec)]
        reported = _reported(w, rng, decided, _report_lag(rng, 0.85, 0.10, 40))
        if reported is not None:
            events.append((reported, {"reported_at": _fmt(reported)}))
        w.emit("admin-licenses", events)


# --- 行政处罚 ------------------------------------------------------------------------------------
def _penalty_depts(w: World) -> tuple[list, list[float]]:
    pairs = [(d, ref.PENALTY_DEPT_WEIGHTS[d.name]) for d in w.depts if d.name in ref.PENALTY_DEPT_WEIGHTS]
    pairs = pairs or [(d, 1) for d in w.depts]
    return [d for d, _ in pairs], list(accumulate(x for _, x in pairs))


def _facts(rng: random.Random, nm: NameMaker, template: str, party: Party, day: date) -> str:
    who = party.name
    if party.category == "个体工商户":
        who = f"{party.name}（经营者：{party.person_name}）"
    place = party.entity.address if party.entity else nm.address()
    text = (
        "经查，"
        + template.format(
            party=who, place=place, when=f"{day.year}年{day.month}月{day.day}日", n=rng.randint(2, 50)
        )
        + "。"
    )
    if party.is_person:
        r = rng.random()
        if r < 0.06:
            text += f"当事人{party.person_name}（身份证号：{party.cert}，联系电话：{party.phone}）对上述事实无异议。"
        elif r < 0.09:
            text += f"联系人电话{party.phone}。"
    return text


def new_penalties(w: World, day: date, n: int, rng: random.Random) -> None:
    if not n:
        return
    nm = NameMaker(rng)
    dirt = w.dirt("admin-penalties", rng)
    rdirt = w.dirt("credit-repairs", rng)
    depts, cum = _penalty_depts(w)
    for _ in range(n):
        dept = depts[weighted(rng, cum)]
        vtype, basis, template = rng.choice(ref.VIOLATIONS.get(dept.name, _GENERIC_VIOLATION))
        party = Party(w, rng, nm, day, (45, 40, 15))
        types = list(_COMBOS[weighted(rng, _COMBO_CUM)])
        fine = None
        if "罚款" in types:
            fine = round(min(10 ** rng.uniform(-1.3, 1.5), 200) * (0.5 if party.is_person else 1), 2) or 0.01
        confiscated = (
            round(10 ** rng.uniform(-2, 0.7), 2) if any(t.startswith("没收") for t in types) else None
        )
        light = set(types) <= {"警告", "通报批评"} or (
            fine is not None and fine < 1 and set(types) <= {"警告", "罚款"}
        )
        decided = office_time(day, rng)
        warning_only = types == ["警告"]
        if warning_only and dept.name == "区市场监督管理局" and rng.random() < 0.8:
            lag = None  # market supervision does not publish warning-only penalties
        else:
            lag = _report_lag(rng, 0.75, 0.13, 60)
        pid = f"CF{w.next_seq('admin-penalties'):09d}"
        no = w.reg.doc_no(dept.index, day.year, "罚")
        rec = {
            "id": pid,
            "decision_no": dirt.spaces(f"示{dept.doc_abbr}罚决字〔{day.year}〕{no}号"),
            **party.fields(rng, dirt),
            "violation_type": vtype,
            "violation_facts": dirt.spaces(_facts(rng, nm, template, party, day)),
            "legal_basis": basis,
            "penalty_types": types,
            "fine_amount": fine,
            "confiscated_amount": confiscated,
            "decided_on": dirt.date(day),
            "publicity_until": dirt.date(add_months(day, 3 if light else 36)),
            "authority_name": dirt.dept_name(dept),
            "authority_uscc": dirt.uscc(dept.code),
            "dept_code": dirt.dept(dept),
            "reported_at": dirt.missing(None),
            "repair_notice_served": rng.random() < 0.88,
            "updated_at": None,
            "is_deleted": False,
        }
        events = [(decided, rec)]
        reported = _reported(w, rng, decided, lag)
        if reported is not None:
            events.append((reported, {"reported_at": _fmt(reported)}))
        w.emit("admin-penalties", events)
        if party.uscc and party.uscc != PLACEHOLDER_USCC:
            w.reg.penalised.add(party.uscc)
            if rng.random() < REPAIR_SHARE:
                _repair(w, rng, rdirt, pid, party.uscc, day)
            else:
                w.reg.repair_candidates.append((pid, party.uscc, day))


def _repair(w: World, rng: random.Random, dirt, penalty_id: str, code: str, decided: date) -> None:
    applied = w.cal.add(decided, rng.randint(65, 180))
    finished = w.cal.add(applied, rng.randint(3, 20))
    rec = {
        "id": f"XF{w.next_seq('credit-repairs'):08d}",
        "penalty_id": penalty_id,
        "uscc": dirt.uscc(code),
        "applied_on": dirt.date(applied),
        "status": "受理中",
        "finished_on": dirt.missing(None),
        "updated_at": None,
        "is_deleted": False,
    }
    outcome = "已修复" if rng.random() < 0.8 else "不予修复"
    w.emit(
        "credit-repairs",
        [
            (office_time(applied, rng), rec),
            (office_time(finished, rng), {"status": outcome, "finished_on": dirt.date(finished)}),
        ],
    )
    if applied <= BASE_LAST_DAY:
        w.reg.repairs_planned += 1


def top_up_repairs(w: World) -> None:
    """Small worlds still get a few repairs, so every resource has something to serve."""
    rng = w.rng("credit-repairs", "top-up")
    dirt = w.dirt("credit-repairs", rng)
    wanted = max(MIN_REPAIRS, round(0.01 * len(w.reg.penalised)))
    early = [c for c in w.reg.repair_candidates if c[2] <= date(2026, 2, 28)]
    rng.shuffle(early)
    for pid, code, decided in early[: max(wanted - w.reg.repairs_planned, 0)]:
        _repair(w, rng, dirt, pid, code, decided)
    w.reg.repair_candidates.clear()


# --- 企业信用风险分类 -------------------------------------------------------------------------------
def _rating(w: World, rng: random.Random, dirt, e: EntityRef, when: datetime, cum: list[float]) -> None:
    rec = {
        "id": f"FX{w.next_seq('risk-ratings'):09d}",
        "uscc": dirt.uscc(e.uscc),
        "risk_level": _RISK[weighted(rng, cum)],
        "rated_on": dirt.date(when.date()),
        "updated_at": None,
        "is_deleted": False,
    }
    w.emit("risk-ratings", [(when, rec)])


def rate_later(w: World, rng: random.Random, e: EntityRef, when: datetime) -> None:
    _rating(w, rng, w.dirt("risk-ratings", rng), e, when, _RISK_CUM)


def build_stock_ratings(w: World) -> None:
    """Most entities registered before the base year were rated in one of the two batches."""
    rng = w.rng("risk-ratings", "stock")
    dirt = w.dirt("risk-ratings", rng)
    batches = (date(2025, 9, 15), date(2026, 3, 16))
    for e in w.reg.entities:
        if e.established >= date(2025, 7, 1):
            break
        if e.status != "存续" or rng.random() >= 0.87:
            continue
        risky = e.uscc in w.reg.penalised or e.uscc in w.reg.abnormal
        day = w.cal.add(batches[rng.random() < 0.6], rng.randint(0, 10))
        _rating(w, rng, dirt, e, office_time(day, rng), _RISK_BAD_CUM if risky else _RISK_CUM)
