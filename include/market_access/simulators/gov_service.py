"""政务服务一体化平台: service items, cases (办件) and their evaluations (好差评)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING

from market_access.simulators import reference as ref
from market_access.simulators.names import NameMaker, weighted
from market_access.simulators.registry import ItemRef
from market_access.simulators.workdays import office_time, some_time

if TYPE_CHECKING:
    from market_access.simulators.world import World

ITEM_TOTAL = 1_500
TYPE_DIGIT = {"L": 1, "C": 2, "G": 3, "O": 4, "S": 5}
TYPE_SHARE = {"L": 0.30, "C": 0.15, "G": 0.08, "O": 0.12, "S": 0.35}
INSTANT_SHARE = {"L": 0.08, "C": 0.3, "G": 0.1, "O": 0.3, "S": 0.5}
POPULARITY = {"L": 2.0, "C": 3.0, "G": 2.0, "O": 1.0, "S": 3.0}
_DEPTH_CUM = list(accumulate((8, 8, 14, 25, 45)))
# channel shares by the item's online depth: 窗口, 网上, 移动端, 自助终端
_CHANNELS = ("窗口", "网上", "移动端", "自助终端")
_CHANNEL_CUM = {
    "low": list(accumulate((95, 0, 0, 5))),
    "mid": list(accumulate((55, 25, 15, 5))),
    "full": list(accumulate((25, 40, 32, 3))),
}
_RATING_CUM = list(accumulate((2, 2, 3, 7, 86)))  # ratings 1..5
_RATING_LATE_CUM = list(accumulate((8, 7, 10, 15, 60)))
_EVAL_CHANNELS = {
    k: (tuple(c for c, _ in v), list(accumulate(n for _, n in v))) for k, v in ref.EVAL_CHANNELS.items()
}
EVALUATED_SHARE = 0.217  # of finished cases, so that evaluations ≈ 20% of all cases


# --- service items ------------------------------------------------------------------------------
def _candidates(dept) -> dict[str, list[tuple[str, bool, str]]]:
    """Per type code, (name, market-access subject, subject) of every item a department could list."""
    subjects = list(ref.SERVICE_SUBJECTS.get(dept.name, ref.DEFAULT_SUBJECTS))
    subjects += [f"{dept.doc_abbr}{s}|S" for s in ref.COMMON_SERVICES]
    out: dict[str, list[tuple[str, bool, str]]] = {}
    for variant in ref.VARIANTS:
        for subject_spec in subjects:
            subject, code = subject_spec.split("|")
            t, market = code[0], code.endswith("M")
            for action in ref.ACTIONS[t]:
                name = subject if action in ("服务", "办理") else f"{subject}（{action}）"
                out.setdefault(t, []).append((name + variant, market, subject))
    return out


def _dept_items(total: int, cands: dict[str, list]) -> list[tuple[str, str, bool, str]]:
    """total items of one department, spread over its item types by TYPE_SHARE."""
    types = [t for t in TYPE_SHARE if t in cands]
    counts = [0] * len(types)
    for k in range(total):
        # fill the type that is furthest below its share, so small departments still get a mix
        gaps = [TYPE_SHARE[t] * (k + 1) - counts[i] for i, t in enumerate(types)]
        counts[gaps.index(max(gaps))] += 1
    out = []
    for t, n in zip(types, counts, strict=True):
        options = cands[t]
        for i in range(n):
            name, market, subject = options[i % len(options)]
            if i >= len(options):
                name = f"{name}（{i // len(options) + 1}）"
            out.append((name, t, market, subject))
    return out


def build_service_items(w: World) -> None:
    rng = w.rng("service-items", "base")
    # at least three items per department, so even a tiny world has licences and services everywhere
    total = max(3 * len(w.depts), round(ITEM_TOTAL * w.scale))
    weights = [len(ref.SERVICE_SUBJECTS.get(d.name, ref.DEFAULT_SUBJECTS)) + 2 for d in w.depts]
    shares = [max(3, round(total * x / sum(weights))) for x in weights]
    for dept, k in zip(w.depts, shares, strict=True):
        for name, t, market, subject in _dept_items(k, _candidates(dept)):
            when = some_time(
                w.cal.on_or_after(date(2024, 1, 2)) + timedelta(days=rng.randrange(900)), rng, 8, 20
            )
            _emit_item(w, rng, dept, name, t, market, subject, when)
    _refresh_weights(w)


def new_service_items(w: World, day: date, n: int, rng: random.Random) -> None:
    for _ in range(n):
        dept = rng.choice(w.depts)
        cands = _candidates(dept)
        t = rng.choice(sorted(cands))
        name, market, subject = rng.choice(cands[t])
        _emit_item(w, rng, dept, f"{name}（{day.year}年新增）", t, market, subject, office_time(day, rng))
    if n:
        _refresh_weights(w)


def _emit_item(w: World, rng, dept, name, t, market, subject, when: datetime) -> None:
    seq = w.next_seq("service-items")
    item_code = f"{TYPE_DIGIT[t]}{dept.index:02d}{seq:09d}"
    rid = item_code + dept.code
    legal = {
        "L": rng.choice((20, 20, 20, 30, 45, 60)),
        "C": rng.choice((10, 15, 20, 30)),
        "G": rng.randint(10, 30),
        "O": rng.randint(5, 20),
        "S": rng.randint(1, 10),
    }[t]
    promised = 0 if rng.random() < INSTANT_SHARE[t] else max(1, round(legal * rng.uniform(0.2, 0.8)))
    depth = weighted(rng, _DEPTH_CUM)
    is_market = (market and t in "LO" and rng.random() < 0.95) or (t == "C" and rng.random() < 0.03)
    code = None
    if is_market:
        if subject not in w.reg.negative_codes:
            mapped = rng.random() < 0.9
            w.reg.negative_codes[subject] = rng.choice(ref.NEGATIVE_LIST_PERMIT_CODES) if mapped else None
        code = w.reg.negative_codes[subject]
    dirt = w.dirt("service-items", rng)
    rec = {
        "id": rid,
        "item_code": item_code,
        "item_name": dirt.spaces(name),
        "item_type": ref.ITEM_TYPES[t],
        "dept_code": dirt.dept(dept),
        "legal_limit_days": legal,
        "promised_limit_days": promised,
        "online_depth": depth,
        "negative_list_item_code": dirt.code(code),
        "is_market_access": is_market,
        "updated_at": None,
        "is_deleted": False,
    }
    w.emit("service-items", [(when, rec)])
    w.reg.items.append(ItemRef(rid, dept.index, t, name, legal, promised, depth))


def _refresh_weights(w: World) -> None:
    rng = w.rng("service-items", "popularity", len(w.reg.items))
    weights = [POPULARITY[i.type_code] * min(rng.paretovariate(1.1), 60.0) for i in w.reg.items]
    w.reg.item_cum = list(accumulate(weights))
    w.reg.license_items = [i for i in w.reg.items if i.type_code == "L"] or list(w.reg.items)
    w.reg.license_cum = list(accumulate(min(rng.paretovariate(1.3), 30.0) for _ in w.reg.license_items))


# --- cases and evaluations ---------------------------------------------------------------------
def new_cases(w: World, day: date, n: int, rng: random.Random) -> None:
    if not n or not w.reg.items:
        return
    nm = NameMaker(rng)
    dirt = w.dirt("cases", rng)
    edirt = w.dirt("evaluations", rng)
    n_entities = w.reg.entities_by(day)
    for _ in range(n):
        _case(w, day, rng, nm, dirt, edirt, n_entities)


def _channel(rng, depth: int) -> str:
    band = "low" if depth <= 1 else ("full" if depth == 4 else "mid")
    return _CHANNELS[weighted(rng, _CHANNEL_CUM[band])]


def _applicant(w: World, rng, nm: NameMaker, dirt, n_entities: int):
    """(type, name, cert type, cert no, contact name, contact phone) as served."""
    if rng.random() < 0.6 or not n_entities:
        p = nm.person()
        if rng.random() < 0.03:
            cert_type, cert = "其他", rng.choice("HEM") + f"{rng.randrange(10**8):08d}"
        else:
            cert_type, cert = "身份证", dirt.cert(p.cert_no)
        contact, phone = (p.name, p.phone) if rng.random() < 0.9 else (nm.person_name(), nm.phone())
        return "自然人", dirt.text(p.name), cert_type, cert, dirt.text(contact), dirt.phone(phone)
    e = w.reg.entities[rng.randrange(n_entities)]
    contact, phone = (e.rep_name, e.phone) if rng.random() < 0.5 else (nm.person_name(), nm.phone())
    return (
        "法人",
        dirt.spaces(e.name),
        "统一社会信用代码",
        dirt.uscc(e.uscc),
        dirt.text(contact),
        dirt.phone(phone),
    )


def _case(w: World, day: date, rng, nm: NameMaker, dirt, edirt, n_entities: int) -> None:
    cal, fmt = w.cal, _fmt
    item = w.reg.items[weighted(rng, w.reg.item_cum)]
    dept = w.depts[item.dept]
    channel = _channel(rng, item.depth)
    promised = item.promised if rng.random() > 0.03 else item.promised + 2  # promise changed since
    instant = promised == 0 or (promised <= 3 and rng.random() < 0.02)
    submitted = (
        office_time(day, rng) if channel == "窗口" or rng.random() < 0.85 else some_time(day, rng, 7, 23)
    )
    supplements = 0 if instant else weighted(rng, _SUPP_CUM)
    a_type, a_name, cert_type, cert_no, contact, phone = _applicant(w, rng, nm, dirt, n_entities)
    seq = w.next_seq("cases")
    rid = f"BJ{day:%Y%m%d}{seq:08d}"
    rec = {
        "id": rid,
        "service_item_id": item.id,
        "dept_code": dirt.dept(dept),
        "applicant_type": a_type,
        "applicant_name": a_name,
        "applicant_cert_type": cert_type,
        "applicant_cert_no": cert_no,
        "contact_name": contact,
        "contact_phone": phone,
        "channel": channel,
        "submitted_at": fmt(submitted),
        "accepted_at": dirt.missing(None),
        "finished_at": dirt.missing(None),
        "status": "在办",
        "result": dirt.missing(None),
        "is_instant": instant,
        "promised_limit_days": promised,
        "one_time_notice": rng.random() < (0.95 if supplements == 0 else 0.85),
        "supplement_count": 0,
        "updated_at": None,
        "is_deleted": False,
    }
    events: list[tuple[datetime, dict]] = [(submitted, rec)]
    t = submitted
    stuck = supplements and rng.random() < 0.03
    for k in range(supplements):
        t = t + timedelta(minutes=rng.randint(10, 240))
        events.append((t, {"status": "补正", "supplement_count": k + 1}))
        if stuck and k == supplements - 1:
            w.emit("cases", events)
            return
        t = office_time(cal.add(t.date(), rng.randint(1, 5)), rng)
    r = rng.random()
    if r < 0.025:
        t = max(
            office_time(cal.add(t.date(), rng.randint(0, 2)), rng), t + timedelta(minutes=rng.randint(20, 90))
        )
        events.append((t, {"status": "不予受理", "finished_at": fmt(t)}))
        w.emit("cases", events)
        return
    accepted = _accept_time(cal, rng, t, instant)
    events.append((accepted, {"status": "在办", "accepted_at": fmt(accepted)}))
    if r < 0.045:
        gone = office_time(cal.add(accepted.date(), rng.randint(1, max(promised, 1) + 1)), rng)
        events.append((gone, {"status": "撤回", "finished_at": fmt(gone)}))
        w.emit("cases", events)
        return
    late = not instant and rng.random() < 0.07
    finished = _finish_time(cal, rng, accepted, promised, instant, late)
    result = "准予" if rng.random() < 0.96 else "不予"
    events.append((finished, {"status": "办结", "finished_at": fmt(finished), "result": result}))
    w.emit("cases", events)
    if rng.random() < EVALUATED_SHARE:
        _evaluation(w, rng, nm, edirt, rid, dept, channel, finished, late)


_SUPP_CUM = list(accumulate((85, 10, 4, 1)))


def _fmt(dt: datetime) -> str:
    return dt.isoformat(" ", "seconds")


def _accept_time(cal, rng, t: datetime, instant: bool) -> datetime:
    if instant:
        return t + timedelta(minutes=rng.randint(1, 20))
    if rng.random() < 0.7:
        return t + timedelta(minutes=rng.randint(10, 180))
    return office_time(cal.add(t.date(), rng.randint(1, 2)), rng)


def _finish_time(cal, rng, accepted: datetime, promised: int, instant: bool, late: bool) -> datetime:
    if instant:
        return accepted + timedelta(minutes=rng.randint(5, 90))
    days = (
        rng.randint(promised + 1, promised + 10) if late else int(rng.triangular(0, promised, promised * 0.4))
    )
    if days == 0:
        return accepted + timedelta(minutes=rng.randint(30, 180))
    return office_time(cal.add(accepted.date(), days), rng)


def _comment(rng, nm: NameMaker, rating: int) -> str:
    pool = ref.COMMENTS_BAD if rating <= 2 else (ref.COMMENTS_MID if rating == 3 else ref.COMMENTS_GOOD)
    text = rng.choice(pool)
    if rng.random() < 0.04:
        # people write names, phone numbers and ID numbers into free text
        r = rng.random()
        if r < 0.4:
            text = f"感谢工作人员{nm.person_name()}的耐心解答" + ("，" + text if text else "")
        elif r < 0.75:
            text = (text or "办理进度请告知") + f"，请联系我{nm.phone()}"
        else:
            text = f"我的身份证号是{nm.person().cert_no}，" + (text or "一直查不到办理进度")
    return text


def _evaluation(w: World, rng, nm, dirt, case_id, dept, channel, finished, late) -> None:
    rated = finished + timedelta(
        minutes=rng.randint(1, 30)
        if channel == "窗口" and rng.random() < 0.7
        else rng.randint(30, 3 * 24 * 60)
    )
    rating = weighted(rng, _RATING_LATE_CUM if late else _RATING_CUM) + 1
    ev_channels, ev_cum = _EVAL_CHANNELS[channel]
    rid = f"PJ{rated:%Y%m%d}{w.next_seq('evaluations'):08d}"
    rec = {
        "id": rid,
        "case_id": case_id,
        "dept_code": dirt.dept(dept),
        "channel": ev_channels[weighted(rng, ev_cum)],
        "rating": rating,
        "comment": dirt.spaces(_comment(rng, nm, rating)),
        "rated_at": _fmt(rated),
        "rectified_at": dirt.missing(None),
        "updated_at": None,
        "is_deleted": False,
    }
    events = [(rated, rec)]
    if rating <= 2:
        r = rng.random()
        days = rng.randint(1, 15) if r < 0.8 else (rng.randint(16, 40) if r < 0.9 else None)
        if days is not None:
            fixed = office_time(w.cal.add(rated.date(), days), rng)
            events.append((fixed, {"rectified_at": _fmt(fixed)}))
    w.emit("evaluations", events)
