"""Hostile files in the inbox (issue 12, situations 1 and 4's archive), each a real file on disk,
through the library's process_inbox on the embedded PostgreSQL. Every file ends with a record, a
receipt and a reason; nothing is half-loaded; the other files of the same scan are processed.

Expected counts are worked out by hand from the rows tests/hostile.py writes: GOOD_SURVEY is two
valid rows, so a good file lands 2 rows.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import hostile as h  # tests/: pytest puts it on sys.path
import pytest

from market_access import directory
from market_access.submissions import files as files_mod
from market_access.submissions import parser
from market_access.submissions.inbox import process_inbox

REPO = Path(__file__).resolve().parents[2]
SCJ, FGJ = h.SCJ, h.FGJ

_clock = [time.time() - 3600]


def drop(inbox: Path, folder: str, name: str, data: bytes) -> Path:
    path = inbox / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    _clock[0] += 1
    os.utime(path, (_clock[0], _clock[0]))
    return path


@pytest.fixture(scope="module")
def depts() -> directory.Directory:
    return directory.load(REPO / "config" / "departments.csv")


@pytest.fixture
def inbox(tmp_path) -> Path:
    return tmp_path / "inbox"


def run(conn, inbox, depts) -> dict:
    return process_inbox(conn, inbox, depts, settle_seconds=0)


def records(conn) -> dict[str, tuple]:
    return {
        r[0]: r[1:]
        for r in conn.execute(
            "select file_name, status, rows_accepted, rows_quarantined, reason, archive_path is not null "
            "from ops.submission_files order by submission_id"
        ).fetchall()
    }


def landed(conn) -> int:
    return conn.execute("select count(*) from raw.submissions__satisfaction_survey").fetchone()[0]


def receipts_of(conn) -> dict[str, str]:
    return dict(
        conn.execute(
            "select f.file_name, r.body_text from ops.submission_receipts r join ops.submission_files f using (submission_id)"
        ).fetchall()
    )


def test_symlinks_are_never_read_nor_moved_and_the_rest_is_processed(wconn, inbox, depts, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "满意度调查_2026Q2.csv"
    secret.write_bytes(h.good_survey_csv())  # a valid file: landing it would be the bug
    (outside / "sub").mkdir()
    (outside / "sub" / "满意度调查_2026Q3.csv").write_bytes(h.good_survey_csv())
    (inbox / SCJ).mkdir(parents=True)
    (inbox / SCJ / "满意度调查_2026Q1.csv").symlink_to(secret)  # a file link
    (inbox / SCJ / "linked").symlink_to(outside / "sub")  # a folder link inside a department folder
    (inbox / FGJ).symlink_to(outside)  # a department folder that is a link
    drop(inbox, SCJ, "满意度调查_2026Q4.csv", h.good_survey_csv())  # the good file of the same scan

    summary = run(wconn, inbox, depts)

    got = records(wconn)
    assert got["满意度调查_2026Q4.csv"][:3] == ("accepted", 2, 0)
    for name in ("满意度调查_2026Q1.csv", "linked", FGJ):
        status, accepted, _, reason, archived = got[name]
        assert (status, accepted, archived) == ("rejected", 0, False)
        assert "符号链接" in reason
    assert landed(wconn) == 2  # only the good file's rows
    assert (summary["accepted"], summary["rejected"]) == (1, 3)
    # still where they were, untouched; nothing of the outside moved into the archive
    assert (inbox / SCJ / "满意度调查_2026Q1.csv").is_symlink() and (inbox / FGJ).is_symlink()
    assert secret.read_bytes() == h.good_survey_csv() and (outside / "sub" / "满意度调查_2026Q3.csv").exists()
    archived = {p.name for p in (inbox / "_archive").rglob("*") if p.is_file()}
    assert archived == {"满意度调查_2026Q4.csv", "满意度调查_2026Q4.csv.receipt.txt"}
    assert "符号链接" in receipts_of(wconn)["满意度调查_2026Q1.csv"]

    again = run(wconn, inbox, depts)  # a link left there is not recorded (nor mailed) again every scan
    assert again["recovered"] == 3 and len(records(wconn)) == 4


def test_zip_bombs_are_refused_by_their_declared_sizes_before_parsing(wconn, inbox, depts):
    drop(inbox, SCJ, "满意度调查_2026Q1.xlsx", h.zip_bomb_xlsx(2 * 2**30))  # 2 MB → 2 GiB: over the total
    drop(
        inbox, SCJ, "满意度调查_2026Q2.xlsx", h.zip_bomb_xlsx(300 * 2**20)
    )  # 300 KB → 300 MiB: over the ratio
    drop(inbox, SCJ, "满意度调查_2026Q3.csv", h.good_survey_csv())

    run(wconn, inbox, depts)

    got = records(wconn)
    assert got["满意度调查_2026Q1.xlsx"][0] == "rejected" and "压缩炸弹" in got["满意度调查_2026Q1.xlsx"][3]
    assert "2,048 MB" in got["满意度调查_2026Q1.xlsx"][3]  # 2 GiB (+228 bytes of XML) declared
    assert got["满意度调查_2026Q2.xlsx"][0] == "rejected" and "压缩比" in got["满意度调查_2026Q2.xlsx"][3]
    assert got["满意度调查_2026Q3.csv"][:3] == ("accepted", 2, 0)
    assert all(archived for *_, archived in got.values())  # refused files are archived with their receipt


def test_macro_workbooks_are_refused_by_name_and_by_content(wconn, inbox, depts):
    drop(inbox, SCJ, "满意度调查_2026Q1.xlsm", h.xlsm_with_macros())
    drop(inbox, SCJ, "满意度调查_2026Q2.xlsx", h.xlsm_with_macros())  # renamed: found by its parts
    run(wconn, inbox, depts)
    got = records(wconn)
    assert got["满意度调查_2026Q1.xlsm"][0] == "rejected" and "启用宏" in got["满意度调查_2026Q1.xlsm"][3]
    assert got["满意度调查_2026Q2.xlsx"][0] == "rejected" and "含有宏" in got["满意度调查_2026Q2.xlsx"][3]
    assert landed(wconn) == 0


def test_bytes_cells_columns_and_names(wconn, inbox, depts):
    drop(inbox, SCJ, "满意度调查_2026Q1.csv", h.null_bytes_csv())
    drop(inbox, SCJ, "满意度调查_2026Q2.csv", h.invalid_utf8_csv())
    drop(inbox, SCJ, "满意度调查_2026Q3.csv", h.big_cell_csv())
    drop(inbox, SCJ, "满意度调查_2026Q4.xlsx", h.wide_xlsx())
    drop(inbox, FGJ, h.HOSTILE_NAMES["long"], h.good_survey_csv())
    # (other bytes than the long-named file's: the same content from two departments is a mistake)
    drop(inbox, SCJ, h.HOSTILE_NAMES["odd"], h.csv_bytes([h.SURVEY_HEADERS, *h.GOOD_SURVEY[::-1]]))
    drop(inbox, FGJ, "满意度调查_2026-01.csv", "问卷编号,填报日期\nQ1,2026-05-10\n".encode("gb18030"))

    summary = run(wconn, inbox, depts)

    got = records(wconn)
    assert not summary["errors"] and not summary["not_archived"]
    assert got["满意度调查_2026Q1.csv"][0] == "rejected" and "空字节" in got["满意度调查_2026Q1.csv"][3]
    # header line 1, Q001 line 2, the cut 局 in Q002's line 3
    assert "第 3 行含有无效的 UTF-8 字节" in got["满意度调查_2026Q2.csv"][3]
    # the 1 MB cell quarantines its row (Q003, line 4); the two good rows land
    assert got["满意度调查_2026Q3.csv"][:3] == ("accepted", 2, 1)
    reason, value = wconn.execute(
        "select reason, length(value) from ops.submission_quarantine where row_number = 4"
    ).fetchone()
    assert "1,048,576 个字符" in reason and value == parser.MAX_VALUE_CHARS + 1  # shown cut, with "…"
    # 16,384 columns: 6 of the template, 16,378 ignored; the receipt names 20 and counts the rest
    assert got["满意度调查_2026Q4.xlsx"][:3] == ("accepted", 2, 0)
    assert "另有 16358 列" in receipts_of(wconn)["满意度调查_2026Q4.xlsx"]
    # a 255-byte name and one with "..", spaces and emoji land, are archived, their receipts beside them
    for name, folder in ((h.HOSTILE_NAMES["long"], FGJ), (h.HOSTILE_NAMES["odd"], SCJ)):
        assert got[name][:3] == ("accepted", 2, 0) and got[name][4]
        archived = inbox / "_archive" / folder / "accepted" / name
        assert archived.exists()
        receipt = [
            p
            for p in archived.parent.iterdir()
            if p.name.endswith(".receipt.txt") and p.name[:20] == name[:20]
        ]
        assert len(receipt) == 1 and len(receipt[0].name.encode()) <= 255
    # GB18030 is still read: that file is refused for its missing headers, not for its encoding
    assert got["满意度调查_2026-01.csv"][0] == "rejected" and got["满意度调查_2026-01.csv"][3].startswith(
        "缺少必填表头"
    )
    assert landed(wconn) == 2 + 2 + 2 + 2  # big-cell file, wide workbook, long name, odd name


def test_a_file_replaced_while_it_is_read_lands_nothing_and_the_new_one_is_processed(
    wconn, inbox, depts, tmp_path
):
    path = h.write_survey_csv(inbox / SCJ / "满意度调查_2026Q2.csv", 30_000)
    os.utime(path, (time.time() - 60,) * 2)
    newer = h.write_survey_csv(tmp_path / "newer.csv", 3, start=500)

    def replace_once_opened():
        # a real second writer: as soon as the inbox has the file open, a new file is renamed over it
        deadline = time.time() + 60
        while time.time() < deadline:
            for fd in os.listdir("/proc/self/fd"):
                try:
                    if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                        os.replace(newer, path)
                        return
                except OSError:
                    continue
            time.sleep(0.001)

    t = threading.Thread(target=replace_once_opened)
    t.start()
    first = run(wconn, inbox, depts)
    t.join()

    (outcome,) = first["outcomes"]
    assert outcome["status"] == "rejected" and "替换" in outcome["reason"] and outcome["archive_path"] is None
    assert landed(wconn) == 0  # not one of the 30,000 rows read
    assert path.exists()  # the new file stays for the next scan

    second = run(wconn, inbox, depts)
    (outcome,) = second["outcomes"]
    assert (outcome["status"], outcome["rows_accepted"]) == ("accepted", 3)
    assert landed(wconn) == 3


@pytest.mark.slow
def test_a_million_row_csv_lands_whole_in_bounded_memory(wconn, inbox, depts):
    import resource

    path = h.write_survey_csv(inbox / SCJ / "满意度调查_2026Q2.csv", 1_000_000)
    os.utime(path, (time.time() - 60,) * 2)
    assert path.stat().st_size < files_mod.MAX_FILE_BYTES  # the size limit is above it
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    summary = run(wconn, inbox, depts)

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert (summary["accepted"], summary["rows_accepted"]) == (1, 1_000_000)
    assert landed(wconn) == 1_000_000
    # the file is ≈ 60 MB; holding its rows would take > 1 GiB. Peak growth of this process:
    assert (peak_kib - before) * 1024 < 600 * 2**20, f"grew {(peak_kib - before) // 1024} MiB"


def test_an_unwritable_archive_loses_and_duplicates_nothing(wconn, inbox, depts):
    # a file where the department's archive folder should be: mkdir fails even for root
    (inbox / "_archive").mkdir(parents=True)
    (inbox / "_archive" / SCJ).write_text("not a folder")
    blocked = drop(inbox, SCJ, "满意度调查_2026Q2.csv", h.good_survey_csv())
    drop(inbox, FGJ, "满意度调查_2026Q2.csv", h.csv_bytes([h.SURVEY_HEADERS, h.GOOD_SURVEY[0]]))

    first = run(wconn, inbox, depts)

    assert [o["status"] for o in first["outcomes"]] == ["accepted", "accepted"]
    (failed,) = first["not_archived"]
    assert failed["path"] == str(blocked) and "Error" in failed["error"]
    assert blocked.exists() and landed(wconn) == 2 + 1
    error = wconn.execute(
        "select archive_error from ops.submission_files where dept_code = %s", (SCJ,)
    ).fetchone()[0]
    assert error == failed["error"]

    second = run(wconn, inbox, depts)  # still broken: archived only is retried, nothing loaded again
    assert second["recovered"] == 1 and len(second["not_archived"]) == 1 and landed(wconn) == 3

    (inbox / "_archive" / SCJ).unlink()  # the operator fixes the folder
    third = run(wconn, inbox, depts)

    assert third["recovered"] == 1 and not third["not_archived"] and landed(wconn) == 3
    # as an uninterrupted run would have left it: two accepted files, archived, receipts beside them
    assert wconn.execute(
        "select dept_code, status, rows_accepted, archived_at is not null, archive_error "
        "from ops.submission_files order by submission_id"
    ).fetchall() == [(SCJ, "accepted", 2, True, None), (FGJ, "accepted", 1, True, None)]
    target = inbox / "_archive" / SCJ / "accepted" / "满意度调查_2026Q2.csv"
    assert target.exists() and not blocked.exists()
    assert "已接收" in target.with_name(target.name + ".receipt.txt").read_text(encoding="utf-8")
