"""Which rules apply to which department, and the Great Expectations suites that follow from it.

A suite is named `<dept_code>.<asset>` (e.g. `113604210795604218.stg_gov_service__cases`), so each
department's suites sit in its own folder of the expectation store and of Data Docs; it holds one
expectation per rule, with the rule id, severity and category in its `meta`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from market_access.quality.batches import DirectoryDept
from market_access.quality.catalogue import FEEDS_ASSET, Catalogue, Rule

GX_SEVERITY = {"blocking": "critical", "warning": "warning"}


@dataclass(frozen=True)
class SuiteSpec:
    dept_code: str
    relation: str  # the asset
    asset_name: str
    rules: tuple[Rule, ...]

    @property
    def name(self) -> str:
        return f"{self.dept_code}.{self.asset_name}"


def applies_to(rule: Rule, directory: Iterable[DirectoryDept]) -> list[str]:
    """dept_codes the rule applies to (before asking whether the department has records)."""
    directory = list(directory)
    deps = rule.departments
    if deps == "all":
        return [d.code for d in directory]
    if deps == "sources":
        return [d.code for d in directory if rule.answered_by in d.sources]
    if isinstance(deps, list):
        return [d.code for d in directory if d.code in deps]
    ((kind, value),) = deps.items()
    values = value if isinstance(value, list) else [value]
    if kind == "role":
        return [d.code for d in directory if d.role in values]
    return [d.code for d in directory if any(v in d.sources for v in values)]


def plan(
    catalogue: Catalogue,
    directory: Iterable[DirectoryDept],
    rows: Mapping[str, Mapping[str, int]],
    departments: Iterable[str] | None = None,
) -> dict[str, list[SuiteSpec]]:
    """dept_code → its suites. `rows` is relation → dept_code → records in the run's batch: a
    department without records in an asset gets no suite for it (a row rule has nothing to say
    about no rows; whether it should have had any is a dataset-level rule on the feeds asset)."""
    directory = list(directory)
    wanted = set(departments) if departments else None
    by_dept: dict[str, dict[str, list[Rule]]] = {}
    for rule in catalogue.rules:
        for code in applies_to(rule, directory):
            if wanted is not None and code not in wanted:
                continue
            if rows.get(rule.asset, {}).get(code, 0) <= 0:
                continue
            by_dept.setdefault(code, {}).setdefault(rule.asset, []).append(rule)
    out: dict[str, list[SuiteSpec]] = {}
    for code in sorted(by_dept):
        specs = []
        for relation, rules in by_dept[code].items():
            name = "department_feeds" if relation == FEEDS_ASSET else relation.split(".", 1)[1]
            specs.append(SuiteSpec(code, relation, name, tuple(rules)))
        out[code] = sorted(specs, key=lambda s: s.asset_name)
    return out


def expectation_for(rule: Rule):
    """The GX expectation object of a rule (imports Great Expectations)."""
    from great_expectations.expectations.registry import get_expectation_impl

    cls = get_expectation_impl(rule.expectation)
    return cls(
        **rule.expectation_kwargs,
        description=f"[{rule.id}] {rule.description_zh}",
        severity=GX_SEVERITY[rule.severity],
        meta={
            "rule_id": rule.id,
            "severity": rule.severity,
            "category": rule.category,
            "level": rule.level,
            "deadline_zh": rule.deadline_zh,
            "basis_zh": rule.basis_zh,
            "fix_zh": rule.fix_zh,
        },
    )


def build_suite(spec: SuiteSpec):
    """A gx.ExpectationSuite for one department and asset."""
    import great_expectations as gx

    return gx.ExpectationSuite(
        name=spec.name,
        expectations=[expectation_for(rule) for rule in spec.rules],
        meta={"dept_code": spec.dept_code, "asset": spec.relation},
    )
