"""One parser for the four submission templates: bytes of an .xlsx or CSV → typed rows and row problems.

A file is either usable — then every row is either a typed payload or a list of (column, value,
中文原因) problems — or it is not, and `Rejected` says why in Chinese. Nothing here touches the
database or the file system, so it is tested with bytes alone.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time

from stdnum.cn import uscc
from stdnum.exceptions import InvalidChecksum, InvalidLength

from market_access.submissions.templates import Column, Template, header_key, templates

EXTENSIONS = (".xlsx", ".csv")
HEADER_SCAN_ROWS = 15  # the header may sit below a title, a date line, blank lines …
PLACEHOLDER_USCC = "00000000000000000X"
MAX_VALUE_CHARS = 200  # of a quarantined value

DATE_HINT = "请写成 2026-03-05、2026/3/5、20260305 或 2026年3月5日"
_TIME = r"(?:\s*[T ]\s*\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_DATE_FORMS = (
    re.compile(r"^(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})" + _TIME + "$"),
    re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?" + _TIME + "$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
_INT = re.compile(r"^[+-]?\d+(?:\.0*)?$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^(0\d{2,3})-?(\d{7,8})$")
_PERIOD = re.compile(r"(?<!\d)(\d{4})(?:-(\d{2})|([HQ])(\d))?(?!\d)")
_SPACES = re.compile(r"\s+")


class Rejected(Exception):
    """The file as a whole cannot be used; `reason` is the Chinese sentence the department reads."""

    def __init__(self, reason: str, template: Template | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.template = template


@dataclass(frozen=True)
class Problem:
    row_number: int  # as the department sees it: the sheet's row, or the CSV line
    column: str  # the template's header
    value: str | None  # None for personal information
    reason: str


@dataclass(frozen=True)
class Row:
    row_number: int
    record_id: str
    payload: dict


@dataclass
class Parsed:
    template: Template
    header_row: int
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows_total: int = 0
    ignored_headers: list[str] = field(default_factory=list)
    sheet: str | None = None
    encoding: str | None = None

    @property
    def rows_quarantined(self) -> int:
        return len({p.row_number for p in self.problems})


@dataclass(frozen=True)
class FileName:
    """What a file's name says: `<模板名>_<period>.<ext>`."""

    template: Template | None
    period: str | None
    ext: str


# --- names --------------------------------------------------------------------------------------


def parse_name(file_name: str) -> FileName:
    """Template and period from a name such as `违规案例_2026-06.xlsx` or `整改台账_2026h1（更正）.csv`.

    The template is None when the name names none (or two); the period is None when the name has
    no period or more than one.
    """
    stem, dot, ext = file_name.rpartition(".")
    if not dot:
        stem, ext = file_name, ""
    key = header_key(stem).upper()
    named = [t for t in templates().values() if header_key(t.name) in key or t.code.upper() in key]
    periods = {_period(m) for m in _PERIOD.finditer(key)} - {None}
    # `2026年违规案例_2026Q2`: the bare year is implied by the more specific period
    periods -= {p for p in periods if len(p) == 4 and any(q.startswith(p) and q != p for q in periods)}
    return FileName(
        template=named[0] if len(named) == 1 else None,
        period=periods.pop() if len(periods) == 1 else None,
        ext="." + ext.lower() if ext else "",
    )


def _period(m: re.Match) -> str | None:
    year, month, half_or_quarter, n = m.group(1), m.group(2), m.group(3), m.group(4)
    if not 2000 <= int(year) <= 2100:
        return None
    if month:
        return f"{year}-{month}" if 1 <= int(month) <= 12 else None
    if half_or_quarter == "H":
        return f"{year}H{n}" if n in ("1", "2") else None
    if half_or_quarter == "Q":
        return f"{year}Q{n}" if n in ("1", "2", "3", "4") else None
    return year


# --- reading ------------------------------------------------------------------------------------


def read_sheets(data: bytes, ext: str) -> list[tuple[str | None, list[tuple[int, list[str]]], str | None]]:
    """The file's tables as (sheet name, [(row number, cells as text)], encoding); raises Rejected."""
    if ext == ".xlsx":
        return _read_xlsx(data)
    if ext == ".csv":
        text, encoding = decode_csv(data)
        return [(None, _csv_rows(text), encoding)]
    if ext in (".xls", ".et", ".wps", ".ods", ".numbers"):
        raise Rejected(f"不支持 {ext} 格式：请另存为 Excel 工作簿 (.xlsx) 或 CSV 后重新报送")
    raise Rejected(f"不支持的文件类型“{ext or '无扩展名'}”：只接收 .xlsx 和 .csv 文件")


def decode_csv(data: bytes) -> tuple[str, str]:
    """UTF-8 (with or without BOM), else GB18030; anything else is an unreadable encoding."""
    if b"\x00" in data:
        # UTF-16 "Unicode text" exports and binary files (an .xls renamed to .csv) both land here
        raise Rejected(
            "文件编码无法识别（疑似 UTF-16 或二进制文件）：请将 CSV 以 UTF-8 或 GB18030（GBK）编码保存"
        )
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_binary(text):
            break
        return text, "utf-8" if encoding == "utf-8-sig" else encoding
    raise Rejected("文件编码无法识别：请将 CSV 以 UTF-8 或 GB18030（GBK）编码保存后重新报送")


def _looks_binary(text: str) -> bool:
    controls = sum(1 for c in text[:20000] if unicodedata.category(c) == "Cc" and c not in "\r\n\t")
    return controls > 0


def _csv_rows(text: str) -> list[tuple[int, list[str]]]:
    """Records with their row number as a spreadsheet would show it (blank lines count, quoted line breaks do not)."""
    sample = "\n".join(text.splitlines()[:HEADER_SCAN_ROWS])
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    try:
        for number, record in enumerate(reader, 1):
            rows.append((number, record))
    except csv.Error as exc:
        raise Rejected(f"CSV 格式错误（第 {len(rows) + 1} 行附近：{exc}）：请检查引号是否成对") from None
    return rows


def _read_xlsx(data: bytes) -> list[tuple[str | None, list[tuple[int, list[str]]], str | None]]:
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise Rejected(
            "无法打开 Excel 文件（文件损坏、加密或并非 .xlsx 格式）：请重新导出为 .xlsx 后报送"
        ) from exc
    try:
        sheets = []
        ordered = [wb.active] + [ws for ws in wb.worksheets if ws is not wb.active]
        for ws in ordered:
            if ws is None or not hasattr(ws, "iter_rows"):
                continue
            ws.reset_dimensions()  # a wrong stored dimension would cut rows off in read-only mode
            rows = [
                (number, [_cell_text(v) for v in values])
                for number, values in enumerate(ws.iter_rows(min_row=1, values_only=True), 1)
            ]
            sheets.append((ws.title, rows, None))
        return sheets
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise Rejected("Excel 文件内容无法读取（文件可能已损坏）：请重新导出为 .xlsx 后报送") from exc
    finally:
        wb.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return str(int(value))
        return repr(value)
    return str(value)


# --- the header ---------------------------------------------------------------------------------


@dataclass
class _Header:
    template: Template
    first_row: int  # index into rows
    last_row: int
    by_position: dict[int, Column]
    ignored: list[str]
    duplicates: list[str]

    @property
    def score(self) -> float:
        return len(self.by_position) / len(self.template.columns)


def _header_at(template: Template, rows: list[tuple[int, list[str]]], first: int, last: int) -> _Header:
    """Map cells to columns; two header rows (a merged group header above its sub-headers) are read
    as one, the lower non-empty cell winning."""
    width = max(len(rows[i][1]) for i in range(first, last + 1))
    by_position: dict[int, Column] = {}
    ignored, duplicates, seen = [], [], set()
    for j in range(width):
        cells = [
            rows[i][1][j] for i in range(first, last + 1) if j < len(rows[i][1]) and rows[i][1][j].strip()
        ]
        if not cells:
            continue
        col = template.match(cells[-1])
        if col is None:
            ignored.append(header_key(cells[-1]))
        elif col.key in seen:
            duplicates.append(col.header)
        else:
            seen.add(col.key)
            by_position[j] = col
    return _Header(template, first, last, by_position, ignored, duplicates)


def _find_header(template: Template, rows: list[tuple[int, list[str]]]) -> _Header | None:
    best = None
    n = min(len(rows), HEADER_SCAN_ROWS)
    for i in range(n):
        if not any(c.strip() for c in rows[i][1]):
            continue
        for last in (i, i + 1):
            if last >= len(rows):
                continue
            h = _header_at(template, rows, i, last)
            if best is None or len(h.by_position) > len(best.by_position):
                best = h
    if best is None or len(best.by_position) < max(2, math.ceil(len(template.columns) / 3)):
        return None
    return best


def _recognise(sheets) -> tuple[_Header, tuple] | None:
    """The template whose headers a file carries, when its name does not say."""
    found = []
    for sheet in sheets:
        for t in templates().values():
            h = _find_header(t, sheet[1])
            if h is not None:
                found.append((h.score, h, sheet))
    found.sort(key=lambda x: -x[0])
    if not found or found[0][0] < 0.6:
        return None
    if len(found) > 1 and found[1][0] == found[0][0] and found[1][1].template is not found[0][1].template:
        return None
    return found[0][1], found[0][2]


# --- values -------------------------------------------------------------------------------------


def clean_text(value: str) -> str:
    """Free text: 全角 letters, digits and spaces → half-width, surrounding spaces stripped; Chinese
    punctuation (，：（）) is left as the department wrote it."""
    out = []
    for c in value.replace("\r\n", "\n"):
        o = ord(c)
        if c == "\u3000":
            out.append(" ")
        elif 0xFF10 <= o <= 0xFF19 or 0xFF21 <= o <= 0xFF3A or 0xFF41 <= o <= 0xFF5A:
            out.append(chr(o - 0xFEE0))
        else:
            out.append(c)
    return "".join(out).strip()


def clean_code(value: str) -> str:
    """Codes, dates, numbers, enum values: NFKC and no surrounding spaces."""
    return unicodedata.normalize("NFKC", value).strip()


def parse_date(value: str) -> tuple[str | None, str | None]:
    """(ISO date, None) or (None, 中文原因)."""
    v = clean_code(value)
    for form in _DATE_FORMS:
        m = form.match(v)
        if m:
            y, mo, d = (int(g) for g in m.groups()[:3])
            if not 2000 <= y <= 2100:
                return None, f"日期年份 {y} 不合理"
            try:
                return date(y, mo, d).isoformat(), None
            except ValueError:
                return None, f"日期不存在（{y}年{mo}月{d}日）"
    return None, f"日期格式无法识别，{DATE_HINT}"


def _check(col: Column, raw: str, resolve_dept: Callable[[str], str | None]) -> tuple[object, str | None]:
    """(typed value, None) or (None, 中文原因) for a non-empty cell."""
    if col.type == "date":
        return parse_date(raw)
    if col.type == "int":
        v = clean_code(raw).replace(",", "")
        if not _INT.match(v):
            return None, "应为整数"
        n = int(float(v))
        if (col.min is not None and n < col.min) or (col.max is not None and n > col.max):
            return None, f"应在 {col.min}–{col.max} 之间"
        return n, None
    if col.type == "enum":
        v = header_key(raw)
        for allowed in col.values:
            if header_key(allowed) == v:
                return allowed, None
        return None, f"不是允许的取值，应为：{' / '.join(col.values)}"
    if col.type == "uscc":
        v = _SPACES.sub("", clean_code(raw)).upper()
        if v == PLACEHOLDER_USCC:
            return v, None
        try:
            return uscc.validate(v), None
        except InvalidLength:
            return None, "统一社会信用代码应为 18 位"
        except InvalidChecksum:
            return None, "统一社会信用代码校验位错误"
        except Exception:  # InvalidFormat and the like
            return None, "统一社会信用代码含无效字符（不应含 I、O、S、V、Z 或汉字）"
    if col.type == "dept":
        code = resolve_dept(raw)
        if code is None:
            return None, "无法识别的单位：请填写部门目录中的单位全称、简称或统一社会信用代码"
        return code, None
    if col.type == "phone":
        v = re.sub(r"[\s()（）]", "", clean_code(raw))
        digits = v.replace("-", "")
        for prefix in ("+86", "0086", "86"):
            if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
                digits = digits[len(prefix) :]
                break
        if _MOBILE.match(digits):
            return digits, None
        m = _LANDLINE.match(v)
        if m:
            return f"{m.group(1)}-{m.group(2)}", None
        return None, "联系电话格式不正确，应为 11 位手机号或带区号的固定电话（如 0792-8123456）"
    # text
    if col.pattern:
        v = _SPACES.sub("", clean_code(raw))
        if not re.fullmatch(col.pattern, v):
            return None, f"格式不正确，应为：{col.pattern_hint or col.pattern}"
        return v, None
    return clean_text(raw), None


def _shown(col: Column, raw: str) -> str | None:
    if col.pi:
        return None
    v = clean_text(raw)
    return v if len(v) <= MAX_VALUE_CHARS else v[:MAX_VALUE_CHARS] + "…"


def check_row(
    template: Template,
    cells: dict[str, str],
    row_number: int,
    resolve_dept: Callable[[str], str | None],
) -> tuple[Row | None, list[Problem]]:
    """One data row (header → cell text, for the columns the file has) → a Row, or its problems."""
    values: dict[str, object] = {c.header: None for c in template.columns}
    problems: list[Problem] = []
    for col in template.columns:
        raw = cells.get(col.header, "")
        if not clean_text(raw):
            continue
        if col.type == "text" and col.header in template.key:
            values[col.header] = _SPACES.sub("", clean_code(raw))  # record numbers are codes
            continue
        value, reason = _check(col, raw, resolve_dept)
        if reason:
            problems.append(Problem(row_number, col.header, _shown(col, raw), reason))
        values[col.header] = value
    bad = {p.column for p in problems}
    for col in template.columns:
        value = values[col.header]
        if col.header in bad or col.header not in cells:
            continue
        if value is None:
            if not col.nullable:
                problems.append(Problem(row_number, col.header, "", "必填项为空"))
            for other, expected in col.required_when:
                if values[template.column(other).header] == expected:
                    problems.append(Problem(row_number, col.header, "", f"{other}为“{expected}”时必须填写"))
        elif col.not_before:
            earlier = values[template.column(col.not_before).header]
            if earlier is not None and str(value) < str(earlier):
                problems.append(
                    Problem(
                        row_number,
                        col.header,
                        _shown(col, cells[col.header]),
                        f"不能早于{col.not_before}（{earlier}）",
                    )
                )
    if problems:
        return None, problems
    record_id = "|".join(str(values[template.column(k).header]) for k in template.key)
    payload = {col.field: values[col.header] for col in template.columns}
    return Row(row_number, record_id, payload), []


# --- the file -----------------------------------------------------------------------------------


def parse(
    data: bytes,
    file_name: str,
    resolve_dept: Callable[[str], str | None],
) -> Parsed:
    """Parse one submitted file. Raises Rejected when the file as a whole is unusable."""
    name = parse_name(file_name)
    sheets = read_sheets(data, name.ext)
    template = name.template
    if template is None:
        found = _recognise(sheets)
        if found is None:
            known = "、".join(t.name for t in templates().values())
            raise Rejected(
                f"无法识别报送模板：文件名未写明模板名（应为 {known} 之一，如 违规案例_2026Q2.xlsx），"
                "表头也不符合任何模板"
            )
        header, sheet = found
        template = header.template
    else:
        candidates = [(h, s) for s in sheets if (h := _find_header(template, s[1])) is not None]
        if not candidates:
            other = _recognise(sheets)
            hint = f"；表头看起来是“{other[0].template.name}”模板" if other else ""
            raise Rejected(
                f"在文件前 {HEADER_SCAN_ROWS} 行中找不到“{template.name}”模板的表头{hint}。"
                f"表头应为：{'、'.join(c.header for c in template.columns)}",
                template,
            )
        header, sheet = max(candidates, key=lambda hs: len(hs[0].by_position))
    if header.duplicates:
        raise Rejected(f"表头重复：{'、'.join(header.duplicates)} 出现了不止一次", template)
    present = {c.key for c in header.by_position.values()}
    missing = [c.header for c in template.columns if c.required and c.key not in present]
    if missing:
        raise Rejected(
            f"缺少必填表头：{'、'.join(missing)}。“{template.name}”模板的表头应为："
            f"{'、'.join(c.header for c in template.columns)}",
            template,
        )

    sheet_name, rows, encoding = sheet
    parsed = Parsed(
        template=template,
        header_row=rows[header.last_row][0],
        ignored_headers=header.ignored,
        sheet=sheet_name,
        encoding=encoding,
    )
    first_seen: dict[str, int] = {}
    key_header = template.column(template.key[0]).header
    for number, cells in rows[header.last_row + 1 :]:
        if not any(c.strip() for c in cells):
            continue  # a stray blank line
        parsed.rows_total += 1
        by_header = {col.header: cells[j] if j < len(cells) else "" for j, col in header.by_position.items()}
        row, problems = check_row(template, by_header, number, resolve_dept)
        if row is not None and row.record_id in first_seen:
            problems = [
                Problem(
                    number,
                    key_header,
                    _shown(template.column(key_header), by_header.get(key_header, "")),
                    f"记录编号重复：与第 {first_seen[row.record_id]} 行相同",
                )
            ]
            row = None
        if row is None:
            parsed.problems.extend(problems)
        else:
            first_seen[row.record_id] = number
            parsed.rows.append(row)
    return parsed
