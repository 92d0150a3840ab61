"""One parser for the four submission templates: bytes of an .xlsx or CSV → typed rows and row problems.

A file is either usable — then every row is either a typed payload or a list of (column, value,
中文原因) problems — or it is not, and `Rejected` says why in Chinese. Nothing here touches the
database or the file system: it reads a seekable binary file object (an open file, or bytes in a
`BytesIO`), streaming — a file's rows are produced one at a time (`Parsed.records()`), so a
1,000,000-row CSV is parsed in bounded memory. A workbook is checked as a zip archive before
openpyxl opens it (entry count, total uncompressed size, compression ratio, macros), so a zip
bomb is refused without being inflated.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import io
import itertools
import math
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import BinaryIO

from stdnum.cn import uscc
from stdnum.exceptions import InvalidChecksum, InvalidLength

from market_access.submissions.templates import Column, Template, header_key, templates

EXTENSIONS = (".xlsx", ".csv")
HEADER_SCAN_ROWS = 15  # the header may sit below a title, a date line, blank lines …
PLACEHOLDER_USCC = "00000000000000000X"
MAX_VALUE_CHARS = 200  # of a quarantined value
MAX_CELL_CHARS = 32_767  # Excel's own limit for a cell; a longer cell quarantines its row
MAX_COLUMNS = 16_384  # Excel's widest sheet (XFD); a CSV row wider than that refuses the file
CSV_FIELD_LIMIT = 8 * 1024 * 1024  # characters the csv module reads into one field (default 128 KiB)
# a workbook is refused before it is opened when its zip says it would inflate beyond these
MAX_XLSX_ENTRIES = 10_000
MAX_XLSX_UNCOMPRESSED = 512 * 1024 * 1024  # bytes, all parts together
MAX_XLSX_RATIO = 100  # uncompressed / compressed, for a part over 1 MiB (real sheets: 5–20)
_RATIO_FLOOR = 1024 * 1024
_CHUNK = 1024 * 1024

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
    """A usable file. `records()` streams its data rows (each a Row or the row's problems) and
    counts them; `parse()` collects them into `rows` and `problems` for small files and tests."""

    template: Template
    header_row: int
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows_total: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    ignored_headers: list[str] = field(default_factory=list)
    sheet: str | None = None
    encoding: str | None = None
    _sheet: Sheet | None = None
    _header: _Header | None = None
    _resolve: Callable[[str], str | None] | None = None
    _close: Callable[[], None] | None = None

    def records(self) -> Iterator[Row | list[Problem]]:
        """The data rows below the header, in order; raises Rejected if the file turns out unreadable
        further down (a CSV quoting error, a workbook part that cannot be read)."""
        template, header = self.template, self._header
        first_seen: dict[str, int] = {}
        key_header = template.column(template.key[0]).header
        resolve = functools.lru_cache(maxsize=4096)(self._resolve)  # a file names few departments
        for number, cells in self._sheet.rows(self.header_row + 1):
            if not any(c.strip() for c in cells):
                continue  # a stray blank line
            self.rows_total += 1
            by_header = {
                col.header: cells[j] if j < len(cells) else "" for j, col in header.by_position.items()
            }
            row, problems = check_row(template, by_header, number, resolve)
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
                self.rows_quarantined += 1
                yield problems
            else:
                first_seen[row.record_id] = number
                self.rows_accepted += 1
                yield row

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None


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


@dataclass
class Sheet:
    """One table of a file: its first rows (for finding the header) and a way to stream all its rows."""

    name: str | None
    head: list[tuple[int, list[str]]]  # the first HEADER_SCAN_ROWS rows
    rows: Callable[[int], Iterator[tuple[int, list[str]]]]  # rows numbered from the given one on
    encoding: str | None = None


def open_sheets(f: BinaryIO, ext: str) -> tuple[list[Sheet], Callable[[], None]]:
    """The file's tables and a function that releases them; raises Rejected."""
    if ext == ".xlsx":
        return _xlsx_sheets(f)
    if ext == ".csv":
        encoding = detect_encoding(f)
        return [_csv_sheet(f, encoding)], lambda: None
    if ext in (".xlsm", ".xltm", ".xlsb"):
        raise Rejected(
            f"不接收启用宏的工作簿（{ext}）：宏可能含有恶意代码。请另存为不含宏的 Excel 工作簿 (.xlsx) 或 CSV 后重新报送"
        )
    if ext in (".xls", ".et", ".wps", ".ods", ".numbers"):
        raise Rejected(f"不支持 {ext} 格式：请另存为 Excel 工作簿 (.xlsx) 或 CSV 后重新报送")
    raise Rejected(f"不支持的文件类型“{ext or '无扩展名'}”：只接收 .xlsx 和 .csv 文件")


def read_sheets(data: bytes, ext: str) -> list[tuple[str | None, list[tuple[int, list[str]]], str | None]]:
    """The whole of a small file's tables as (sheet name, [(row number, cells as text)], encoding)."""
    sheets, close = open_sheets(io.BytesIO(data), ext)
    try:
        return [(s.name, list(s.rows(1)), s.encoding) for s in sheets]
    finally:
        close()


_NUL_REASON = (
    "文件编码无法识别（含有空字节，疑似 UTF-16 或二进制文件）：请将 CSV 以 UTF-8 或 GB18030（GBK）编码保存"
)
_UNREADABLE = "文件编码无法识别：请将 CSV 以 UTF-8 或 GB18030（GBK）编码保存后重新报送"


def detect_encoding(f: BinaryIO) -> str:
    """UTF-8 (with or without BOM), else GB18030, read in chunks; raises Rejected.

    A file that is UTF-8 up to a broken byte sequence (a BOM, or several valid multi-byte
    characters before it) is refused naming the line, rather than being misread as GB18030.
    """
    f.seek(0)
    head = f.read(3)
    bom = head == codecs.BOM_UTF8
    f.seek(0)
    dec = codecs.getincrementaldecoder("utf-8-sig")()
    consumed = chars = newlines = 0
    first = True
    while True:
        chunk = f.read(_CHUNK)
        if b"\x00" in chunk:
            # UTF-16 "Unicode text" exports and binary files (an .xls renamed to .csv) both land here
            raise Rejected(_NUL_REASON)
        pending = dec.getstate()[0]
        try:
            text = dec.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            before = (pending + chunk)[: exc.start]
            multibyte = consumed - len(pending) - chars - (3 if bom else 0)
            multibyte += len(before) - len(before.decode("utf-8", errors="ignore"))
            if bom or multibyte >= 6:  # at least three 2–3-byte characters decoded fine before
                line = newlines + before.count(b"\n") + 1
                raise Rejected(
                    f"文件按 UTF-8 编码保存，但第 {line} 行含有无效的 UTF-8 字节（文件可能已损坏或混用了编码）："
                    "请检查该行，以 UTF-8 或 GB18030（GBK）编码重新保存后报送"
                ) from None
            break
        if first and _looks_binary(text):
            raise Rejected(_UNREADABLE)
        first = False
        if not chunk:
            return "utf-8"
        consumed += len(chunk)
        chars += len(text)
        newlines += chunk.count(b"\n")
    f.seek(0)
    dec = codecs.getincrementaldecoder("gb18030")()
    first = True
    while True:
        chunk = f.read(_CHUNK)
        try:
            text = dec.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            raise Rejected(_UNREADABLE) from None
        if first and _looks_binary(text):
            raise Rejected(_UNREADABLE)
        first = False
        if not chunk:
            return "gb18030"


def decode_csv(data: bytes) -> tuple[str, str]:
    """UTF-8 (with or without BOM), else GB18030; anything else is an unreadable encoding."""
    encoding = detect_encoding(io.BytesIO(data))
    return data.decode("utf-8-sig" if encoding == "utf-8" else encoding), encoding


def _looks_binary(text: str) -> bool:
    controls = sum(1 for c in text[:20000] if unicodedata.category(c) == "Cc" and c not in "\r\n\t")
    return controls > 0


@contextlib.contextmanager
def _field_limit(n: int):
    old = csv.field_size_limit(n)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _csv_sheet(f: BinaryIO, encoding: str) -> Sheet:
    """Records with their row number as a spreadsheet would show it (blank lines count, quoted line breaks do not)."""
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    f.seek(0)
    sample = f.read(256 * 1024).decode(codec, errors="ignore")
    sample = "\n".join(sample.splitlines()[:HEADER_SCAN_ROWS])
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","

    def rows(start: int = 1) -> Iterator[tuple[int, list[str]]]:
        f.seek(0)
        text = io.TextIOWrapper(f, encoding=codec, newline="")
        reader = csv.reader(text, delimiter=delimiter)
        number = 0
        try:
            with _field_limit(CSV_FIELD_LIMIT):
                for number, record in enumerate(reader, 1):
                    if len(record) > MAX_COLUMNS:
                        raise Rejected(
                            f"第 {number} 行有 {len(record)} 列，超过 {MAX_COLUMNS} 列的上限：请检查分隔符或删除多余的列"
                        )
                    if number >= start:
                        yield number, record
        except csv.Error as exc:
            raise Rejected(f"CSV 格式错误（第 {number + 1} 行附近：{exc}）：请检查引号是否成对") from None
        except UnicodeDecodeError:
            raise Rejected(_UNREADABLE) from None
        finally:
            text.detach()

    head = list(itertools.islice(rows(1), HEADER_SCAN_ROWS))
    return Sheet(None, head, rows, encoding)


def check_workbook_zip(f: BinaryIO) -> None:
    """Refuse a workbook by what its zip declares, before anything inflates it.

    Python's zipfile never inflates a part beyond the size its entry declares (a part that would is
    a CRC/size error), so the declared sizes bound what openpyxl can be made to read.
    """
    f.seek(0)
    try:
        with zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_XLSX_ENTRIES:
                raise Rejected(
                    f"Excel 文件包含 {len(infos)} 个内部部件，超过 {MAX_XLSX_ENTRIES} 个的上限，疑似恶意文件：请重新导出为 .xlsx 后报送"
                )
            total = sum(i.file_size for i in infos)
            if total > MAX_XLSX_UNCOMPRESSED:
                raise Rejected(
                    f"Excel 文件解压后约 {total / 2**20:,.0f} MB，超过 {MAX_XLSX_UNCOMPRESSED // 2**20} MB 的上限"
                    "（疑似压缩炸弹）：请拆分为多个文件或另存为 CSV 后报送"
                )
            for i in infos:
                if i.file_size > _RATIO_FLOOR and i.file_size > MAX_XLSX_RATIO * max(i.compress_size, 1):
                    raise Rejected(
                        f"Excel 文件内部部件“{i.filename[:80]}”的压缩比为 {i.file_size / max(i.compress_size, 1):,.0f}:1，"
                        f"超过 {MAX_XLSX_RATIO}:1 的上限（疑似压缩炸弹）：请重新导出为 .xlsx 后报送"
                    )
            names = {i.filename.lower() for i in infos}
            macro = any(n.endswith("vbaproject.bin") for n in names)
            if not macro and "[content_types].xml" in names:
                ct = next(i for i in infos if i.filename.lower() == "[content_types].xml")
                if ct.file_size <= _RATIO_FLOOR:
                    macro = b"macroenabled" in zf.read(ct).lower()
            if macro:
                raise Rejected(
                    "文件含有宏（VBA 工程），不予接收：宏可能含有恶意代码。请另存为不含宏的 Excel 工作簿 (.xlsx) 或 CSV 后重新报送"
                )
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        OSError,
        ValueError,
        EOFError,
    ) as exc:
        raise Rejected(
            "无法打开 Excel 文件（文件损坏、加密或并非 .xlsx 格式）：请重新导出为 .xlsx 后报送"
        ) from exc


_XLSX_UNREADABLE = "Excel 文件内容无法读取（文件可能已损坏）：请重新导出为 .xlsx 后报送"


def _xlsx_sheets(f: BinaryIO) -> tuple[list[Sheet], Callable[[], None]]:
    from openpyxl import load_workbook

    check_workbook_zip(f)
    f.seek(0)
    try:
        wb = load_workbook(f, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl, lxml and zipfile raise many kinds on malformed parts
        raise Rejected(
            "无法打开 Excel 文件（文件损坏、加密或并非 .xlsx 格式）：请重新导出为 .xlsx 后报送"
        ) from exc

    def sheet(ws) -> Sheet:
        ws.reset_dimensions()  # a wrong stored dimension would cut rows off in read-only mode

        def rows(start: int = 1) -> Iterator[tuple[int, list[str]]]:
            try:
                for number, values in enumerate(ws.iter_rows(min_row=start, values_only=True), start):
                    yield number, [_cell_text(v) for v in values]
            except Rejected:
                raise
            except Exception as exc:
                raise Rejected(_XLSX_UNREADABLE) from exc

        head = list(itertools.islice(rows(1), HEADER_SCAN_ROWS))
        return Sheet(ws.title, head, rows)

    try:
        ordered = [wb.active] + [ws for ws in wb.worksheets if ws is not wb.active]
        return [sheet(ws) for ws in ordered if ws is not None and hasattr(ws, "iter_rows")], wb.close
    except Exception as exc:
        wb.close()
        if isinstance(exc, Rejected):
            raise
        raise Rejected(_XLSX_UNREADABLE) from exc


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
            h = _find_header(t, sheet.head)
            if h is not None:
                found.append((h.score, h, sheet))
    found.sort(key=lambda x: -x[0])
    if not found or found[0][0] < 0.6:
        return None
    if len(found) > 1 and found[1][0] == found[0][0] and found[1][1].template is not found[0][1].template:
        return None
    return found[0][1], found[0][2]


# --- values -------------------------------------------------------------------------------------


_HALF_WIDTH = {0x3000: " "} | {
    o: chr(o - 0xFEE0)
    for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
    for o in range(r[0], r[1] + 1)
}


def clean_text(value: str) -> str:
    """Free text: 全角 letters, digits and spaces → half-width, surrounding spaces stripped; Chinese
    punctuation (，：（）) is left as the department wrote it."""
    return value.replace("\r\n", "\n").translate(_HALF_WIDTH).strip()


def clean_code(value: str) -> str:
    """Codes, dates, numbers, enum values: NFKC and no surrounding spaces."""
    return unicodedata.normalize("NFKC", value).strip()


def parse_date(value: str) -> tuple[str | None, str | None]:
    """(ISO date, None) or (None, 中文原因)."""
    return _parse_date(value) if len(value) <= 64 else _parse_date.__wrapped__(value)


@functools.lru_cache(maxsize=65536)  # a file's dates repeat
def _parse_date(value: str) -> tuple[str | None, str | None]:
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


@functools.lru_cache(maxsize=65536)  # the same entities answer survey after survey
def _uscc(v: str) -> tuple[str | None, str | None]:
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


def _check(col: Column, raw: str, resolve_dept: Callable[[str], str | None]) -> tuple[object, str | None]:
    """(typed value, None) or (None, 中文原因) for a non-empty cell."""
    if col.type == "date":
        return _parse_date(raw) if len(raw) <= 64 else parse_date(raw)
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
        return _uscc(_SPACES.sub("", clean_code(raw)).upper()[:64])
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
        if len(raw) > MAX_CELL_CHARS:
            problems.append(
                Problem(
                    row_number,
                    col.header,
                    _shown(col, raw),
                    f"单元格内容过长（{len(raw):,} 个字符，上限 {MAX_CELL_CHARS:,}）：请精简后重新报送",
                )
            )
            continue
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


def open_parse(
    f: BinaryIO,
    file_name: str,
    resolve_dept: Callable[[str], str | None],
) -> Parsed:
    """Find a file's template and header; its rows are then streamed by `Parsed.records()`.

    Raises Rejected when the file as a whole is unusable. The caller closes the Parsed.
    """
    name = parse_name(file_name)
    sheets, close = open_sheets(f, name.ext)
    try:
        return _header_of(sheets, name, resolve_dept, close)
    except BaseException:
        close()
        raise


def _header_of(sheets: list[Sheet], name: FileName, resolve_dept, close) -> Parsed:
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
        candidates = [(h, s) for s in sheets if (h := _find_header(template, s.head)) is not None]
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
    return Parsed(
        template=template,
        header_row=sheet.head[header.last_row][0],
        ignored_headers=header.ignored,
        sheet=sheet.name,
        encoding=sheet.encoding,
        _sheet=sheet,
        _header=header,
        _resolve=resolve_dept,
        _close=close,
    )


def parse(
    data: bytes,
    file_name: str,
    resolve_dept: Callable[[str], str | None],
) -> Parsed:
    """Parse one small submitted file whole (rows and problems collected). Raises Rejected when the
    file as a whole is unusable."""
    parsed = open_parse(io.BytesIO(data), file_name, resolve_dept)
    try:
        for item in parsed.records():
            if isinstance(item, Row):
                parsed.rows.append(item)
            else:
                parsed.problems.extend(item)
    finally:
        parsed.close()
    return parsed
