"""The dirt real sources send (contract §1.3), applied to clean values at small, seeded rates."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

from market_access.simulators.names import USCC_ALPHABET, NameMaker
from market_access.simulators.reference import Department

FULLWIDTH_SPACE = "\u3000"
PLACEHOLDER_USCC = "00000000000000000X"

# chance per value; small enough that most records are clean, large enough that every kind shows up
# in a few thousand records (the unit tests look for each kind at scale 0.05)
RATES = {
    "spaces": 0.006,
    "empty": 0.006,
    "fullwidth": 0.004,
    "lowercase": 0.005,
    "lowercase_x": 0.25,  # of the numbers that end in X
    "ric15": 0.005,
    "bad_check": 0.004,
    "phone_format": 0.012,
    "phone_spaces": 0.01,
    "date_slash": 0.005,
    "date_compact": 0.005,
    "dept_name": 0.005,
    "dept_alias": 0.008,
}
KINDS = (
    "empty",
    "spaces",
    "fullwidth_space",
    "fullwidth_chars",
    "lowercase_uscc",
    "lowercase_x",
    "ric15",
    "bad_check",
    "placeholder",
    "phone_plus86",
    "phone_spaces",
    "date_slash",
    "date_compact",
    "dept_name",
    "dept_alias",
    "pi_in_text",
)


def fullwidth(s: str, rng: random.Random) -> str:
    """Turn some ASCII letters and digits into their 全角 forms (at least one)."""
    idx = [i for i, c in enumerate(s) if c.isascii() and c.isalnum()]
    if not idx:
        return s
    chosen = {i for i in idx if rng.random() < 0.5} or {rng.choice(idx)}
    return "".join(chr(ord(c) + 0xFEE0) if i in chosen else c for i, c in enumerate(s))


class Dirt:
    """Applies dirt with one random stream and counts what it did per (resource, kind)."""

    def __init__(self, rng: random.Random, counts: Counter | None = None, resource: str = "") -> None:
        self.rng = rng
        self.counts = counts if counts is not None else Counter()
        self.resource = resource

    def _hit(self, kind: str) -> bool:
        return self.rng.random() < RATES[kind]

    def note(self, kind: str) -> None:
        self.counts[(self.resource, kind)] += 1

    def spaces(self, v: str) -> str:
        """Leading/trailing ASCII or 全角 spaces around a value."""
        if not v or not self._hit("spaces"):
            return v
        r = self.rng.random()
        if r < 0.4:
            self.note("fullwidth_space")
            return v + FULLWIDTH_SPACE if r < 0.2 else FULLWIDTH_SPACE + v
        self.note("spaces")
        return " " + v if r < 0.6 else (v + " " if r < 0.8 else f" {v}  ")

    def text(self, v: str | None) -> str | None:
        """A name or free text: empty now and then, spaces now and then."""
        if v is None:
            return self.missing(None)
        if self._hit("empty"):
            self.note("empty")
            return ""
        return self.spaces(v)

    def missing(self, v):
        """A null that some sources send as an empty string."""
        if v is None and self._hit("empty"):
            self.note("empty")
            return ""
        return v

    def code(self, v: str | None) -> str | None:
        """A code without a check character (item codes, list codes): 全角 or spaces."""
        return self._code_common(v) if v else self.missing(v)

    def _code_common(self, v: str) -> str:
        if self._hit("fullwidth"):
            self.note("fullwidth_chars")
            return fullwidth(v, self.rng)
        return self.spaces(v)

    def _bad_check(self, v: str, alphabet: str) -> str:
        self.note("bad_check")
        return v[:-1] + self.rng.choice([c for c in alphabet if c != v[-1]])

    def uscc(self, v: str | None) -> str | None:
        if not v:
            return self.missing(v)
        if v == PLACEHOLDER_USCC:
            return v
        if self._hit("lowercase") and any(c.isalpha() for c in v):
            self.note("lowercase_uscc")
            return v.lower()
        if self._hit("bad_check"):
            return self._bad_check(v, USCC_ALPHABET)
        return self._code_common(v)

    def cert(self, v: str | None) -> str | None:
        """A 身份证号: lowercase x, 15-digit legacy form, wrong check, 全角, spaces."""
        if not v:
            return self.missing(v)
        if v.endswith("X") and self._hit("lowercase_x"):
            self.note("lowercase_x")
            return v[:-1] + "x"
        if v[6:8] == "19" and self._hit("ric15"):
            self.note("ric15")
            return v[:6] + v[8:17]
        if self._hit("bad_check"):
            return self._bad_check(v, "0123456789X")
        return self._code_common(v)

    def phone(self, v: str | None) -> str | None:
        if not v:
            return self.missing(v)
        if self._hit("phone_format"):
            self.note("phone_plus86")
            return f"+86 {v[:3]}-{v[3:7]}-{v[7:]}"
        if self._hit("phone_spaces"):
            self.note("phone_spaces")
            return f"{v[:3]} {v[3:7]} {v[7:]}"
        if self._hit("empty"):
            self.note("empty")
            return ""
        return v

    def date(self, d: date | None) -> str | None:
        if d is None:
            return self.missing(None)
        if self._hit("date_slash"):
            self.note("date_slash")
            return f"{d:%Y/%m/%d}"
        if self._hit("date_compact"):
            self.note("date_compact")
            return f"{d:%Y%m%d}"
        return d.isoformat()

    def dept(self, dept: Department) -> str:
        """A department code, sometimes written as its name or a short alias instead."""
        if self._hit("dept_name"):
            self.note("dept_name")
            return dept.name
        if dept.aliases and self._hit("dept_alias"):
            self.note("dept_alias")
            return self.rng.choice(dept.aliases)
        return self._code_common(dept.code)

    def dept_name(self, dept: Department) -> str:
        """A department's name field, sometimes in its short form."""
        if dept.aliases and self._hit("dept_alias"):
            self.note("dept_alias")
            return self.rng.choice(dept.aliases)
        return self.spaces(dept.name)


def _person(v: str):
    return NameMaker(random.Random(v)).person()  # seeded by the value, so worlds stay reproducible


def _wrong_check(v: str) -> str:
    return v[:-1] + ("1" if v[-1] != "1" else "2")


# (kind, resource, field, which records qualify, how the value is dirtied)
SHOWCASE = (
    ("empty", "cases", "contact_phone", lambda v, r: bool(v), lambda v: ""),
    ("spaces", "entities", "name", lambda v, r: v == v.strip(), lambda v: f" {v} "),
    ("fullwidth_space", "entities", "address", lambda v, r: bool(v), lambda v: v + FULLWIDTH_SPACE),
    (
        "fullwidth_chars",
        "entities",
        "uscc",
        lambda v, r: v[:2] == "91",
        lambda v: fullwidth(v, random.Random(v)),
    ),
    ("lowercase_uscc", "admin-licenses", "uscc", lambda v, r: bool(v) and v[:2] == "91", str.lower),
    (
        "lowercase_x",
        "cases",
        "applicant_cert_no",
        lambda v, r: len(v) == 18 and v.endswith("X"),
        lambda v: v[:-1] + "x",
    ),
    (
        "ric15",
        "cases",
        "applicant_cert_no",
        lambda v, r: len(v) == 18 and v[6:8] == "19",
        lambda v: v[:6] + v[8:17],
    ),
    ("bad_check", "entities", "uscc", lambda v, r: v[:2] == "91", _wrong_check),
    (
        "bad_check",
        "cases",
        "applicant_cert_no",
        lambda v, r: len(v) == 18 and r["applicant_cert_type"] == "身份证",
        _wrong_check,
    ),
    (
        "phone_plus86",
        "entities",
        "phone",
        lambda v, r: len(v) == 11,
        lambda v: f"+86 {v[:3]}-{v[3:7]}-{v[7:]}",
    ),
    (
        "phone_spaces",
        "cases",
        "contact_phone",
        lambda v, r: len(v) == 11,
        lambda v: f"{v[:3]} {v[3:7]} {v[7:]}",
    ),
    ("date_slash", "admin-penalties", "decided_on", lambda v, r: len(v) == 10, lambda v: v.replace("-", "/")),
    ("date_compact", "entities", "established_on", lambda v, r: len(v) == 10, lambda v: v.replace("-", "")),
    ("dept_name", "cases", "dept_code", lambda v, r: v[:2] == "11", None),
    ("dept_alias", "abnormal-operations", "authority_code", lambda v, r: v[:2] == "11", None),
    (
        "placeholder",
        "entities",
        "uscc",
        lambda v, r: r["entity_type"] == "个体工商户",
        lambda v: PLACEHOLDER_USCC,
    ),
    ("pi_in_text", "evaluations", "comment", lambda v, r: True, lambda v: f"{v}，请联系我{_person(v).phone}"),
    (
        "pi_in_text",
        "evaluations",
        "comment",
        lambda v, r: True,
        lambda v: f"我的身份证号是{_person(v).cert_no}，{v}",
    ),
    (
        "pi_in_text",
        "evaluations",
        "comment",
        lambda v, r: True,
        lambda v: f"感谢工作人员{_person(v).name}的耐心解答，{v}",
    ),
    (
        "pi_in_text",
        "admin-penalties",
        "violation_facts",
        lambda v, r: True,
        lambda v: (
            f"{v}当事人（身份证号：{_person(v).cert_no}，联系电话：{_person(v).phone}）对上述事实无异议。"
        ),
    ),
)
