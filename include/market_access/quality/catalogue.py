"""The data-quality rule catalogue (config/quality_rules.yml): load, validate, and refuse it whole.

Rules are data: an operator adds one by adding a YAML entry (see the file's header for every
field). Problems that can be seen without a database (unknown expectation type, missing or empty
fields, a bad severity, level or category, a duplicate id, a rule on an undeclared asset, broken
SQL templates) are found here and reported together; problems that need the warehouse (a column
the asset does not have, a department code not in the directory) are found when a run starts.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

SEVERITIES = {"阻断": "blocking", "blocking": "blocking", "警告": "warning", "warning": "warning"}
SEVERITY_ZH = {"blocking": "阻断", "warning": "警告"}
LEVELS = ("row", "dataset")
CATEGORIES = ("completeness", "validity", "consistency", "uniqueness", "volume", "timeliness", "freshness")
CATEGORY_ZH = {
    "completeness": "完整性",
    "validity": "有效性",
    "consistency": "一致性",
    "uniqueness": "唯一性",
    "volume": "数据量",
    "timeliness": "及时性",
    "freshness": "新鲜度",
}
SUBMISSIONS = "submissions"
# the per-department summary asset the engine builds itself: one row per department with row counts,
# feed freshness per source and daily volume per asset (see batches.py)
FEEDS_ASSET = "quality.department_feeds"
ROLES = ("bureau", "ndrc", "industry")

RULE_FIELDS = {
    "id",
    "asset",
    "source",
    "departments",
    "expectation",
    "kwargs",
    "mostly",
    "columns",
    "severity",
    "level",
    "category",
    "description_zh",
    "deadline_zh",
    "basis_zh",
    "fix_zh",
    "observed_zh",
    "counted_separately",
}
RULE_REQUIRED = (
    "id",
    "asset",
    "expectation",
    "severity",
    "level",
    "category",
    "description_zh",
    "fix_zh",
)
ASSET_FIELDS = {
    "title",
    "source",
    "answered_by",
    "template",
    "key",
    "department",
    "joins",
    "newest",
    "volume",
    "metrics",
}
ASSET_REQUIRED = ("title", "source", "key", "department")
_RULE_ID = re.compile(r"^[A-Z]{2}(-[A-Z0-9]+)+-\d{3}$")
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_RELATION = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
_DEPT_CODE = re.compile(r"^[0-9A-Z]{18}$")
# expectations whose result carries per-row counts and failing record ids (row-level rules need them)
_ROW_LEVEL_PREFIXES = (
    "expect_column_values_",
    "expect_column_pair_values_",
    "expect_compound_columns_",
    "expect_multicolumn_",
    "expect_select_column_values_",
)
# per-row expectations whose SQL implementation returns no failing record ids (GX 1.x)
_NO_RECORD_IDS = ("expect_compound_columns_to_be_unique",)
# kwargs that name columns of the batch (checked against the asset at run time)
COLUMN_KWARGS = ("column", "column_A", "column_B")
COLUMN_LIST_KWARGS = ("column_list",)


class CatalogueError(ValueError):
    """The catalogue cannot be used; the message lists every problem found."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = list(problems)
        listed = "\n  ".join(self.problems)
        super().__init__(
            f"{source}: 质量规则目录有 {len(self.problems)} 处错误, 整个目录不予使用 "
            f"(the rule catalogue is refused):\n  {listed}"
        )


@dataclass(frozen=True)
class DepartmentOf:
    """How an asset's records map to departments.

    code/ref: SQL expressions over the record (alias `t`, plus any `joins`): the department's code
    where the source wrote one, else the name or alias it wrote; resolved through the department
    directory's names (staging.stg_directory__department_names). role: every record belongs to
    the department with that directory role (e.g. the credit platform's records to the 发改局).
    """

    code: str | None = None
    ref: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class Volume:
    """Daily volume check: `date` (SQL) is the day a record counts for; the last working day before
    the run's data date is compared with the `window` working days before it."""

    date: str
    window: int = 20
    k: float = 3.0  # band = mean ± k·sd, sd at least √mean and at least 1
    min_mean: float = 1.0  # departments with fewer records a day on average are not judged


@dataclass(frozen=True)
class Asset:
    relation: str  # schema.table the records come from
    title: str
    source: str  # source system name, or 'submissions'
    answered_by: str  # the department directory's `sources` entry: system or template name
    key: str  # SQL: the record key (never personal information)
    department: DepartmentOf
    joins: str = ""
    newest: str | None = None  # SQL: when the record was last updated at its source (feed freshness)
    volume: Volume | None = None
    # name → SQL condition on a record; the feeds asset gets `<asset>__<name>`: the department's
    # records that meet it (e.g. plans for the current year)
    metrics: dict[str, str] = field(default_factory=dict)
    template: str | None = None

    @property
    def name(self) -> str:
        """Table part of the relation; with the department code it names the suite."""
        return self.relation.split(".", 1)[1]


@dataclass(frozen=True)
class Rule:
    id: str
    asset: str
    expectation: str
    severity: str  # blocking | warning
    level: str  # row | dataset
    category: str
    description_zh: str
    deadline_zh: str | None  # the time limit that applies (e.g. 作出决定之日起 7 个工作日内公示), if any
    fix_zh: str
    answered_by: str  # the directory `sources` entry the rule is about
    source: str  # system name or 'submissions' (ops.quality_results.source)
    kwargs: dict[str, Any] = field(default_factory=dict)
    mostly: float | None = None
    departments: Any = "sources"
    columns: dict[str, str] = field(default_factory=dict)  # derived columns: name → SQL (Jinja) over `t`
    observed_zh: str | None = None
    # label → SQL condition: counted and reported, never a failure
    counted_separately: dict[str, str] = field(default_factory=dict)
    basis_zh: str | None = None  # the standard or rule it rests on (e.g. 公民身份号码 GB 11643-1999)

    @property
    def expectation_kwargs(self) -> dict[str, Any]:
        out = dict(self.kwargs)
        if self.mostly is not None:
            out["mostly"] = self.mostly
        return out

    @property
    def referenced_columns(self) -> list[str]:
        """Columns of the batch the expectation names (asset columns or this rule's derived ones)."""
        out: list[str] = []
        for k in COLUMN_KWARGS:
            if isinstance(self.kwargs.get(k), str):
                out.append(self.kwargs[k])
        for k in COLUMN_LIST_KWARGS:
            out.extend(c for c in self.kwargs.get(k) or () if isinstance(c, str))
        return out


@dataclass(frozen=True)
class Catalogue:
    assets: dict[str, Asset]
    rules: tuple[Rule, ...]
    source: str = "<memory>"

    @cached_property
    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}

    def rules_on(self, relation: str) -> list[Rule]:
        return [r for r in self.rules if r.asset == relation]


# --- loading ------------------------------------------------------------------------------------


def default_path() -> Path:
    from market_access.settings import settings

    return settings().quality_rules_file


def load(path: Path | str | None = None) -> Catalogue:
    """Read and validate the catalogue; raises CatalogueError listing every problem."""
    path = Path(path) if path else default_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogueError(str(path), ["文件不存在 (file not found)"]) from None
    return parse(text, source=str(path))


def parse(text: str, source: str = "<memory>") -> Catalogue:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueError(source, [f"不是有效的 YAML (not valid YAML): {exc}"]) from None
    if not isinstance(doc, dict):
        raise CatalogueError(source, ["顶层必须是包含 assets 和 rules 的映射 (top level must be a mapping)"])
    problems: list[str] = []
    unknown_top = set(doc) - {"version", "assets", "rules"}
    if unknown_top:
        problems.append(f"未知的顶层字段 (unknown top-level keys): {', '.join(sorted(unknown_top))}")
    assets = _parse_assets(doc.get("assets"), problems)
    rules = _parse_rules(doc.get("rules"), assets, problems)
    if problems:
        raise CatalogueError(source, problems)
    return Catalogue(assets, tuple(rules), source)


def _parse_assets(raw: Any, problems: list[str]) -> dict[str, Asset]:
    from market_access.sources import catalog
    from market_access.submissions.templates import templates

    systems = set(catalog.systems())
    tmpls = templates()
    if not isinstance(raw, dict) or not raw:
        problems.append("assets 必须是非空映射: 关系名 → 定义 (assets must be a non-empty mapping)")
        return {}
    out: dict[str, Asset] = {}
    for relation, spec in raw.items():
        where = f"asset {relation}"
        if not isinstance(relation, str) or not _RELATION.match(relation):
            problems.append(f"{where}: 名称须为 schema.table (小写) (must be schema.table)")
            continue
        if relation == FEEDS_ASSET:
            problems.append(f"{where}: {FEEDS_ASSET} 由引擎生成, 不可声明 (built by the engine)")
            continue
        if not isinstance(spec, dict):
            problems.append(f"{where}: 定义必须是映射 (must be a mapping)")
            continue
        bad = False
        for key in ASSET_REQUIRED:
            if spec.get(key) in (None, "", {}):
                problems.append(f"{where}: 缺少字段 {key} (missing field)")
                bad = True
        unknown = set(spec) - ASSET_FIELDS
        if unknown:
            problems.append(f"{where}: 未知字段 (unknown fields) {', '.join(sorted(unknown))}")
        src = spec.get("source")
        template = spec.get("template")
        if src is not None and src not in systems and src != SUBMISSIONS:
            problems.append(
                f"{where}: source {src!r} 未知 (unknown; known: {', '.join(sorted(systems))}, {SUBMISSIONS})"
            )
            bad = True
        if src == SUBMISSIONS and template not in tmpls:
            problems.append(
                f"{where}: 报送资产须给出 template, 取值 {', '.join(tmpls)} (a submissions asset needs its template)"
            )
            bad = True
        answered_by = spec.get("answered_by") or (template if src == SUBMISSIONS else src)
        dept = _parse_department(spec.get("department"), where, problems)
        volume = None
        if spec.get("volume") is not None:
            v = spec["volume"]
            if not isinstance(v, dict) or not isinstance(v.get("date"), str):
                problems.append(f"{where}: volume 须为含 date (SQL) 的映射 (volume needs a date expression)")
            else:
                try:
                    volume = Volume(
                        date=v["date"],
                        window=int(v.get("window", 20)),
                        k=float(v.get("k", 3.0)),
                        min_mean=float(v.get("min_mean", 1.0)),
                    )
                except (TypeError, ValueError):
                    problems.append(f"{where}: volume 的 window/k/min_mean 须为数字 (must be numbers)")
        metrics = spec.get("metrics") or {}
        if not isinstance(metrics, dict) or not all(
            isinstance(k, str) and _IDENT.match(k) and isinstance(v, str) for k, v in metrics.items()
        ):
            problems.append(f"{where}: metrics 须为 名称 → SQL 条件 的映射 (metrics: name → SQL condition)")
            metrics = {}
        for label, sql_text in (
            ("key", spec.get("key")),
            ("joins", spec.get("joins")),
            ("newest", spec.get("newest")),
            *((f"metrics.{k}", v) for k, v in metrics.items()),
            ("volume.date", volume.date if volume else None),
        ):
            if sql_text is not None:
                _check_template(sql_text, f"{where}: {label}", problems)
        if bad or dept is None:
            continue
        out[relation] = Asset(
            relation=relation,
            title=str(spec["title"]),
            source=src,
            answered_by=answered_by,
            key=str(spec["key"]),
            department=dept,
            joins=str(spec.get("joins") or ""),
            newest=spec.get("newest"),
            volume=volume,
            metrics=dict(metrics),
            template=template,
        )
    return out


def _parse_department(raw: Any, where: str, problems: list[str]) -> DepartmentOf | None:
    if not isinstance(raw, dict):
        problems.append(
            f"{where}: department 须为映射: {{code, ref}} 或 {{role}} (department must be a mapping)"
        )
        return None
    unknown = set(raw) - {"code", "ref", "role"}
    if unknown:
        problems.append(f"{where}: department 的未知字段 (unknown keys) {', '.join(sorted(unknown))}")
        return None
    if "role" in raw:
        if raw["role"] not in ROLES or len(raw) > 1:
            problems.append(f"{where}: department.role 须为 {' / '.join(ROLES)} 之一且单独使用")
            return None
        return DepartmentOf(role=raw["role"])
    if not raw.get("code") and not raw.get("ref"):
        problems.append(f"{where}: department 须给出 code 和/或 ref (SQL 表达式) (needs code and/or ref)")
        return None
    for k in ("code", "ref"):
        if raw.get(k) is not None:
            _check_template(str(raw[k]), f"{where}: department.{k}", problems)
    return DepartmentOf(code=raw.get("code"), ref=raw.get("ref"))


def _parse_rules(raw: Any, assets: dict[str, Asset], problems: list[str]) -> list[Rule]:
    from market_access.sources import catalog
    from market_access.submissions.templates import templates

    directory_sources = {*catalog.systems(), *templates()}
    if not isinstance(raw, list) or not raw:
        problems.append("rules 必须是非空列表 (rules must be a non-empty list)")
        return []
    known = expectation_types()
    seen: dict[str, int] = {}
    out: list[Rule] = []
    for i, spec in enumerate(raw, start=1):
        rid = spec.get("id") if isinstance(spec, dict) else None
        where = f"rule #{i}" + (f" ({rid})" if rid else "")
        if not isinstance(spec, dict):
            problems.append(f"{where}: 规则必须是映射 (a rule must be a mapping)")
            continue
        bad = False
        for key in RULE_REQUIRED:
            value = spec.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                problems.append(f"{where}: 缺少字段 {key} (missing field)")
                bad = True
        unknown = set(spec) - RULE_FIELDS
        if unknown:
            problems.append(f"{where}: 未知字段 (unknown fields) {', '.join(sorted(unknown))}")
        if isinstance(rid, str):
            if not _RULE_ID.match(rid):
                problems.append(f"{where}: id 格式应如 GS-CASE-001 (id must look like GS-CASE-001)")
            if rid in seen:
                problems.append(f"{where}: id {rid} 重复, 已在规则 #{seen[rid]} 使用 (duplicate id)")
                bad = True
            else:
                seen[rid] = i
        expectation = spec.get("expectation")
        if isinstance(expectation, str) and expectation not in known:
            problems.append(
                f"{where}: 未知的 Great Expectations 期望类型 {expectation!r} (unknown expectation type)"
            )
            bad = True
        severity = (
            SEVERITIES.get(str(spec.get("severity")).strip()) if spec.get("severity") is not None else None
        )
        if spec.get("severity") is not None and severity is None:
            problems.append(
                f"{where}: severity {spec.get('severity')!r} 无效, 应为 阻断/blocking 或 警告/warning (bad severity)"
            )
            bad = True
        level = spec.get("level")
        if level is not None and level not in LEVELS:
            problems.append(f"{where}: level {level!r} 无效, 应为 row 或 dataset (bad level)")
            bad = True
        category = spec.get("category")
        if category is not None and category not in CATEGORIES:
            problems.append(
                f"{where}: category {category!r} 无效, 应为 {' / '.join(CATEGORIES)} (bad category)"
            )
            bad = True
        if (
            level == "row"
            and isinstance(expectation, str)
            and not expectation.startswith(_ROW_LEVEL_PREFIXES)
        ):
            problems.append(
                f"{where}: 行级规则须使用逐行期望 (expect_column_values_… 等), 才能给出失败记录; "
                "联表或工作日计算请写成 columns 中的派生列 (a row-level rule needs a per-row expectation)"
            )
            bad = True
        if level == "row" and expectation in _NO_RECORD_IDS:
            problems.append(
                f"{where}: {expectation} 在 SQL 上不给出失败记录编号; 请改用派生列 "
                "count(*) over (partition by …) 配合 expect_column_values_to_be_between (max_value: 1)"
            )
            bad = True
        kwargs = spec.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            problems.append(f"{where}: kwargs 须为映射 (kwargs must be a mapping)")
            kwargs, bad = {}, True
        if "mostly" in kwargs:
            problems.append(f"{where}: mostly 请写在规则上, 不要写在 kwargs 中 (put mostly on the rule)")
            bad = True
        mostly = spec.get("mostly")
        if mostly is not None:
            if not isinstance(mostly, (int, float)) or isinstance(mostly, bool) or not 0 < mostly <= 1:
                problems.append(f"{where}: mostly {mostly!r} 须为 (0, 1] 之间的数 (mostly must be in (0, 1])")
                bad = True
        elif isinstance(expectation, str) and expectation.startswith(_ROW_LEVEL_PREFIXES):
            mostly = 1.0
        columns = spec.get("columns") or {}
        if not isinstance(columns, dict):
            problems.append(f"{where}: columns 须为 名称 → SQL 的映射 (columns: name → SQL)")
            columns, bad = {}, True
        for name, text in columns.items():
            if not isinstance(name, str) or not _IDENT.match(name) or name.startswith("quality_"):
                problems.append(
                    f"{where}: 派生列名 {name!r} 须为小写标识符且不以 quality_ 开头 (bad derived column name)"
                )
                bad = True
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{where}: 派生列 {name} 的 SQL 为空 (empty SQL)")
                bad = True
            else:
                _check_template(text, f"{where}: columns.{name}", problems)
        separately = spec.get("counted_separately") or {}
        if not isinstance(separately, dict) or not all(isinstance(v, str) for v in separately.values()):
            problems.append(f"{where}: counted_separately 须为 标签 → SQL 条件 的映射")
            separately, bad = {}, True
        for label, text in separately.items():
            _check_template(text, f"{where}: counted_separately.{label}", problems)
        asset_rel = spec.get("asset")
        source_override = spec.get("source")
        asset = assets.get(asset_rel) if isinstance(asset_rel, str) else None
        if asset_rel == FEEDS_ASSET:
            if source_override not in directory_sources:
                problems.append(
                    f"{where}: {FEEDS_ASSET} 上的规则须给出 source (来源系统或报送模板), "
                    f"取值 {', '.join(sorted(directory_sources))} (a feeds rule needs its source)"
                )
                bad = True
            if level is not None and level != "dataset":
                problems.append(f"{where}: {FEEDS_ASSET} 上的规则是数据集级 (level: dataset)")
                bad = True
        elif isinstance(asset_rel, str) and asset is None:
            problems.append(f"{where}: asset {asset_rel} 未在 assets 中声明 (undeclared asset)")
            bad = True
        elif source_override is not None and source_override not in directory_sources:
            problems.append(f"{where}: source {source_override!r} 未知 (unknown source)")
            bad = True
        departments = spec.get("departments", "sources")
        if not _valid_departments(departments):
            problems.append(
                f"{where}: departments 应为 all、sources、部门代码列表、{{role: …}} 或 {{sources: …}} "
                f"(got {departments!r})"
            )
            bad = True
        for key in ("deadline_zh", "basis_zh"):
            if spec.get(key) is not None and not isinstance(spec[key], str):
                problems.append(f"{where}: {key} 须为文本")
                bad = True
        if not (_text(spec.get("deadline_zh")) or _text(spec.get("basis_zh"))):
            problems.append(f"{where}: 须给出 deadline_zh (时限) 或 basis_zh (依据) 至少一项")
            bad = True
        observed = spec.get("observed_zh")
        if observed is not None and not isinstance(observed, str):
            problems.append(f"{where}: observed_zh 须为文本")
            bad = True
        if bad:
            continue
        if asset_rel == FEEDS_ASSET:
            answered_by = source_override
        else:
            answered_by = source_override or asset.answered_by
        source = SUBMISSIONS if answered_by in templates() else answered_by
        out.append(
            Rule(
                id=rid,
                asset=asset_rel,
                expectation=expectation,
                severity=severity,
                level=level,
                category=category,
                description_zh=str(spec["description_zh"]).strip(),
                deadline_zh=_text(spec.get("deadline_zh")),
                basis_zh=_text(spec.get("basis_zh")),
                fix_zh=str(spec["fix_zh"]).strip(),
                answered_by=answered_by,
                source=source,
                kwargs=dict(kwargs),
                mostly=float(mostly) if mostly is not None else None,
                departments=departments,
                columns=dict(columns),
                observed_zh=observed,
                counted_separately=dict(separately),
            )
        )
    return out


def _text(value: Any) -> str | None:
    text = str(value).strip() if isinstance(value, str) else ""
    return text or None


def _valid_departments(value: Any) -> bool:
    if value in ("all", "sources"):
        return True
    if isinstance(value, list):
        return bool(value) and all(isinstance(c, str) and _DEPT_CODE.match(c) for c in value)
    if isinstance(value, dict) and len(value) == 1:
        ((k, v),) = value.items()
        vals = v if isinstance(v, list) else [v]
        if k == "role":
            return all(x in ROLES for x in vals)
        if k == "sources":
            return all(isinstance(x, str) and x for x in vals)
    return False


def _check_template(text: str, where: str, problems: list[str]) -> None:
    from market_access.quality.sqltemplate import environment

    try:
        environment().parse(text)
    except Exception as exc:  # jinja2.TemplateSyntaxError and friends
        problems.append(f"{where}: SQL 模板语法错误 (template syntax error): {exc}")


@cache
def expectation_types() -> frozenset[str]:
    """Every expectation type Great Expectations ships, read from its package without importing it
    (importing GX takes seconds; loading the catalogue should not)."""
    spec = importlib.util.find_spec("great_expectations")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("great_expectations is not installed")
    core = Path(next(iter(spec.submodule_search_locations))) / "expectations" / "core"
    return frozenset(p.stem for p in core.glob("*.py") if not p.stem.startswith("_"))
