"""The declarative definition of the four submission templates, read from templates.yml."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources as _res

import yaml

TYPES = ("text", "date", "int", "enum", "uscc", "dept", "phone")
_SPACES = re.compile(r"\s+")
_ANNOTATION = re.compile(r"\([^()]*\)$")


def header_key(text: object) -> str:
    """How a header is compared: NFKC, no spaces at all, no `*` marks of required columns.

    `案例　编号`, ` *案例编号 ` and `案例编号` are the same header.
    """
    if text is None:
        return ""
    text = str(text)
    if len(text) > 200:  # not a header or an enum value; not worth a cache slot
        return _header_key(text)
    return _cached_header_key(text)


def _header_key(text: str) -> str:
    return _SPACES.sub("", unicodedata.normalize("NFKC", text)).strip("*")


_cached_header_key = functools.lru_cache(maxsize=65536)(_header_key)  # enum values repeat in every row


@dataclass(frozen=True)
class Column:
    header: str
    field: str
    type: str
    required: bool = True
    nullable: bool = False
    values: tuple[str, ...] = ()
    min: int | None = None
    max: int | None = None
    pattern: str | None = None
    pattern_hint: str | None = None
    required_when: tuple[tuple[str, str], ...] = ()
    not_before: str | None = None
    pi: bool = False
    free_text: bool = False

    @property
    def key(self) -> str:
        return header_key(self.header)

    @property
    def shows_value(self) -> bool:
        """May a receipt quote this column's value? Never for personal information or free text."""
        return not (self.pi or self.free_text)


@dataclass(frozen=True)
class Template:
    code: str  # ASCII, e.g. violation_cases
    name: str  # 中文模板名, e.g. 违规案例
    title: str
    key: tuple[str, ...]  # headers forming the record id
    columns: tuple[Column, ...] = field(repr=False)

    @property
    def table(self) -> str:
        return f"submissions__{self.code}"

    @property
    def qualified_table(self) -> str:
        return f"raw.{self.table}"

    @property
    def current_view(self) -> str:
        return f"raw.{self.table}_current"

    @property
    def asset_name(self) -> str:
        return self.qualified_table

    @cached_property
    def by_key(self) -> dict[str, Column]:
        return {c.key: c for c in self.columns}

    def column(self, header: str) -> Column:
        return self.by_key[header_key(header)]

    def match(self, text: object) -> Column | None:
        """The column a header cell names; a trailing note such as `得分（1-5分）` is tolerated."""
        key = header_key(text)
        col = self.by_key.get(key)
        if col is None and key.endswith(")"):
            col = self.by_key.get(_ANNOTATION.sub("", key))
        return col

    @property
    def required_headers(self) -> tuple[str, ...]:
        return tuple(c.header for c in self.columns if c.required)


def _column(code: str, spec: dict) -> Column:
    where = f"templates.yml: {code}.{spec.get('header', '?')}"
    unknown = set(spec) - set(Column.__dataclass_fields__)
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    if spec.get("type") not in TYPES:
        raise ValueError(f"{where}: type must be one of {TYPES}, not {spec.get('type')!r}")
    if spec["type"] == "enum" and not spec.get("values"):
        raise ValueError(f"{where}: an enum needs values")
    if spec.get("pattern"):
        re.compile(spec["pattern"])
    spec = dict(spec)
    spec["values"] = tuple(str(v) for v in spec.get("values", ()))
    spec["required_when"] = tuple((str(k), str(v)) for k, v in (spec.get("required_when") or {}).items())
    return Column(**spec)


@cache
def templates() -> dict[str, Template]:
    """code → Template, in the order of templates.yml; checks the definition hangs together."""
    raw = yaml.safe_load(_res.files(__package__).joinpath("templates.yml").read_text(encoding="utf-8"))
    out: dict[str, Template] = {}
    for code, spec in raw.items():
        columns = tuple(_column(code, c) for c in spec["columns"])
        t = Template(code, spec["name"], spec["title"], tuple(spec["key"]), columns)
        keys = [c.key for c in columns]
        if len(set(keys)) != len(keys):
            raise ValueError(f"templates.yml: {code} repeats a header")
        if len({c.field for c in columns}) != len(columns):
            raise ValueError(f"templates.yml: {code} repeats a field name")
        for c in columns:
            refs = [h for h, _ in c.required_when] + ([c.not_before] if c.not_before else [])
            for ref in refs:
                if header_key(ref) not in t.by_key:
                    raise ValueError(f"templates.yml: {code}.{c.header} refers to unknown column {ref}")
        for k in t.key:
            col = t.by_key.get(header_key(k))
            if col is None or col.nullable or not col.required:
                raise ValueError(
                    f"templates.yml: {code} key column {k} must be a required, non-nullable column"
                )
        out[code] = t
    names = [t.name for t in out.values()]
    if len(set(names)) != len(names):
        raise ValueError("templates.yml: two templates share a Chinese name")
    return out


def template(code: str) -> Template:
    try:
        return templates()[code]
    except KeyError:
        raise KeyError(f"unknown submission template {code!r}; known: {list(templates())}") from None


def by_name(text: str) -> Template | None:
    """The template whose Chinese name or code is `text` (after normalisation), else None."""
    key = header_key(text).lower()
    for t in templates().values():
        if key in (header_key(t.name), t.code):
            return t
    return None
