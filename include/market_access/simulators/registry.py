"""Clean cross-references between the systems (who exists, which items, which inspectors)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple


class ItemRef(NamedTuple):
    id: str
    dept: int  # Department.index
    type_code: str  # L C G O S
    name: str
    legal: int
    promised: int
    depth: int


class EntityRef(NamedTuple):
    id: str
    uscc: str  # clean (or the 个体工商户 placeholder)
    name: str
    etype: str
    rep_name: str
    rep_cert: str
    phone: str
    address: str
    established: date
    status: str


@dataclass
class Registry:
    items: list[ItemRef] = field(default_factory=list)
    item_cum: list[float] = field(default_factory=list)  # case popularity, cumulative
    license_items: list[ItemRef] = field(default_factory=list)
    license_cum: list[float] = field(default_factory=list)
    negative_codes: dict[str, str | None] = field(default_factory=dict)  # subject → list code
    entities: list[EntityRef] = field(default_factory=list)  # sorted by established
    entity_days: list[int] = field(default_factory=list)  # established ordinals, for bisect
    penalised: set[str] = field(default_factory=set)
    abnormal: set[str] = field(default_factory=set)
    repair_candidates: list[tuple[str, str, date]] = field(default_factory=list)
    repairs_planned: int = 0
    insp_items: list[tuple[str, int]] = field(default_factory=list)  # (id, dept index)
    insp_by_dept: dict[int, list[str]] = field(default_factory=dict)
    pool_by_item: dict[str, list[int]] = field(default_factory=dict)  # item id → entity indexes
    inspectors_by_dept: dict[int, list[str]] = field(default_factory=dict)
    plans: dict[tuple[int, int], str] = field(default_factory=dict)  # (dept index, year) → plan id
    doc_numbers: dict[tuple[int, int, str], int] = field(default_factory=dict)

    def add_entity(self, ref: EntityRef) -> int:
        self.entities.append(ref)
        self.entity_days.append(ref.established.toordinal())
        return len(self.entities) - 1

    def entities_by(self, day: date) -> int:
        """How many entities were established on or before day (a prefix of self.entities)."""
        return bisect_right(self.entity_days, day.toordinal())

    def pick(self, rng, n: int, types: tuple[str, ...], tries: int = 8) -> EntityRef | None:
        """A random entity of one of types among the first n (those registered by then)."""
        for _ in range(tries if n else 0):
            e = self.entities[rng.randrange(n)]
            if e.etype in types:
                return e
        return None

    def doc_no(self, dept: int, year: int, kind: str) -> int:
        key = (dept, year, kind)
        self.doc_numbers[key] = self.doc_numbers.get(key, 0) + 1
        return self.doc_numbers[key]
