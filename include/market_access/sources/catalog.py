"""The declarative list of source systems and resources, read from systems.yml."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources as _res

import yaml


@dataclass(frozen=True)
class Resource:
    system: str
    name: str  # as the API spells it, e.g. "admin-penalties"
    title: str
    fields: tuple[str, ...]

    @property
    def table(self) -> str:
        """Raw table name without schema, e.g. credit__admin_penalties."""
        return f"{self.system}__{self.name.replace('-', '_')}"

    @property
    def qualified_table(self) -> str:
        return f"raw.{self.table}"

    @property
    def asset_name(self) -> str:
        return f"raw.{self.table}"


@dataclass(frozen=True)
class System:
    name: str
    title: str
    conn_id: str
    resources: tuple[Resource, ...]

    def resource(self, name: str) -> Resource:
        for r in self.resources:
            if r.name == name:
                return r
        raise KeyError(f"{self.name} has no resource {name!r}; known: {[r.name for r in self.resources]}")


@cache
def systems() -> dict[str, System]:
    raw = yaml.safe_load(_res.files(__package__).joinpath("systems.yml").read_text(encoding="utf-8"))
    out: dict[str, System] = {}
    for sys_name, spec in raw.items():
        resources = tuple(
            Resource(system=sys_name, name=r_name, title=r["title"], fields=tuple(r["fields"]))
            for r_name, r in spec["resources"].items()
        )
        out[sys_name] = System(name=sys_name, title=spec["title"], conn_id=spec["conn_id"], resources=resources)
    return out


def system(name: str) -> System:
    try:
        return systems()[name]
    except KeyError:
        raise KeyError(f"unknown source system {name!r}; known: {sorted(systems())}") from None


def all_resources() -> list[Resource]:
    return [r for s in systems().values() for r in s.resources]
