"""Made-up but valid-looking people, phones, 身份证号, 统一社会信用代码, firm names and addresses."""

from __future__ import annotations

import random
from bisect import bisect
from datetime import date, timedelta
from functools import cache
from itertools import accumulate
from typing import NamedTuple

from stdnum.cn import ric, uscc

COUNTY = "示范区"
COUNTY_AREA = "360421"

# (surname, relative frequency): roughly the national ranking, so names look ordinary
_SURNAMES = (
    "王14 李14 张13 刘10 陈9 杨6 黄5 赵5 吴4 周4 徐3 孙3 马3 朱3 胡3 郭3 何3 高2 林2 罗2 郑2 梁2 "
    "谢2 宋2 唐2 许2 韩2 冯2 邓2 曹2 彭2 曾2 肖2 田1 董1 袁1 潘1 于1 蒋1 蔡1 余1 杜1 叶1 程1 苏1 "
    "魏1 吕1 丁1 任1 沈1 姚1 卢1 姜1 崔1 钟1 谭1 陆1 汪1 范1 金1 石1 廖1 贾1 夏1 韦1 付1 方1 白1 "
    "邹1 孟1 熊1 秦1 邱1 江1 尹1 薛1 闫1 段1 雷1 侯1 龙1 史1 陶1 黎1 贺1 顾1 毛1 郝1 龚1 邵1 万1 "
    "钱1 严1 覃1 武1 戴1 莫1 孔1 向1 汤1 欧阳1 司马1 诸葛1"
)
SURNAMES = tuple(s.rstrip("0123456789") for s in _SURNAMES.split())
_SURNAME_CUM = list(accumulate(int(s[len(s.rstrip("0123456789")) :]) for s in _SURNAMES.split()))

GIVEN_MALE = "伟刚勇毅俊峰强军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发武新利清飞彬富顺信子杰涛昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪心邦承乐绍功松善厚庆磊民友裕河哲江超浩亮政谦亨奇固之轮翰朗伯宏言若鸣朋斌梁栋维启克伦翔旭鹏泽晨辰士以建家致树炎德行时泰盛雄琛钧冠策腾楠榕风航弘"
GIVEN_FEMALE = "秀娟英华慧巧美娜静淑惠珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽"

# 身份证 area codes: the county itself most often, then its neighbours, then big cities
_AREAS = (
    (COUNTY_AREA, 60),
    ("360403", 6),
    ("360423", 3),
    ("360425", 3),
    ("360426", 3),
    ("360428", 3),
    ("360429", 3),
    ("360430", 3),
    ("360481", 3),
    ("360102", 3),
    ("360103", 2),
    ("360121", 2),
    ("360122", 2),
    ("110105", 1),
    ("110108", 1),
    ("310104", 1),
    ("330106", 1),
    ("320106", 1),
    ("440106", 1),
    ("420106", 1),
    ("370102", 1),
    ("410105", 1),
    ("350102", 1),
)
MOBILE_PREFIXES = (
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 166 173 175 176 "
    "177 178 180 181 182 183 184 185 186 187 188 189 191 193 195 197 198 199"
).split()
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

BRAND_CHARS = "鑫盛华宏隆兴达源泰鸿瑞丰恒嘉信安康德顺福金祥美永利通博创佳新昌晟宇辰航润泽和益众成汇聚远图腾锦亿诚豪弘晖卓越骏峰"
TOWNS = (
    "城关镇",
    "沙河街道",
    "港口街镇",
    "新合镇",
    "狮子街道",
    "永安乡",
    "岷山乡",
    "江洲镇",
    "涌泉乡",
    "马回岭镇",
    "城子镇",
    "新塘乡",
)
ROADS = (
    "人民路",
    "建设路",
    "解放路",
    "中山路",
    "长江大道",
    "滨江路",
    "工业园大道",
    "迎宾大道",
    "学府路",
    "柴桑路",
    "东风路",
    "新华路",
    "和平路",
    "光明路",
    "幸福路",
    "锦绣路",
)
VILLAGES = (
    "桃园村",
    "新塘村",
    "东湖村",
    "长岭村",
    "石门村",
    "河西村",
    "马鞍村",
    "青山村",
    "乌石村",
    "荷塘村",
)
FARM_PRODUCTS = (
    "水稻种植",
    "蔬菜种植",
    "生猪养殖",
    "水产养殖",
    "茶叶种植",
    "柑橘种植",
    "家禽养殖",
    "食用菌种植",
    "中药材种植",
    "油茶种植",
)


class Person(NamedTuple):
    name: str
    cert_no: str  # clean 18-character 身份证号
    phone: str  # clean 11-digit mobile
    birth: date


def weighted(rng: random.Random, cum: list[float]) -> int:
    """Index drawn from cumulative weights (cheaper than rng.choices for one draw)."""
    return bisect(cum, rng.random() * cum[-1])


def ric_check(first17: str) -> str:
    return ric.calc_check_digit(first17 + "0")


def uscc_check(first17: str) -> str:
    return uscc.calc_check_digit(first17)


def org_code(body8: str) -> str:
    """GB 11714 组织机构代码 (8 characters + its own check character)."""
    total = sum(
        (int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True)
    )
    c = 11 - total % 11
    return body8 + ("X" if c == 10 else "0" if c == 11 else str(c))


@cache
def _area_years() -> dict[str, tuple[int, int]]:
    """Birth years for which stdnum accepts each area code, so clean numbers pass ric.validate."""
    from stdnum import numdb

    out = {}
    for code, _ in _AREAS:
        lo, hi = 0, 9999
        for _part, props in numdb.get("cn/loc").info(code):
            county = props.get("county", "")
            if county.startswith("["):
                start, end = county[1:].split("]")[0].split("-")
                lo, hi = int(start or 0), int(end or 9999)
        out[code] = (lo, hi)
    return out


@cache
def _areas_for_year(year: int) -> tuple[tuple[str, ...], list[int]]:
    spans = _area_years()
    codes = [(c, w) for c, w in _AREAS if spans[c][0] <= year <= spans[c][1]] or [("110105", 1)]
    return tuple(c for c, _ in codes), list(accumulate(w for _, w in codes))


class NameMaker:
    """Draws people and organisations from one random stream."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def surname(self) -> str:
        return SURNAMES[weighted(self.rng, _SURNAME_CUM)]

    def person_name(self, male: bool | None = None) -> str:
        rng = self.rng
        male = rng.random() < 0.5 if male is None else male
        pool = GIVEN_MALE if male else GIVEN_FEMALE
        given = rng.choice(pool) if rng.random() < 0.35 else rng.choice(pool) + rng.choice(pool)
        return self.surname() + given

    def phone(self) -> str:
        return self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(100_000_000):08d}"

    def cert_no(self, birth: date, male: bool) -> str:
        rng = self.rng
        codes, cum = _areas_for_year(birth.year)
        area = codes[weighted(rng, cum)]
        seq = rng.randrange(500) * 2 + (1 if male else 0)
        first17 = f"{area}{birth:%Y%m%d}{seq:03d}"
        return first17 + ric_check(first17)

    def person(self, min_age: int = 18, max_age: int = 75, ref: date = date(2026, 1, 1)) -> Person:
        rng = self.rng
        male = rng.random() < 0.55
        birth = ref - timedelta(days=rng.randrange(min_age * 365, max_age * 365))
        return Person(self.person_name(male), self.cert_no(birth, male), self.phone(), birth)

    def uscc(self, prefix: str) -> str:
        """A fresh valid code; newer registrations carry the "MA" organisation codes."""
        rng = self.rng
        if rng.random() < 0.6:
            body = "MA" + "".join(rng.choice(USCC_ALPHABET) for _ in range(6))
        else:
            body = f"{rng.randrange(10**8):08d}"
        first17 = prefix + COUNTY_AREA + org_code(body)
        return first17 + uscc_check(first17)

    def brand(self) -> str:
        return self.rng.choice(BRAND_CHARS) + self.rng.choice(BRAND_CHARS)

    def address(self) -> str:
        rng = self.rng
        return f"{COUNTY}{rng.choice(TOWNS)}{rng.choice(ROADS)}{rng.randrange(1, 400)}号"

    def village(self) -> str:
        return self.rng.choice(VILLAGES)

    def farm_product(self) -> str:
        return self.rng.choice(FARM_PRODUCTS)
