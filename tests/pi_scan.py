"""The personal-information scan shared by the staging test and the end-to-end `make run` test:
every text-like value of every relation in the de-identified layers, searched for valid ID
numbers, mobile numbers and the simulators' person names."""

from __future__ import annotations

import re
import unicodedata

from stdnum.cn import ric

from market_access.simulators.world import World
from market_access.sources import catalog

LAYERS = ("staging", "intermediate", "marts")

# fields that carry a natural person's name, and the condition under which they do
NAME_FIELDS = {
    "cases": [("applicant_name", lambda r: r["applicant_type"] == "自然人"), ("contact_name", None)],
    "entities": [("legal_rep_name", None)],
    "admin-licenses": [("legal_rep_name", None), ("party_name", lambda r: r["party_category"] == "自然人")],
    "admin-penalties": [("legal_rep_name", None), ("party_name", lambda r: r["party_category"] == "自然人")],
    "inspectors": [("name", None)],
}
PI_FIELDS = {
    "applicant_name",
    "contact_name",
    "legal_rep_name",
    "party_name",
    "name",
    "entity_name",
    "applicant_cert_no",
}
FREE_TEXT = {"comment", "violation_facts", "content"}


def norm(v: str) -> str:
    """Half-width and no spaces, as a person would compare names (independent of the SQL)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", v or ""))


def ric18(v: str) -> str:
    v = norm(v).upper()
    if re.fullmatch(r"\d{15}", v):
        first17 = v[:6] + "19" + v[6:]
        return first17 + ric.calc_check_digit(first17 + "0")
    return v


def truth_names(world: World) -> set[str]:
    names = set()
    for res in catalog.all_resources():
        for field, when in NAME_FIELDS.get(res.name, []):
            for rec in world.truth(res.system, res.name).values():
                if rec.get(field) and (when is None or when(rec)):
                    names.add(norm(rec[field]))
    return {n for n in names if len(n) >= 2}


def public_text(world: World) -> str:
    """Every clear, non-personal text the sources publish (legal persons' names, addresses, items…)."""
    parts = []
    for res in catalog.all_resources():
        if res.name == "inspectors":
            continue
        for rec in world.truth(res.system, res.name).values():
            code = norm(rec.get("uscc") or rec.get("applicant_cert_no") or "").upper()
            person = (
                rec.get("entity_type") == "个体工商户"
                or rec.get("party_category") in ("自然人", "个体工商户")
                or rec.get("applicant_type") == "自然人"
                or code.startswith("92")
                or code == "00000000000000000X"
            )
            for k, v in rec.items():
                if (
                    not isinstance(v, str)
                    or k in FREE_TEXT
                    or k in PI_FIELDS - {"name", "entity_name", "applicant_name", "party_name"}
                ):
                    continue
                if k in ("name", "entity_name", "applicant_name", "party_name") and person:
                    continue
                parts.append(norm(v))
    return "\n".join(parts)


def text_values(conn, layers=LAYERS):
    """(relation, column, value as text) of every text-like column in the layers, distinct per column."""
    cols = conn.execute(
        """select table_schema, table_name, column_name from information_schema.columns
           where table_schema = any(%s)
             and (data_type in ('text', 'character varying', 'json', 'jsonb', 'ARRAY', 'USER-DEFINED'))""",
        (list(layers),),
    ).fetchall()
    assert cols, "no relations to scan"
    for schema, table, column in cols:
        rows = conn.execute(
            f'select distinct "{column}"::text from "{schema}"."{table}" where "{column}" is not null'
        ).fetchall()
        for (value,) in rows:
            yield f"{schema}.{table}", column, value


PSEUDONYM = re.compile(r"[\w.-]+:[0-9a-f]{64}")
RIC = re.compile(r"(?<![0-9])(\d{17}[\dXx]|\d{15})(?![0-9])")
MOBILE = re.compile(r"(?<![0-9])(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d){8}(?![0-9])")


def is_real_ric(candidate: str) -> bool:
    v = ric18(candidate)
    try:
        return v[-1] == ric.calc_check_digit(v) and 1900 <= ric.get_birth_date(v).year <= 2026
    except Exception:  # noqa: BLE001 - stdnum refuses: not an ID number
        return False


def find_leaks(
    conn,
    world: World,
    *,
    extra_names=frozenset(),
    min_names: int = 1000,
    min_values: int = 10_000,
    layers=LAYERS,
) -> list[tuple[str, str, str, str]]:
    """(relation, column, kind, text) of every personal identifier found in clear in `layers`."""
    names = truth_names(world) | {norm(n) for n in extra_names if len(norm(n)) >= 2}
    public = public_text(world)
    # a two-character name can also be a firm's brand ("金华"): such collisions cannot be told apart
    collisions = {n for n in names if n in public}
    assert len(collisions) < 0.05 * len(names), sorted(collisions)[:20]
    names -= collisions
    assert len(names) > min_names
    name_re = re.compile("|".join(map(re.escape, sorted(names, key=len, reverse=True))))
    leaks = []
    scanned = 0
    for relation, column, value in text_values(conn, layers):
        scanned += 1
        text = PSEUDONYM.sub("", unicodedata.normalize("NFKC", value))
        for m in RIC.finditer(text):
            if is_real_ric(m.group(1)):
                leaks.append((relation, column, "身份证号", m.group(0)))
        for m in MOBILE.finditer(text):
            leaks.append((relation, column, "手机号", m.group(0)))
        for m in name_re.finditer(re.sub(r"\s+", "", text)):
            leaks.append((relation, column, "姓名", m.group(0)))
    assert scanned > min_values
    return leaks
