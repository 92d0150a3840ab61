"""The SQL helpers (schema util) and deid.pseudonym() against python-stdnum, the stdlib and hand-written values."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import random
import stat
import uuid
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from stdnum.cn import ric, uscc

from market_access import deid, warehouse
from market_access.dbt import grant_transformer, run_dbt
from market_access.load.schema import bootstrap
from market_access.settings import Settings

KEY = bytes(range(32)) + b"market-access-test-key"
KEY_ID = "test-udf-1"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
AREAS = ("110105", "360421", "440524", "310104", "360403")


@pytest.fixture(scope="module")
def udf_cfg(warehouse_server, tmp_path_factory):
    """One database for the module (on the embedded 18, then on 15): roles, util functions (via dbt), a test key."""
    name = f"t_udf_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with warehouse.connect(warehouse_server, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    cfg = dataclasses.replace(warehouse_server, dbname=name)
    with warehouse.connect(cfg, autocommit=True) as conn:
        bootstrap(conn)
        grant_transformer(conn)
        deid.install_key(conn, KEY, KEY_ID)
    run_dbt(
        ["run-operation", "install_util_functions"], cfg, target_path=tmp_path_factory.mktemp("dbt-target")
    )
    yield cfg
    with warehouse.connect(warehouse_server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def db(udf_cfg):
    with warehouse.connect(udf_cfg, autocommit=True) as conn:
        yield conn


def many(conn, function: str, values: list, cast: str = "text") -> list:
    """function(v) for every v, in order, in one round trip."""
    rows = conn.execute(
        f"select {function}(v) from unnest(%s::{cast}[]) with ordinality as t (v, n) order by n", (values,)
    ).fetchall()
    return [r[0] for r in rows]


# --- codes ------------------------------------------------------------------------------------------
def test_halfwidth_and_clean_code(db):
    assert many(db, "util.to_halfwidth", ["１２３ＡＢＣ　ｘ", "９１１１", "a，b"]) == [
        "123ABC x",
        "9111",
        "a,b",
    ]
    assert many(
        db, "util.clean_code", [" ９１１１００００６０００３７３４１ｌ\u3000", "", "  \u3000", "ab c"]
    ) == [
        "91110000600037341L",
        None,
        None,
        "ABC",
    ]


# not declared strict so that PostgreSQL inlines them (util_functions.sql): each must still give null
# for null by itself, and an ordinary argument must not change its answer
NOT_STRICT = [
    "clean_code",
    "clean_name",
    "clean_text",
    "ric_birth_year",
    "mask_middle",
    "mask_ric",
    "mask_phone",
    "to_int",
    "to_numeric",
    "to_bool",
]


@pytest.mark.parametrize("function", NOT_STRICT)
def test_the_inlined_helpers_give_null_for_null(db, function):
    (strict,) = db.execute(
        "select p.proisstrict from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
        "where n.nspname = 'util' and p.proname = %s",
        (function,),
    ).fetchone()
    assert strict is False
    assert many(db, f"util.{function}", [None]) == [None]


def test_clean_name_fast_path_equals_the_full_normalisation(db):
    values = [
        "张三",
        "欧阳 娜娜",
        "王\u3000小明",
        "ＡＢ李四",
        "李四\t",
        "",
        " ",
        "Ann Lee",
        "赵(六)",
        "赵（六）",
    ]
    fast = many(db, "util.clean_name", values)
    full = [
        r[0]
        for r in db.execute(
            "select nullif(regexp_replace(util.to_halfwidth(v), '\\s+', '', 'g'), '') "
            "from unnest(%s::text[]) with ordinality as t (v, n) order by n",
            (values,),
        ).fetchall()
    ]
    assert (
        fast
        == full
        == ["张三", "欧阳娜娜", "王小明", "AB李四", "李四", None, None, "AnnLee", "赵(六)", "赵(六)"]
    )


def _random_uscc(rng: random.Random) -> str:
    first17 = f"{rng.choice('1259')}{rng.choice('123')}{rng.choice(AREAS)}" + "".join(
        rng.choice(USCC_ALPHABET) for _ in range(9)
    )
    return first17 + uscc.calc_check_digit(first17)


def test_uscc_check_matches_stdnum(db):
    rng = random.Random(1)
    values = ["91110000600037341L", "91310115MA1K3BTP2B", "913205056082348768", "00000000000000000X"]
    for _ in range(3000):
        v = _random_uscc(rng)
        r = rng.random()
        if r < 0.3:  # wrong check character
            v = v[:-1] + rng.choice([c for c in USCC_ALPHABET if c != v[-1]])
        elif r < 0.4:  # a letter the alphabet excludes, or a letter where digits belong
            i = rng.randrange(18)
            v = v[:i] + rng.choice("IOSVZ" if i >= 8 else "ABC") + v[i + 1 :]
        elif r < 0.5:
            v = v.lower()
        elif r < 0.55:
            v = v[: rng.randrange(18)]
        values.append(v)
    got = many(db, "util.uscc_is_valid", values)
    expected = [uscc.is_valid(v) for v in values]
    assert got == expected
    assert got[:4] == [True, True, True, False]  # domain.md §3 examples; the placeholder fails the check
    assert sum(expected) > 1000 and sum(not e for e in expected) > 1000


def _random_ric(rng: random.Random) -> str:
    birth = date(1940, 1, 1) + timedelta(days=rng.randrange(60 * 365))
    first17 = f"{rng.choice(AREAS)}{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + ric.calc_check_digit(first17 + "0")


def _ric_expected(v: str) -> bool:
    """stdnum's checks except the place of birth (the SQL function does not look up area codes)."""
    try:
        v = ric.compact(v)
        if len(v) != 18 or not v[:17].isdigit() or v[-1] != ric.calc_check_digit(v):
            return False
        ric.get_birth_date(v)
        return True
    except Exception:  # noqa: BLE001 - any stdnum refusal means invalid
        return False


def test_ric_check_matches_stdnum(db):
    rng = random.Random(2)
    values = ["11010519491231002X", "440524188001010014", "11010519491231002x", "110105194912310021"]
    for _ in range(3000):
        v = _random_ric(rng)
        r = rng.random()
        if r < 0.3:
            v = v[:-1] + rng.choice([c for c in "0123456789X" if c != v[-1]])
        elif r < 0.4:  # an impossible birth date, check character recomputed so only the date is wrong
            first17 = v[:10] + rng.choice(("1332", "0230", "0431", "0000", "0229")) + v[14:17]
            v = first17 + ric.calc_check_digit(first17 + "0")
        elif r < 0.45:
            v = v[:5] + "A" + v[6:]
        values.append(v)
    got = many(db, "util.ric_is_valid", values)
    expected = [_ric_expected(v) for v in values]
    assert got == expected
    assert got[:4] == [True, True, True, False]  # domain.md §3 examples, lowercase x, a wrong check
    # where stdnum's full validation (place of birth included) accepts, so does the SQL
    assert all(ok for v, ok in zip(values, got, strict=True) if ric.is_valid(v))


def test_ric_15_to_18(db):
    rng = random.Random(3)
    eighteen = [v for v in (_random_ric(rng) for _ in range(500)) if v[6:8] == "19"]
    fifteen = [v[:6] + v[8:17] for v in eighteen]
    assert many(db, "util.ric_to_18", fifteen) == eighteen
    assert many(db, "util.ric_is_valid", fifteen) == [True] * len(fifteen)
    # hand-checked: 110105491231002 → 110105 19 491231 002 + check X
    assert many(db, "util.ric_to_18", ["110105491231002", " １１０１０５１９４９１２３１００２ｘ "]) == [
        "11010519491231002X",
        "11010519491231002X",
    ]
    assert many(
        db, "util.ric_birth_year", ["110105491231002", "11010519491231002X", "110105194913310021"]
    ) == [
        1949,
        1949,
        None,
    ]


# --- phones, dates ------------------------------------------------------------------------------
def test_phone_normalize_and_validity(db):
    raw = [
        "+86 138-0013-8000",
        "0086 13800138000",
        "8613800138000",
        "138 0013 8000",
        "１３８００１３８０００",
        "12345678901",
        "0792-8888888",
        "",
        "1380013800",
    ]
    assert many(db, "util.phone_normalize", raw) == [
        "13800138000",
        "13800138000",
        "13800138000",
        "13800138000",
        "13800138000",
        "12345678901",
        "07928888888",
        None,
        "1380013800",
    ]
    assert many(db, "util.mobile_is_valid", raw) == [True] * 5 + [False] * 4


def test_parse_date(db):
    raw = [
        "2026-03-05",
        "2026/03/05",
        "2026/3/5",
        "20260305",
        " 2026-03-05 ",
        "2026-02-30",
        "2026-13-01",
        "abc",
        "",
    ]
    d = date(2026, 3, 5)
    assert many(db, "util.parse_date", raw) == [d, d, d, d, d, None, None, None, None]
    assert many(db, "util.parse_date", ["2024-02-29 10:00:00", "2023-02-29"]) == [date(2024, 2, 29), None]


def test_beijing_timestamps(db):
    got = many(
        db, "util.parse_beijing_timestamp", ["2026-03-05 08:00:00", "2026/03/05", "2026-03-05 25:00:00", ""]
    )
    assert got[0] == datetime(2026, 3, 5, 0, 0, tzinfo=UTC)
    assert got[1] == datetime(2026, 3, 4, 16, 0, tzinfo=UTC)
    assert got[2:] == [None, None]


# the leap rules (÷4, ÷100, ÷400), year 0000 and the last year, around every month's end
EDGE_YEARS = (
    0,
    1,
    4,
    100,
    400,
    1600,
    1700,
    1800,
    1896,
    1899,
    1900,
    1904,
    1999,
    2000,
    2001,
    2023,
    2024,
    2100,
    2400,
    9996,
    9999,
)


def _iso_or_none(v: str):
    """The stdlib calendar is the oracle: fromisoformat refuses year 0, day 0, 30 February, 24:00 …"""
    try:
        return datetime.fromisoformat(v) if " " in v else date.fromisoformat(v)
    except ValueError:
        return None


def test_date_validity_on_the_calendar_edges(db):
    """Days 00–32 of months 00–13 of EDGE_YEARS: parse_date, parse_beijing_timestamp and the birth
    date inside ric_is_valid accept exactly the real dates (no pg_input_is_valid: PostgreSQL 15 too)."""
    dates = [f"{y:04d}-{m:02d}-{d:02d}" for y in EDGE_YEARS for m in range(14) for d in range(33)]
    expected = [_iso_or_none(v) for v in dates]
    # by hand: 20 real years (not 0000), 9 of them leap (4, 400, 1600, 1896, 1904, 2000, 2024, 2400, 9996)
    assert sum(e is not None for e in expected) == 20 * 365 + 9
    assert many(db, "util.parse_date", dates) == expected
    if db.info.server_version >= 160000:  # the server's own date parser agrees (the check this replaces)
        pg = db.execute(
            "select pg_input_is_valid(v, 'date') from unnest(%s::text[]) with ordinality as t (v, n) order by n",
            (dates,),
        ).fetchall()
        assert [r[0] for r in pg] == [e is not None for e in expected]

    times = ("00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60", "07:05:09")
    stamps = [f"{v} {t}" for v in dates[::7] for t in times]
    # read back as Beijing wall-clock time: the value parsed, whatever the tz database says of 1900
    got = db.execute(
        "select util.parse_beijing_timestamp(v) at time zone 'Asia/Shanghai'"
        " from unnest(%s::text[]) with ordinality as t (v, n) order by n",
        (stamps,),
    ).fetchall()
    assert [r[0] for r in got] == [_iso_or_none(v) for v in stamps]

    # 身份证号 with that birth date and a correct check character: valid iff the date is real and ≥ 1800
    rics = [
        first17 + ric.calc_check_digit(first17 + "0")
        for first17 in (f"360421{v.replace('-', '')}001" for v in dates)
    ]
    assert many(db, "util.ric_is_valid", rics) == [e is not None and e.year >= 1800 for e in expected]


# --- masks and scrubbing ------------------------------------------------------------------------
def test_masks(db):
    assert many(db, "util.mask_ric", ["11010519491231002x", "110105491231002", None]) == [
        "110***********002X",
        "110***********002X",
        None,
    ]
    assert many(db, "util.mask_phone", ["+86 138-0013-8000", "13800138000", None]) == [
        "138****8000",
        "138****8000",
        None,
    ]
    assert many(db, "util.mask_name", ["张三", "欧阳娜娜", " 王小明\u3000", "李", "", None]) == [
        "张*",
        "欧阳**",
        "王**",
        "*",
        None,
        None,
    ]


def test_scrub_text(db):
    cases = [
        ("我的身份证号是11010519491231002X，谢谢", [], "我的身份证号是[身份证号]，谢谢"),
        ("旧证110105491231002已换", [], "旧证[身份证号]已换"),
        ("请联系我13800138000", [], "请联系我[手机号]"),
        ("电话+86 138-0013-8000或138 0013 8000", [], "电话[手机号]或[手机号]"),
        ("电话１３８００１３８０００", [], "电话[手机号]"),
        ("当事人王小明（身份证号：110105194912310021）", ["王小明"], "当事人[姓名]（身份证号：[身份证号]）"),
        ("示范区王伟便利店（经营者：王伟）", ["王伟", "示范区王伟便利店"], "[姓名]（经营者：[姓名]）"),
        ("感谢工作人员李娜的耐心解答", [], "感谢工作人员[姓名]的耐心解答"),
        ("窗口人员很耐心，讲解清楚", [], "窗口人员很耐心，讲解清楚"),
        ("罚款5000元，决定书编号2025001", ["张"], "罚款5000元，决定书编号2025001"),
    ]
    for text, names, expected in cases:
        got = db.execute("select util.scrub_text(%s, %s::text[])", (text, names)).fetchone()[0]
        assert got == expected, text
    assert db.execute("select util.scrub_text(null, array['x'])").fetchone()[0] is None


# every spelling of issue #11, item 2, written by hand; the expected text replaces each by its kind
SPELLINGS = [
    # ID numbers: spaces or full-width digits inside, 15 digits, lower-case x
    ("身份证 110105 19491231 002X 已提交", "身份证 [身份证号] 已提交"),
    ("证号１１０１０５１９４９１２３１００２Ｘ", "证号[身份证号]"),
    ("证号 110 105 1949 1231 002x。", "证号 [身份证号]。"),
    ("老证号110105491231002", "老证号[身份证号]"),
    # mobiles in every common grouping
    ("回电138 0013 8000", "回电[手机号]"),
    ("回电138-0013-8000。", "回电[手机号]。"),
    ("回电+8613800138000", "回电[手机号]"),
    ("回电+86 138 0013 8000", "回电[手机号]"),
    ("回电(+86)13800138000", "回电[手机号]"),
    ("回电0086-138-0013-8000", "回电[手机号]"),
    # landlines, and a bare local number after 电话
    ("座机0531-88065289转分机", "座机[电话]转分机"),
    ("座机（0531）88065289", "座机[电话]"),
    ("电话88065289", "电话[电话]"),
    ("联系电话：88065289，", "联系电话：[电话]，"),
    # e-mail
    ("邮箱zhuge.xy_01@163.com，谢谢", "邮箱[邮箱]，谢谢"),
    # names nobody knows, after a title: single and compound surnames
    ("办事员态度差，请回电13800138000，我是诸葛秀英", "办事员态度差，请回电[手机号]，我是[姓名]"),
    ("我叫令狐子轩，想问进度", "我叫[姓名]，想问进度"),
    ("本人公孙雨桐电话0531-88065289", "本人[姓名]电话[电话]"),
    ("姓名：欧阳娜娜；", "姓名：[姓名]；"),
    ("联系人：长孙无忌 13800138000", "联系人：[姓名] [手机号]"),
    ("经办人庞子轩态度很好", "经办人[姓名]态度很好"),
    ("投诉人屈原反映窗口推诿", "投诉人[姓名]反映窗口推诿"),
    ("我是王伟", "我是[姓名]"),
    # ordinary text after a title stays
    ("我是来办事的，本人很满意", "我是来办事的，本人很满意"),
    ("我是第一次来，流程很清楚", "我是第一次来，流程很清楚"),
    ("12345热线转办，罚款5000元，2026年3月5日", "12345热线转办，罚款5000元，2026年3月5日"),
    ("统一社会信用代码91110000600037341L", "统一社会信用代码91110000600037341L"),
]


@pytest.mark.parametrize(("text", "expected"), SPELLINGS)
def test_scrub_text_spellings(db, text, expected):
    assert db.execute("select util.scrub_text(%s, array[]::text[])", (text,)).fetchone()[0] == expected


# --- keyed pseudonyms -----------------------------------------------------------------------------
def _reference_hmac(key: bytes, value: str) -> str:
    """RFC 2104 by hand, independent of deid.py."""
    k = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in k) + value.encode()).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in k) + inner).hexdigest()


def test_python_reference_is_rfc2104():
    for key in (KEY, b"x" * 100):
        for value in ("11010519491231002X", "张三", "13800138000"):
            assert deid.pseudonym(value, key, "k") == "k:" + _reference_hmac(key, value)
            assert (
                deid.pseudonym(value, key, "k") == "k:" + hmac.new(key, value.encode(), "sha256").hexdigest()
            )
    assert deid.pseudonym(None, KEY, "k") is None
    assert deid.pseudonym("", KEY, "k") is None


def test_sql_pseudonym_equals_python(db):
    rng = random.Random(4)
    values = ["11010519491231002X", "张三", "欧阳娜娜", "13800138000", "a" * 200]
    values += [
        "".join(rng.choice("0123456789X张王李赵ab ") for _ in range(rng.randrange(1, 40))) for _ in range(300)
    ]
    db.execute("set role transformer")
    got = many(db, "deid.pseudonym", values)
    db.execute("reset role")
    assert got == [deid.pseudonym(v, KEY, KEY_ID) for v in values]
    assert many(db, "deid.pseudonym", [None, ""]) == [None, None]


def test_rotation_and_idempotence(udf_cfg):
    with warehouse.connect(udf_cfg, autocommit=True) as conn:
        assert deid.install_key(conn, KEY, KEY_ID) is False  # same key again: nothing changes
        with pytest.raises(ValueError, match="already installed"):
            deid.install_key(conn, b"y" * 32, KEY_ID)
        long_key = b"z" * 100  # longer than a SHA-256 block: hashed first
        assert deid.install_key(conn, long_key, "test-udf-2") is True
        assert conn.execute("select deid.pseudonym('张三')").fetchone()[0] == deid.pseudonym(
            "张三", long_key, "test-udf-2"
        )
        assert deid.install_key(conn, KEY, KEY_ID) is True  # back to the first key
        assert conn.execute("select deid.pseudonym('张三')").fetchone()[0] == deid.pseudonym(
            "张三", KEY, KEY_ID
        )
        assert conn.execute("select count(*) from deid.hmac_keys where is_active").fetchone()[0] == 1


@pytest.mark.parametrize("role", ["analyst", "transformer"])
def test_key_table_is_unreadable(db, role):
    db.execute(f"set role {role}")
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("select * from deid.hmac_keys")
    finally:
        db.execute("reset role")


def test_only_transformer_may_pseudonymise(db):
    db.execute("set role transformer")
    assert db.execute("select deid.pseudonym('x')").fetchone()[0].startswith(KEY_ID + ":")
    db.execute("reset role")
    db.execute("set role analyst")
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("select deid.pseudonym('x')")
    finally:
        db.execute("reset role")


# --- where the key comes from -------------------------------------------------------------------
def test_key_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(deid.KEY_ENV, "ab" * 32)
    monkeypatch.setenv(deid.KEY_ID_ENV, "prod-2026")
    k = deid.key_from_environment()
    assert (k.key, k.key_id) == (bytes([0xAB]) * 32, "prod-2026")
    assert "ab" * 4 not in repr(k)
    monkeypatch.setenv(deid.KEY_ENV, "too short")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        deid.key_from_environment()


def test_local_key_is_generated_once(monkeypatch, tmp_path):
    monkeypatch.delenv(deid.KEY_ENV, raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE", raising=False)
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    monkeypatch.setenv("MARKET_ACCESS_LOCAL_DIR", str(tmp_path))
    settings = Settings()
    first = deid.key_from_environment(settings)
    path = tmp_path / "secrets" / "hmac.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.key_id == "local-" + hashlib.sha256(first.key).hexdigest()[:8]
    assert deid.key_from_environment(settings) == first
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://u@h/db")
    with pytest.raises(deid.MissingKeyError, match="no HMAC key"):
        deid.key_from_environment(settings)
