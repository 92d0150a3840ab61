"""“双随机、一公开”监管平台: items, object pool, inspectors, plans, tasks and results."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING

from market_access.simulators import reference as ref
from market_access.simulators.names import NameMaker, weighted
from market_access.simulators.workdays import office_time, some_time

if TYPE_CHECKING:
    from market_access.simulators.world import World

ITEMS_TOTAL = 150
INSPECTORS_TOTAL = 300
POOL_TOTAL = 25_000
JOINT_SHARE = 0.16
_OUTCOMES = tuple(o for o, _ in ref.RESULT_OUTCOMES)
_OUTCOME_CUM = list(accumulate(w for _, w in ref.RESULT_OUTCOMES))
_CATEGORIES = ("一般检查事项", "重点检查事项")


def _fmt(dt: datetime) -> str:
    return dt.isoformat(" ", "seconds")


def _largest_remainder(total: int, weights: list[float]) -> list[int]:
    quotas = [total * x / sum(weights) for x in weights]
    out = [int(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def _random_moment(w: World, rng: random.Random, first: date, last: date) -> datetime:
    return some_time(first + timedelta(days=rng.randrange((last - first).days + 1)), rng, 8, 20)


def inspecting_depts(w: World) -> list:
    """Departments that own at least one inspection item, in department order."""
    return [d for d in w.depts if w.reg.insp_by_dept.get(d.index)]


def _dept_cum(w: World) -> tuple[list, list[float]]:
    depts = inspecting_depts(w)
    return depts, list(accumulate(len(w.reg.insp_by_dept[d.index]) for d in depts))


# --- reference lists ---------------------------------------------------------------------------
def build_reference(w: World) -> None:
    rng = w.rng("inspection", "reference")
    owners = [d for d in w.depts if d.name in ref.INSPECTION_SUBJECTS]
    shares = _largest_remainder(
        max(10, round(ITEMS_TOTAL * w.scale)), [ref.INSPECTION_WEIGHTS.get(d.name, 5) for d in owners]
    )
    for dept, k in zip(owners, shares, strict=True):
        subjects = ref.INSPECTION_SUBJECTS[dept.name]
        for i in range(k):
            name = subjects[i % len(subjects)]
            if i >= len(subjects):
                name += ("（专项）", "（重点领域）", "（跨部门）")[(i // len(subjects) - 1) % 3]
            _item(w, rng, dept, name, _random_moment(w, rng, date(2024, 12, 1), date(2026, 6, 30)))
    depts = inspecting_depts(w)
    counts = _largest_remainder(
        max(round(INSPECTORS_TOTAL * w.scale), 2 * len(depts)),
        [len(w.reg.insp_by_dept[d.index]) for d in depts],
    )
    nm = NameMaker(rng)
    for dept, k in zip(depts, counts, strict=True):
        for _ in range(max(k, 2)):
            _inspector(w, rng, nm, dept, _random_moment(w, rng, date(2025, 1, 2), date(2026, 6, 30)))
    for year in (2025, 2026):
        for dept in depts:
            day = plan_day(w, dept, year)
            _plan(w, rng, dept, year, office_time(day, rng))


def _item(w: World, rng: random.Random, dept, name: str, when: datetime) -> None:
    dirt = w.dirt("inspection-items", rng)
    rid = f"SX{w.next_seq('inspection-items'):06d}"
    rec = {
        "id": rid,
        "item_name": dirt.spaces(name),
        "dept_code": dirt.dept(dept),
        "category": _CATEGORIES[rng.random() < 0.3],
        "updated_at": None,
        "is_deleted": False,
    }
    w.emit("inspection-items", [(when, rec)])
    w.reg.insp_items.append((rid, dept.index))
    w.reg.insp_by_dept.setdefault(dept.index, []).append(rid)
    w.reg.pool_by_item.setdefault(rid, [])


def _inspector(w: World, rng: random.Random, nm: NameMaker, dept, when: datetime) -> None:
    dirt = w.dirt("inspectors", rng)
    seq = w.next_seq("inspectors")
    p = nm.person(min_age=24, max_age=58)
    rid = f"RY{seq:06d}"
    rec = {
        "id": rid,
        "name": dirt.text(p.name),
        "cert_no": dirt.cert(p.cert_no),
        "badge_no": dirt.code(f"36042{dept.index:02d}{seq:05d}"),
        "dept_code": dirt.dept(dept),
        "phone": dirt.phone(p.phone),
        "updated_at": None,
        "is_deleted": False,
    }
    w.emit("inspectors", [(when, rec)])
    w.reg.inspectors_by_dept.setdefault(dept.index, []).append(rid)


def plan_day(w: World, dept, year: int) -> date:
    """The day a department adopts its yearly plan (fixed by the seed, so advance() finds it too)."""
    return w.cal.add(date(year, 1, 5), w.rng("plans", dept.index, year).randint(0, 35))


def _plan(w: World, rng: random.Random, dept, year: int, when: datetime) -> None:
    dirt = w.dirt("plans", rng)
    rid = f"JH{year}{w.next_seq('plans'):05d}"
    rec = {
        "id": rid,
        "dept_code": dirt.dept(dept),
        "year": year,
        "name": dirt.spaces(f"{dept.name}{year}年度“双随机、一公开”抽查工作计划"),
        "created_on": dirt.date(when.date()),
        "updated_at": None,
        "is_deleted": False,
    }
    w.emit("plans", [(when, rec)])
    w.reg.plans[(dept.index, year)] = rid


def yearly_plans(w: World, day: date) -> None:
    if day.month > 3:
        return
    for dept in inspecting_depts(w):
        if (dept.index, day.year) not in w.reg.plans and plan_day(w, dept, day.year) == day:
            rng = w.rng("plans", "adopt", dept.index, day.year)
            _plan(w, rng, dept, day.year, office_time(day, rng))


def new_inspection_items(w: World, day: date, n: int, rng: random.Random) -> None:
    depts, cum = _dept_cum(w)
    for _ in range(n if depts else 0):
        dept = depts[weighted(rng, cum)]
        subjects = ref.INSPECTION_SUBJECTS.get(dept.name, ("对有关经营活动的检查",))
        _item(w, rng, dept, rng.choice(subjects) + f"（{day.year}年新增）", office_time(day, rng))


def new_inspectors(w: World, day: date, n: int, rng: random.Random) -> None:
    depts, cum = _dept_cum(w)
    nm = NameMaker(rng)
    for _ in range(n if depts else 0):
        _inspector(w, rng, nm, depts[weighted(rng, cum)], office_time(day, rng))


# --- object pool -------------------------------------------------------------------------------
def _pool_entry(
    w: World, rng: random.Random, dirt, entity_index: int, item_id: str, dept_index: int, when: datetime
) -> None:
    e = w.reg.entities[entity_index]
    rec = {
        "id": f"DX{w.next_seq('object-pool'):09d}",
        "uscc": dirt.uscc(e.uscc),
        "dept_code": dirt.dept(w.depts[dept_index]),
        "inspection_item_id": item_id,
        "updated_at": None,
        "is_deleted": False,
    }
    w.emit("object-pool", [(when, rec)])
    w.reg.pool_by_item[item_id].append(entity_index)


def build_object_pool(w: World) -> None:
    """Entities registered before the base year, listed under the items that cover them."""
    rng = w.rng("object-pool", "stock")
    dirt = w.dirt("object-pool", rng)
    n_entities = len(w.reg.entities)
    items = w.reg.insp_items
    if not n_entities or not items:
        return
    # 市场监管's items cover every firm; other departments' items a smaller share
    item_weights = list(accumulate(6.0 if w.depts[d].name == "区市场监督管理局" else 1.0 for _, d in items))
    seen: set[tuple[int, str]] = set()
    target = min(round(POOL_TOTAL * w.scale), n_entities * len(items))
    for _ in range(target * 3):
        if len(seen) >= target:
            break
        item_id, dept_index = items[weighted(rng, item_weights)]
        idx = rng.randrange(n_entities)
        if w.reg.entities[idx].status != "存续" and rng.random() < 0.8:
            continue
        if (idx, item_id) in seen:
            continue
        seen.add((idx, item_id))
        when = _random_moment(w, rng, date(2025, 7, 1), date(2026, 6, 30))
        _pool_entry(w, rng, dirt, idx, item_id, dept_index, when)


def join_pool_later(w: World, rng: random.Random, entity_index: int, when: datetime) -> None:
    """A newly registered entity enters the object pool of a 市场监管 item a few days later."""
    depts, cum = _dept_cum(w)
    if not depts:
        return
    dept = depts[0] if rng.random() < 0.7 else depts[weighted(rng, cum)]
    item_id = rng.choice(w.reg.insp_by_dept[dept.index])
    _pool_entry(w, rng, w.dirt("object-pool", rng), entity_index, item_id, dept.index, when)


# --- tasks and results -------------------------------------------------------------------------
def new_tasks(w: World, day: date, n: int, rng: random.Random) -> None:
    depts, cum = _dept_cum(w)
    if not n or not depts:
        return
    dirt = w.dirt("tasks", rng)
    rdirt = w.dirt("results", rng)
    for _ in range(n):
        lead = depts[weighted(rng, cum)]
        plan_id = w.reg.plans.get((lead.index, day.year)) or w.reg.plans.get((lead.index, day.year - 1))
        if plan_id is None:
            continue
        others = [d for d in depts if d.index != lead.index]
        joint = rng.sample(others, min(len(others), rng.randint(1, 3))) if rng.random() < JOINT_SHARE else []
        lead_items = w.reg.insp_by_dept[lead.index]
        items = rng.sample(lead_items, min(len(lead_items), rng.randint(1, 3)))
        items += [rng.choice(w.reg.insp_by_dept[j.index]) for j in joint]
        starts = w.cal.add(day, rng.randint(5, 25))
        ends = w.cal.on_or_after(starts + timedelta(days=rng.randint(15, 60)))
        sample_size = rng.randint(10, 65)
        rid = f"RW{day.year}{w.next_seq('tasks'):06d}"
        rec = {
            "id": rid,
            "plan_id": plan_id,
            "lead_dept_code": dirt.dept(lead),
            "joint_dept_codes": [dirt.dept(j) for j in joint],
            "inspection_item_ids": items,
            "sample_size": sample_size,
            "risk_based": rng.random() < (0.6 if lead.name == "区市场监督管理局" else 0.35),
            "starts_on": dirt.date(starts),
            "ends_on": dirt.date(ends),
            "status": "未开始",
            "updated_at": None,
            "is_deleted": False,
        }
        w.emit(
            "tasks",
            [
                (office_time(day, rng), rec),
                (
                    datetime.combine(starts, datetime.min.time()) + timedelta(hours=8, minutes=30),
                    {"status": "进行中"},
                ),
                (datetime.combine(ends, datetime.min.time()) + timedelta(hours=18), {"status": "已完成"}),
            ],
        )
        _results(w, rng, rdirt, rid, lead, joint, items, sample_size, starts, ends)


def _results(w: World, rng, dirt, task_id, lead, joint, items, sample_size, starts, ends) -> None:
    chosen = {i for item in items for i in w.reg.pool_by_item.get(item, ())}
    n_entities = w.reg.entities_by(starts)
    for _ in range(sample_size * 3 if n_entities else 0):
        if len(chosen) >= sample_size:
            break
        chosen.add(rng.randrange(n_entities))  # too small a pool: inspect other registered firms
    targets = rng.sample(sorted(chosen), min(sample_size, len(chosen)))
    lead_pool = w.reg.inspectors_by_dept.get(lead.index, [])
    joint_pool = [i for j in joint for i in w.reg.inspectors_by_dept.get(j.index, [])]
    days = w.cal.between(starts, ends) or [starts]
    for idx in targets:
        e = w.reg.entities[idx]
        inspected = rng.choice(days)
        r = rng.random()
        lag = rng.randint(1, 20) if r < 0.85 else (rng.randint(21, 60) if r < 0.93 else None)
        entered = office_time(w.cal.add(inspected, rng.randint(0, min(3, lag or 3))), rng)
        team = rng.sample(lead_pool, min(2, len(lead_pool)))
        if joint_pool and len(team) == 2:
            team[1] = rng.choice(joint_pool)
        rec = {
            "id": f"JG{w.next_seq('results'):09d}",
            "task_id": task_id,
            "uscc": dirt.uscc(e.uscc),
            "entity_name": dirt.spaces(e.name),
            "inspector_ids": team,
            "inspected_on": dirt.date(inspected),
            "outcome": _OUTCOMES[weighted(rng, _OUTCOME_CUM)],
            "published_on": dirt.missing(None),
            "updated_at": None,
            "is_deleted": False,
        }
        events = [(entered, rec)]
        if lag is not None:
            published = w.cal.add(inspected, lag)
            when = max(office_time(published, rng), entered + timedelta(hours=1))
            events.append((when, {"published_on": dirt.date(published)}))
        w.emit("results", events)
