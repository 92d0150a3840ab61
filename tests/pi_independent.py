"""An independent generator of personal information, planted into a simulator world to test the scrubber.

Its surnames (the 百家姓 compound ones included), given names, ID numbers, phones, landlines and
e-mail addresses come from lists written here, not from market_access.simulators.names, so the
scan checks the de-identification against values it was not written around. `plant_world` rewrites
records of a World (before the servers serve them) and returns what it planted.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta

from stdnum.cn import ric

# the 百家姓 compound surnames, and single surnames the simulator never uses
COMPOUND_SURNAMES = (
    "欧阳 太史 端木 上官 司马 东方 独孤 南宫 万俟 闻人 夏侯 诸葛 尉迟 公羊 赫连 澹台 皇甫 宗政 濮阳 "
    "公冶 太叔 申屠 公孙 慕容 仲孙 钟离 长孙 宇文 司徒 鲜于 司空 令狐 轩辕 呼延 百里 东郭 西门 拓跋"
).split()
SINGLE_SURNAMES = tuple(
    "庞屈项祝阮蓝闵席季葛樊凌霍虞柯管洪包左翁甄封芮储靳焦巴牧车宫仇栾甘厉戎祖符景詹束幸蒲邰鄂索卓"
    "蔺屠蒙池乔胥党翟贡劳姬申冉桑桂牛寿边扈燕冀尚农温庄晏柴瞿茹艾容古易戈庾居衡步耿满匡寇阙蔚隆"
    "师巩聂晁敖冷辛阚简饶沙鞠丰巢关荆游竺权逯"
)
GIVEN_TWO = (
    "子轩 秀英 梓涵 一诺 浩然 雨桐 思远 若曦 嘉怡 俊熙 欣妍 宇航 诗涵 明轩 晨曦 语嫣 天佑 梦瑶 博文 "
    "静怡 志远 佳琪 皓轩 紫萱 文博 雅琴 建国 桂兰 淑珍 玉梅 德华 春生 秋菊 冬梅 永福 金凤 凤英 国庆 "
    "海燕 立新 卫东 红霞 丽君 晓峰 振华 宏伟 素芬 翠兰 泽宇 芷若 沐阳 锦程 一鸣 书瑶 家豪 佩琪"
).split()
GIVEN_ONE = tuple("磊婷涛娟鑫琳昊彤蕾瑜璇璟骁铮")
DISTRICTS = ("历城区", "槐荫区", "天桥区", "市中区", "长清区")
SHOPS = ("便利店", "五金店", "小吃店", "理发店", "副食店", "水果店")
ID_AREAS = ("370112", "370102", "370104", "370105", "370124", "210203", "510107", "620102")
MOBILE_PREFIXES = ("134", "147", "165", "172", "190", "192", "196", "198", "145", "166")
LANDLINE_AREAS = ("0531", "0532", "022", "0871", "0931")
MAIL_DOMAINS = ("163.com", "qq.com", "126.com", "sina.cn", "example.org")
PINYIN = ("zhuge", "ouyang", "linghu", "gongsun", "zhangsun", "pang", "qu", "xiang", "ruan", "lan")


def nfkc(v: str) -> str:
    return unicodedata.normalize("NFKC", v or "")


def fullwidth(v: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in v)


@dataclass
class Person:
    name: str
    cert18: str  # the canonical 18-digit number
    cert_spelled: str  # as planted: spaces, full width, lower x or the 15-digit form
    mobile: str  # 11 digits
    mobile_spelled: str
    landline: str  # area + local digits
    landline_spelled: str
    email: str


@dataclass
class Planted:
    """Everything planted; `names` must never appear in clear below raw, nor the numbers in any spelling."""

    people: list[Person] = field(default_factory=list)
    context_only: list[Person] = field(default_factory=list)  # names in no name field (free text, shop names)
    shops: list[str] = field(default_factory=list)  # 个体工商户 names that carry a person's name
    records: dict[str, list[str]] = field(default_factory=dict)  # resource → ids rewritten
    evaluation_comments: dict[str, str] = field(default_factory=dict)  # evaluation id → planted text
    legal_persons: dict[str, str] = field(
        default_factory=dict
    )  # penalty id → enterprise name (valid 91 code)

    @property
    def everyone(self) -> list[Person]:
        return self.people + self.context_only

    def names(self) -> set[str]:
        return {p.name for p in self.everyone}

    def numbers(self) -> dict[str, str]:
        """digits → kind, the forms a leak would take once spaces, dashes and +86 are gone."""
        out = {}
        for p in self.everyone:
            out[p.cert18] = "身份证号"
            out[p.cert18[:6] + p.cert18[8:17]] = "身份证号"  # its 15-digit form
            out[p.mobile] = "手机号"
            out[p.landline] = "电话"
            out[p.landline[-8:]] = "电话"
        return out


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.used: set[str] = set()
        self.n = 0

    def name(self, compound: bool | None = None) -> str:
        rng = self.rng
        while True:
            compound = rng.random() < 0.5 if compound is None else compound
            surname = rng.choice(COMPOUND_SURNAMES) if compound else rng.choice(SINGLE_SURNAMES)
            given = rng.choice(GIVEN_TWO) if rng.random() < 0.8 else rng.choice(GIVEN_ONE)
            n = surname + given
            if n not in self.used and len(n) >= 3:
                self.used.add(n)
                return n

    def cert(self) -> tuple[str, str]:
        rng = self.rng
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
        first17 = f"{rng.choice(ID_AREAS)}{born:%Y%m%d}{rng.randrange(1000):03d}"
        c18 = first17 + ric.calc_check_digit(first17)
        spellings = [
            c18,
            f"{c18[:6]} {c18[6:14]} {c18[14:]}",
            fullwidth(c18),
            c18[:-1] + c18[-1].lower(),
            f"{c18[:3]} {c18[3:6]} {c18[6:10]} {c18[10:14]} {c18[14:]}",
        ]
        if c18.startswith(tuple(ID_AREAS)) and c18[6:8] == "19":
            spellings.append(c18[:6] + c18[8:17])  # 15-digit legacy form
        return c18, rng.choice(spellings)

    def mobile(self) -> tuple[str, str]:
        rng = self.rng
        m = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        spellings = [
            m,
            f"{m[:3]} {m[3:7]} {m[7:]}",
            f"{m[:3]}-{m[3:7]}-{m[7:]}",
            f"+86 {m[:3]} {m[3:7]} {m[7:]}",
            f"+86{m}",
            f"+86-{m[:3]}-{m[3:7]}-{m[7:]}",
            f"0086 {m}",
            f"(+86){m}",
            fullwidth(m),
        ]
        return m, rng.choice(spellings)

    def landline(self) -> tuple[str, str]:
        rng = self.rng
        area = rng.choice(LANDLINE_AREAS)
        local = f"{rng.choice('5678')}{rng.randrange(10**7):07d}"
        spellings = [f"{area}-{local}", f"{area} {local}", f"({area}){local}", f"{area}{local}"]
        return area + local, rng.choice(spellings)

    def person(self, compound: bool | None = None) -> Person:
        self.n += 1
        name = self.name(compound)
        c18, c_sp = self.cert()
        m, m_sp = self.mobile()
        land, land_sp = self.landline()
        mail = f"{self.rng.choice(PINYIN)}.{self.n}{self.rng.randrange(100, 999)}@{self.rng.choice(MAIL_DOMAINS)}"
        return Person(name, c18, c_sp, m, m_sp, land, land_sp, mail)

    def shop(self, p: Person) -> str:
        return f"{self.rng.choice(DISTRICTS)}{p.name}{self.rng.choice(SHOPS)}"


# free text that carries a name only in context, as people write it (the name is `{n}`)
CONTEXT_TEMPLATES = (
    "我是{n}，电话{landline}，请尽快回复",
    "我叫{n}，身份证{cert}，一直查不到进度",
    "本人{n}，手机{mobile}，材料已补齐",
    "姓名：{n}，邮箱{email}",
    "联系人：{n} 电话 {landline}",
    "经办人{n}态度很好",
    "投诉人{n}反映窗口推诿",
    "申请人：{n}（身份证号{cert}）",
)


def context_text(rng: random.Random, p: Person) -> str:
    t = rng.choice(CONTEXT_TEMPLATES)
    local_only = rng.random() < 0.3
    return t.format(
        n=p.name,
        cert=p.cert_spelled,
        mobile=p.mobile_spelled,
        landline=p.landline[-8:] if local_only and "电话" in t else p.landline_spelled,
        email=p.email,
    )


def _live(store) -> list[dict]:
    return sorted((r for r in store.all().values() if not r["is_deleted"]), key=lambda r: r["id"])


def _sample(rng, records, k):
    return rng.sample(records, min(k, len(records)))


def valid_uscc(rng: random.Random, head: str = "91") -> str:
    from stdnum.cn import uscc

    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    first17 = head + "370112" + "".join(rng.choice(alphabet) for _ in range(9))
    return first17 + uscc.calc_check_digit(first17)


def plant_world(world, seed: int = 97, k: int = 24) -> Planted:
    """Rewrite k records of each person-bearing resource of `world` with independent values."""
    gen = Generator(seed)
    rng = gen.rng
    out = Planted()

    def rewrite(system, resource, recs, fn):
        store = world.store(system, resource)
        for rec in recs:
            fn(rec)
            store.replace(rec)
            out.records.setdefault(resource, []).append(rec["id"])

    # evaluations: the person is the contact of the case it rates; the record has no name field
    cases = world.store("gov_service", "cases")
    evals = [e for e in _live(world.store("gov_service", "evaluations")) if cases.get(e["case_id"])]
    for ev in _sample(rng, evals, k):
        p = gen.person()
        out.people.append(p)
        case = cases.get(ev["case_id"])
        case["contact_name"] = p.name
        cases.replace(case)
        ev["comment"] = f"办事员态度差，请回电{p.mobile_spelled}，我是{p.name}"
        world.store("gov_service", "evaluations").replace(ev)
        out.evaluation_comments[ev["id"]] = ev["comment"]
        out.records.setdefault("evaluations", []).append(ev["id"])
    # evaluations whose names appear nowhere else (context patterns only)
    for ev in _sample(rng, [e for e in evals if e["id"] not in out.evaluation_comments], k):
        p = gen.person()
        out.context_only.append(p)
        ev["comment"] = context_text(rng, p)
        world.store("gov_service", "evaluations").replace(ev)
        out.records.setdefault("evaluations", []).append(ev["id"])

    # 个体工商户 named after their owner: in the registry, and as a case applicant / inspected
    # object whose code arrives as eighteen zeros (neither valid nor the documented placeholder)
    entities = _live(world.store("market_supervision", "entities"))
    shop_entities = _sample(rng, entities, k)
    for ent in shop_entities:
        p = gen.person()
        out.people.append(p)
        shop = gen.shop(p)
        out.shops.append(shop)
        ent.update(
            name=shop,
            entity_type="个体工商户",
            legal_rep_name=p.name,
            legal_rep_cert_no=p.cert_spelled,
            phone=p.mobile_spelled,
        )
        world.store("market_supervision", "entities").replace(ent)
        out.records.setdefault("entities", []).append(ent["id"])
    shop_names = list(out.shops)

    def case_as_shop(rec):
        rec.update(
            applicant_type="法人",
            applicant_cert_type="统一社会信用代码",
            applicant_cert_no="000000000000000000",
            applicant_name=rng.choice(shop_names),
        )

    all_cases = _live(cases)
    rewrite("gov_service", "cases", _sample(rng, all_cases, k), case_as_shop)

    # a party of unknown kind, not in the registry either: treated as a person
    def case_unknown(rec):
        p = gen.person()
        out.context_only.append(p)
        shop = gen.shop(p)
        out.shops.append(shop)
        rec.update(
            applicant_type="法人",
            applicant_cert_type="其他",
            applicant_cert_no="000000000000000000",
            applicant_name=shop,
        )

    rewrite("gov_service", "cases", _sample(rng, all_cases, k // 2), case_unknown)

    def case_person(rec):
        p = gen.person()
        out.people.append(p)
        rec.update(
            applicant_type="自然人",
            applicant_cert_type="身份证",
            applicant_cert_no=p.cert_spelled,
            applicant_name=p.name,
            contact_name=p.name,
            contact_phone=p.mobile_spelled,
        )

    rewrite("gov_service", "cases", _sample(rng, all_cases, k), case_person)

    def result_as_shop(rec):
        rec.update(uscc="000000000000000000", entity_name=rng.choice(shop_names))

    rewrite(
        "random_inspection",
        "results",
        _sample(rng, _live(world.store("random_inspection", "results")), k),
        result_as_shop,
    )

    def inspector(rec):
        p = gen.person()
        out.people.append(p)
        rec.update(name=p.name, cert_no=p.cert_spelled, phone=p.mobile_spelled)

    rewrite(
        "random_inspection",
        "inspectors",
        _sample(rng, _live(world.store("random_inspection", "inspectors")), 4),
        inspector,
    )

    # penalties: natural persons (facts name them with numbers), shops with zero codes, and
    # enterprises with a valid 91 code whose names must stay in clear
    pens = _live(world.store("credit", "admin-penalties"))
    picked = _sample(rng, pens, 3 * k)

    def penalty_person(rec):
        p, q = gen.person(), gen.person()
        out.people.append(p)
        out.context_only.append(q)
        rec.update(
            party_category="自然人",
            party_name=p.name,
            uscc=None,
            legal_rep_name=None,
            cert_type="身份证",
            cert_no=p.cert_spelled,
        )
        rec["violation_facts"] = (
            f"经查，当事人{p.name}（身份证号：{p.cert_spelled}，联系电话：{p.mobile_spelled}）无证经营。"
            f"投诉人{q.name}反映，其联系电话{q.landline_spelled}，邮箱{q.email}。"
        )

    # typed 法人及非法人组织 by the credit system, yet the registry lists the name as a 个体工商户
    def penalty_shop(rec):
        i = rng.randrange(len(shop_entities))
        shop, owner = shop_names[i], shop_entities[i]["legal_rep_name"]
        rec.update(
            party_category="法人及非法人组织",
            party_name=shop,
            uscc="000000000000000000",
            legal_rep_name=owner,
            cert_no=None,
            cert_type=None,
        )
        rec["violation_facts"] = f"经查，{shop}（经营者：{owner}）销售过期食品。"

    def penalty_enterprise(rec):
        name = f"济南{rng.choice(('鲁信', '泉城', '齐鲁', '舜耕'))}{rng.choice(('科技', '商贸', '食品'))}有限公司"
        rec.update(
            party_category="法人及非法人组织", party_name=name, uscc=valid_uscc(rng, rng.choice(("91", "93")))
        )
        out.legal_persons[rec["id"]] = name

    rewrite("credit", "admin-penalties", picked[:k], penalty_person)
    rewrite("credit", "admin-penalties", picked[k : 2 * k], penalty_shop)
    rewrite("credit", "admin-penalties", picked[2 * k :], penalty_enterprise)

    def licence(rec):
        p, q = gen.person(), gen.person()
        out.people.append(p)
        out.context_only.append(q)
        rec.update(
            party_category="自然人",
            party_name=p.name,
            cert_type="身份证",
            cert_no=p.cert_spelled,
            legal_rep_name=None,
            uscc=None,
        )
        rec["content"] = f"准予{p.name}从事食品经营，经办人：{q.name}，联系电话 {q.landline_spelled}"

    rewrite(
        "credit", "admin-licenses", _sample(rng, _live(world.store("credit", "admin-licenses")), k), licence
    )
    return out


def plant_submissions(conn, gen_seed: int, planted: Planted, k: int = 8) -> None:
    """Land planted values into the departments' submitted rows (raw, directly: a test world)."""
    gen = Generator(gen_seed)
    gen.used |= planted.names()
    rng = gen.rng
    for table, fields in (
        ("barrier_complaints", ("complainant_name", "summary")),
        ("rectification_ledger", ("lead_official", "description")),
        ("violation_cases", (None, "summary")),
    ):
        ids = [
            r[0]
            for r in conn.execute(f"select raw_id from raw.submissions__{table} order by raw_id").fetchall()
        ]
        for raw_id in rng.sample(ids, min(k, len(ids))):
            p, q = gen.person(), gen.person()
            (planted.people if fields[0] else planted.context_only).append(p)
            planted.context_only.append(q)
            text = f"{p.name}反映：{context_text(rng, q)}" if fields[0] else context_text(rng, q)
            patch = {fields[1]: text}
            if fields[0]:
                patch[fields[0]] = p.name
            if table == "barrier_complaints":
                patch["complainant_phone"] = p.mobile
            conn.execute(
                f"update raw.submissions__{table} set payload = payload || %s::jsonb where raw_id = %s",
                (json.dumps(patch, ensure_ascii=False), raw_id),
            )
            planted.records.setdefault(table, []).append(str(raw_id))


PSEUDONYM = re.compile(r"[\w.-]+:[0-9a-f]{64}")


def scan(text_values, planted: Planted) -> list[tuple[str, str, str, str]]:
    """(relation, column, kind, value) of every planted value found in clear among text_values."""
    names = sorted(planted.names() | set(planted.shops), key=len, reverse=True)
    name_re = re.compile("|".join(map(re.escape, names)))
    numbers = planted.numbers()
    number_re = re.compile("|".join(sorted(map(re.escape, numbers), key=len, reverse=True)))
    mail_re = re.compile(
        "|".join(sorted((re.escape(p.email.lower()) for p in planted.everyone), key=len, reverse=True))
    )
    leaks = []
    for relation, column, value in text_values:
        text = PSEUDONYM.sub("", nfkc(value))
        flat = re.sub(r"\s+", "", text)
        for m in name_re.finditer(flat):
            leaks.append((relation, column, "姓名", m.group(0)))
        digits = re.sub(r"[\s\-()（）+]", "", flat)
        for m in number_re.finditer(digits):
            leaks.append((relation, column, numbers[m.group(0)], m.group(0)))
        for m in mail_re.finditer(text.lower()):
            leaks.append((relation, column, "邮箱", m.group(0)))
    return leaks
