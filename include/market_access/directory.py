"""The department directory: operator-edited CSV → validated departments, name resolution, warehouse copy."""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import psycopg
from stdnum.cn import uscc

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("dept_code", "dept_name", "aliases", "alert_emails", "role")
OPTIONAL_COLUMNS = ("sources", "freshness_days")
ROLES = ("bureau", "ndrc", "industry")
DEFAULT_FRESHNESS_DAYS = 2
# deliberately plain: one @, no spaces, a dot in the domain; the mail server has the final word
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_SPACES = re.compile(r"\s+")


class DirectoryError(ValueError):
    """The directory file cannot be used; the message names the file, the line and the problem."""


def normalise(value: object) -> str:
    """NFKC (全角 letters, digits and spaces → half-width) with every space removed.

    Department codes and names never contain spaces, so `区市场 监管局` and `区市场监管局　` both
    become `区市场监管局`.
    """
    if value is None:
        return ""
    return _SPACES.sub("", unicodedata.normalize("NFKC", str(value)))


def _split(cell: str) -> list[str]:
    """A `;`-separated cell (全角 `；` too, after NFKC) → its non-empty, space-free parts."""
    return [p for p in (normalise(x) for x in unicodedata.normalize("NFKC", cell or "").split(";")) if p]


def known_sources() -> tuple[str, ...]:
    """What the `sources` column may name: source systems and submission templates."""
    from market_access.sources import catalog
    from market_access.submissions.templates import templates

    return (*catalog.systems(), *templates())


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    aliases: tuple[str, ...]
    alert_emails: tuple[str, ...]
    role: str  # bureau (数据管理局) / ndrc (发改局) / industry (行业主管部门)
    sources: tuple[str, ...] = ()
    freshness_days: int = DEFAULT_FRESHNESS_DAYS
    line: int = 0


@dataclass(frozen=True)
class Directory:
    departments: tuple[Department, ...]
    source: str = "<memory>"

    @cached_property
    def by_code(self) -> dict[str, Department]:
        return {d.code: d for d in self.departments}

    @cached_property
    def _names(self) -> dict[str, str]:
        """Full names and aliases (normalised) → dept_code; `parse` has made sure none is claimed twice."""
        out: dict[str, str] = {}
        for d in self.departments:
            for label in (d.name, *d.aliases):
                out.setdefault(normalise(label), d.code)
        return out

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and normalise(code).upper() in self.by_code

    def __len__(self) -> int:
        return len(self.departments)

    def get(self, code: str) -> Department:
        try:
            return self.by_code[normalise(code).upper()]
        except KeyError:
            raise KeyError(f"no department {code!r} in the directory {self.source}") from None

    def resolve(self, value: object) -> str | None:
        """dept_code of a department given by code (any case, 全角 or not), full name or alias; else None."""
        key = normalise(value)
        if not key:
            return None
        if key.upper() in self.by_code:
            return key.upper()
        return self._names.get(key)

    def with_role(self, role: str) -> list[Department]:
        return [d for d in self.departments if d.role == role]

    @property
    def bureau(self) -> Department:
        """The 数据管理局 that runs the platform."""
        return self.with_role("bureau")[0]

    @property
    def ndrc(self) -> Department:
        """The 发改局 that leads the evaluation."""
        return self.with_role("ndrc")[0]

    def answering_for(self, source: str) -> list[Department]:
        """Departments whose `sources` name this source system or submission template."""
        return [d for d in self.departments if source in d.sources]


def load(path: Path | str) -> Directory:
    """Read and validate the directory CSV (UTF-8, with or without BOM)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DirectoryError(f"部门目录文件不存在 (department directory not found): {path}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DirectoryError(
            f"{path}: 部门目录必须是 UTF-8 编码 (the directory must be UTF-8; byte {exc.start} is not)"
        ) from None
    return parse(text, source=str(path))


def parse(text: str, *, source: str = "<memory>") -> Directory:
    """Validate the directory text; every problem found is listed in one DirectoryError."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header_line, header = _first_row(reader)
    if header is None:
        raise DirectoryError(f"{source}: 部门目录为空 (the directory file is empty)")
    columns = [normalise(h).lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise DirectoryError(
            f"{source}, line {header_line}: 缺少列 (missing column(s)) {', '.join(missing)}; "
            f"the header must include {', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)})"
        )
    dupes = sorted({c for c in columns if c and columns.count(c) > 1})
    if dupes:
        raise DirectoryError(f"{source}, line {header_line}: 列名重复 (duplicate column) {', '.join(dupes)}")

    allowed_sources = set(known_sources())
    problems: list[str] = []
    departments: list[Department] = []
    first_line_of_code: dict[str, int] = {}
    first_line_of_name: dict[str, int] = {}
    claims: dict[str, tuple[str, int]] = {}  # name or alias → (dept_code, line)

    def problem(line: int, msg: str) -> None:
        problems.append(f"line {line}: {msg}")

    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DirectoryError(f"{source}, line {start}: CSV 格式错误 (malformed CSV): {exc}") from None
        if not any(c.strip() for c in row):
            continue
        if len(row) > len(columns):
            problem(
                start,
                f"多出 {len(row) - len(columns)} 个字段 (more fields than columns; a comma in a value?)",
            )
            continue
        rec = dict(zip(columns, row + [""] * (len(columns) - len(row)), strict=True))
        code = normalise(rec["dept_code"]).upper()
        name = normalise(rec["dept_name"])
        ok = True
        if not code:
            problem(start, "dept_code 为空 (empty dept_code)")
            ok = False
        elif not uscc.is_valid(code):
            problem(start, f"dept_code {code!r} 不是有效的统一社会信用代码 (not a valid 18-character USCC)")
            ok = False
        elif code in first_line_of_code:
            problem(start, f"dept_code {code} 重复, 第 {first_line_of_code[code]} 行已有 (duplicate code)")
            ok = False
        if not name:
            problem(start, "dept_name 为空 (empty dept_name)")
            ok = False
        elif name in first_line_of_name:
            problem(start, f"dept_name {name} 重复, 第 {first_line_of_name[name]} 行已有 (duplicate name)")
            ok = False
        role = normalise(rec["role"]).lower()
        if role not in ROLES:
            problem(start, f"role {rec['role']!r} 无效, 应为 {' / '.join(ROLES)} (unknown role)")
            ok = False
        emails = _split(rec["alert_emails"])
        for addr in emails:
            if not _EMAIL.match(addr):
                problem(start, f"alert_emails 中的地址 {addr!r} 格式不正确 (malformed e-mail address)")
                ok = False
        sources = _split(rec.get("sources", ""))
        unknown = [s for s in sources if s not in allowed_sources]
        if unknown:
            problem(
                start,
                f"sources 中的 {', '.join(unknown)} 未知 (unknown source; known: {', '.join(sorted(allowed_sources))})",
            )
            ok = False
        freshness = DEFAULT_FRESHNESS_DAYS
        raw_fresh = normalise(rec.get("freshness_days", ""))
        if raw_fresh:
            if raw_fresh.isdigit() and int(raw_fresh) >= 1:
                freshness = int(raw_fresh)
            else:
                problem(
                    start, f"freshness_days {raw_fresh!r} 应为正整数 (must be a whole number of days ≥ 1)"
                )
                ok = False
        aliases = tuple(dict.fromkeys(a for a in _split(rec["aliases"]) if a != name))
        if code and code not in first_line_of_code:
            first_line_of_code[code] = start
        if name and name not in first_line_of_name:
            first_line_of_name[name] = start
        for label in (name, *aliases):
            if not label:
                continue
            other = claims.get(label)
            if other and other[0] != code:
                kind = "名称" if label == name else "别名"
                problem(
                    start,
                    f"{kind} {label} 已被第 {other[1]} 行的 {other[0]} 使用 "
                    "(a name or alias may belong to one department only)",
                )
                ok = False
            else:
                claims[label] = (code, start)
        if ok:
            departments.append(
                Department(code, name, aliases, tuple(emails), role, tuple(sources), freshness, start)
            )

    if not problems:
        for role, label in (("bureau", "数据管理局"), ("ndrc", "发改局")):
            n = sum(1 for d in departments if d.role == role)
            if n != 1:
                problems.append(
                    f"需要恰好一个 role = {role} 的部门 ({label}), 现有 {n} 个 (exactly one {role} department is required)"
                )
    if not departments and not problems:
        problems.append("没有任何部门 (no departments)")
    if problems:
        listed = "\n  ".join(problems)
        raise DirectoryError(
            f"{source}: 部门目录有 {len(problems)} 处错误 (the directory is refused):\n  {listed}"
        )
    return Directory(tuple(departments), source)


def _first_row(reader) -> tuple[int, list[str] | None]:
    for row in reader:
        if any(c.strip() for c in row):
            return reader.line_num, row
    return 0, None


# --- the warehouse copy -------------------------------------------------------------------------

DDL = """
create table if not exists raw.directory__departments (
    dept_code           text primary key,
    dept_name           text not null unique,
    aliases             text[] not null,
    alert_emails        text[] not null,
    role                text not null check (role in ('bureau', 'ndrc', 'industry')),
    sources             text[] not null,
    freshness_days      integer not null check (freshness_days >= 1),
    source_line         integer not null,
    source_file         text not null,
    _batch_id           bigint not null,
    _loaded_at          timestamptz not null
);
comment on table raw.directory__departments is
    '部门目录 (config/departments.csv 或 DEPARTMENTS_CSV), 每次运行整表替换 (the department directory, replaced on every run)';
create table if not exists raw.directory__department_names (
    name                text primary key,
    dept_code           text not null references raw.directory__departments (dept_code)
                            on delete cascade deferrable initially deferred,
    kind                text not null check (kind in ('code', 'name', 'alias'))
);
comment on table raw.directory__department_names is
    '部门代码、全称与别名 → dept_code (去空格、全角转半角后的写法; every spelling that resolves to a department)';
"""


def load_into_warehouse(conn: psycopg.Connection, directory: Directory) -> int:
    """Replace raw.directory__departments (and its name lookup) with `directory`, in one transaction."""
    from market_access.load.schema import bootstrap

    if not conn.autocommit:
        raise ValueError("load_into_warehouse needs an autocommit connection: it manages its own transaction")
    bootstrap(conn)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('market_access.directory'))")
        conn.execute("set local role loader")
        conn.execute(DDL)
        batch_id = conn.execute("select nextval('ops.batch_id_seq')").fetchone()[0]
        conn.execute("delete from raw.directory__department_names")
        conn.execute("delete from raw.directory__departments")
        with conn.cursor() as cur:
            cur.executemany(
                "insert into raw.directory__departments (dept_code, dept_name, aliases, alert_emails, role, "
                "sources, freshness_days, source_line, source_file, _batch_id, _loaded_at) "
                "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())",
                [
                    (
                        d.code,
                        d.name,
                        list(d.aliases),
                        list(d.alert_emails),
                        d.role,
                        list(d.sources),
                        d.freshness_days,
                        d.line,
                        directory.source,
                        batch_id,
                    )
                    for d in directory.departments
                ],
            )
            names = [(d.code, d.code, "code") for d in directory.departments]
            names += [(d.name, d.code, "name") for d in directory.departments]
            names += [(a, d.code, "alias") for d in directory.departments for a in d.aliases]
            cur.executemany(
                "insert into raw.directory__department_names (name, dept_code, kind) values (%s, %s, %s)",
                names,
            )
    log.info("department directory: %d departments loaded from %s", len(directory), directory.source)
    return len(directory)
