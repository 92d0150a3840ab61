"""The submissions inbox: each new file in `<inbox>/<dept_code>/` is loaded exactly once, then archived with its receipt.

Exactly once: a file is identified by the SHA-256 of its content. Everything of a file — its
rows, its quarantine rows, its record in ops.submission_files, its receipt and the supersede
update of an earlier file — commits in one transaction; the move to the archive follows the
commit. A file whose record is committed but not yet archived (a crash in between) is recognised
by its hash on the next scan and only archived; an identical file sent again is a duplicate and
loads nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
import psycopg
from psycopg import sql

from market_access.directory import Directory, normalise
from market_access.load.schema import bootstrap
from market_access.submissions import receipt as receipts
from market_access.submissions.files import MAX_FILE_BYTES, NotAFile, SubmittedFile
from market_access.submissions.parser import Parsed, Rejected, Row, open_parse, parse_name
from market_access.submissions.templates import templates

log = logging.getLogger(__name__)

ARCHIVE = "_archive"
UNKNOWN = "_unknown"
ROOT = "_root"  # archive folder of files dropped straight into the inbox, outside any department folder
SKIPPED_PREFIXES = (".", "~$")  # hidden files, Office lock files
STATUSES = ("accepted", "rejected", "duplicate", "superseded")
DEFAULT_SETTLE_SECONDS = 5.0  # a file changed more recently may still be being copied in
_LOCK = "market_access.submissions.inbox"

OPS_DDL = """
create table if not exists ops.submission_files (
    submission_id       bigint generated always as identity primary key,
    file_hash           text not null,
    dept_code           text,
    template            text,
    period              text,
    file_name           text not null,
    file_size           bigint not null,
    received_at         timestamptz not null,
    status              text not null check (status in ('accepted', 'rejected', 'duplicate', 'superseded')),
    rows_total          integer not null default 0,
    rows_accepted       integer not null default 0,
    rows_quarantined    integer not null default 0,
    reason              text,
    superseded_by       bigint references ops.submission_files (submission_id),
    duplicate_of        bigint references ops.submission_files (submission_id),
    archive_path        text,
    archived_at         timestamptz,
    batch_id            bigint not null
);
alter table ops.submission_files add column if not exists archive_error text;
comment on table ops.submission_files is
    '部门报送文件: 每收到一个文件一行 (状态 accepted/rejected/duplicate/superseded、行数、原因、归档位置; one row per received file)';
comment on column ops.submission_files.dept_code is '报送目录名 (规范化后), 即部门的 dept_code; 未知目录照录; 收件箱根目录中的文件为空';
comment on column ops.submission_files.superseded_by is '替代本文件的更正文件的 submission_id';
comment on column ops.submission_files.duplicate_of is '内容相同的、更早入库的文件的 submission_id';
comment on column ops.submission_files.archive_error is '归档失败的原因 (归档目录不可写等); 下次扫描归档成功后清空';
-- at most one current file per department, template and period
create unique index if not exists submission_files_current_uidx
    on ops.submission_files (dept_code, template, period) where status = 'accepted';
create index if not exists submission_files_hash_idx on ops.submission_files (file_hash);

create table if not exists ops.submission_quarantine (
    quarantine_id       bigint generated always as identity primary key,
    submission_id       bigint not null references ops.submission_files (submission_id),
    file_hash           text not null,
    row_number          integer not null,
    column_name         text not null,
    value               text,
    reason              text not null
);
create index if not exists submission_quarantine_submission_idx on ops.submission_quarantine (submission_id);
comment on table ops.submission_quarantine is
    '报送文件中未入库的行: 行号 (部门表格中的行号)、列、值 (个人信息列为空)、中文原因 (rows of submitted files that did not land)';

create table if not exists ops.submission_receipts (
    submission_id       bigint primary key references ops.submission_files (submission_id),
    dept_code           text,
    subject             text not null,
    body_text           text not null,
    body_html           text not null,
    created_at          timestamptz not null default now(),
    mailed_at           timestamptz
);
comment on table ops.submission_receipts is
    '每个报送文件的回执 (中文, 不含个人信息); mailed_at 由告警邮件任务填写 (receipt per file)';
"""

RAW_DDL = """
create table if not exists {table} (
    raw_id              bigint generated always as identity primary key,
    record_id           text not null,
    payload             jsonb not null,
    dept_code           text not null,
    period              text not null,
    file_hash           text not null,
    row_number          integer not null,
    _batch_id           bigint not null,
    _loaded_at          timestamptz not null,
    unique (file_hash, record_id)
);
comment on table {table} is {comment};
create index if not exists {period_idx} on {table} (dept_code, period);
create or replace view {view} as
select s.*
from {table} as s
where exists (
    select from ops.submission_files as f
    where f.file_hash = s.file_hash and f.template = {code} and f.status = 'accepted'
);
comment on view {view} is {view_comment};
"""


@dataclass
class Outcome:
    """What happened to one file (safe to log and to push to XCom: no personal information)."""

    submission_id: int | None
    file_name: str
    folder: str | None
    dept_code: str | None
    template: str | None
    period: str | None
    status: str
    rows_total: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    reason: str | None = None
    archive_path: str | None = None
    supersedes: list[int] = field(default_factory=list)  # submission ids of the files it replaced
    recovered: bool = False  # committed by an earlier scan that stopped before archiving
    archive_error: str | None = None  # the file is recorded but could not be moved to the archive

    def as_dict(self) -> dict:
        return asdict(self)


def ensure_tables(conn: psycopg.Connection) -> None:
    """ops.submission_* and raw.submissions__<template> (+ _current views); idempotent."""
    bootstrap(conn)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('market_access.submissions.ddl'))")
        conn.execute("set local role loader")
        conn.execute(OPS_DDL)
        for t in templates().values():
            conn.execute(
                sql.SQL(RAW_DDL).format(
                    table=sql.Identifier("raw", t.table),
                    view=sql.Identifier("raw", f"{t.table}_current"),
                    period_idx=sql.Identifier(f"{t.table}__dept_period_idx"),
                    code=sql.Literal(t.code),
                    comment=sql.Literal(
                        f"部门报送 {t.name} ({t.title}) 原始层: 每个入库文件的每一行, 只追加; 当前数据见 {t.current_view}"
                    ),
                    view_comment=sql.Literal(
                        f"{t.name} 的当前数据: 每个 (部门, 期间) 最新一份已接收且未被替代的文件的行"
                    ),
                )
            )


# --- scanning -----------------------------------------------------------------------------------


def pending_files(inbox: Path, settle_seconds: float = 0.0) -> tuple[list[tuple[str | None, Path]], int]:
    """Entries waiting in the inbox as (department folder or None, path), oldest first; and how many
    were left for the next scan because they changed within `settle_seconds`.

    Nothing is followed: a symlink (to a file or a folder, inside the inbox or outside it) and any
    other entry that is not a regular file or a real folder is listed as itself, for process_file
    to refuse without reading it.
    """
    found: list[tuple[float, str, str | None, Path]] = []
    if not inbox.is_dir():
        return [], 0

    def add(folder: str | None, path: Path) -> None:
        found.append((os.lstat(path).st_mtime, str(path), folder, path))

    for entry in os.scandir(inbox):
        if entry.name == ARCHIVE or entry.name.startswith(SKIPPED_PREFIXES):
            continue
        if entry.is_dir(follow_symlinks=False):
            for top, dirs, names in os.walk(entry.path, followlinks=False):
                kept = []
                for d in dirs:
                    if d.startswith(SKIPPED_PREFIXES):
                        continue
                    if os.path.islink(os.path.join(top, d)):
                        add(entry.name, Path(top, d))  # a linked folder: refused, never walked
                    else:
                        kept.append(d)
                dirs[:] = sorted(kept)
                for name in names:
                    if not name.startswith(SKIPPED_PREFIXES):
                        add(entry.name, Path(top, name))
        elif entry.is_symlink() and os.path.isdir(entry.path):
            add(entry.name, Path(entry.path))  # a department folder that is a link: refused as a whole
        else:
            add(None, Path(entry.path))
    found.sort(key=lambda f: (f[0], f[1]))
    cutoff = time.time() - settle_seconds
    ready = [(folder, path) for mtime, _, folder, path in found if mtime <= cutoff]
    return ready, len(found) - len(ready)


def process_inbox(
    conn: psycopg.Connection,
    inbox: Path,
    directory: Directory,
    *,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    sender: str | None = None,
) -> dict:
    """Process every file waiting in the inbox; returns a summary with one outcome per file."""
    if not conn.autocommit:
        raise ValueError("process_inbox needs an autocommit connection: it manages its own transactions")
    inbox = Path(inbox)
    inbox.mkdir(parents=True, exist_ok=True)
    ensure_tables(conn)
    sender = sender or f"{directory.bureau.name} {receipts.SENDER}"
    # one scan at a time: a second one (a manual run next to the scheduled one) waits here
    conn.execute("select pg_advisory_lock(hashtext(%s))", (_LOCK,))
    try:
        _reconcile_archived(conn)
        files, waiting = pending_files(inbox, settle_seconds)
        outcomes, errors = [], []
        for folder, path in files:
            try:
                outcomes.append(process_file(conn, inbox, folder, path, directory, sender=sender))
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # the warehouse is gone: nothing else can be recorded either
            except Exception as exc:  # one file must not stop the others; the task fails at the end
                log.exception("%s: not processed", path)
                errors.append({"path": str(path), "error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.execute("select pg_advisory_unlock(hashtext(%s))", (_LOCK,))
    summary = {s: sum(1 for o in outcomes if o.status == s) for s in ("accepted", "rejected", "duplicate")}
    summary.update(
        superseded=sum(len(o.supersedes) for o in outcomes),
        files=len(outcomes),
        recovered=sum(1 for o in outcomes if o.recovered),
        rows_accepted=sum(o.rows_accepted for o in outcomes if not o.recovered),
        rows_quarantined=sum(o.rows_quarantined for o in outcomes if not o.recovered),
        waiting=waiting,
        outcomes=[o.as_dict() for o in outcomes],
        not_archived=[
            {"path": str(inbox / (o.folder or "") / o.file_name), "error": o.archive_error}
            for o in outcomes
            if o.archive_error
        ],
        errors=errors,
    )
    for item in summary["not_archived"]:
        log.error(
            "%s: recorded but not archived (%s); the next scan archives it", item["path"], item["error"]
        )
    log.info(
        "inbox %s: %d files (%d accepted, %d rejected, %d duplicate, %d only archived; %d earlier files superseded), "
        "%d rows landed, %d rows quarantined, %d files left for the next scan",
        inbox,
        summary["files"],
        summary["accepted"],
        summary["rejected"],
        summary["duplicate"],
        summary["recovered"],
        summary["superseded"],
        summary["rows_accepted"],
        summary["rows_quarantined"],
        waiting,
    )
    return summary


def _reconcile_archived(conn: psycopg.Connection) -> None:
    """A scan that stopped after moving a file but before noting it: the archive copy is the proof."""
    rows = conn.execute(
        "select submission_id, archive_path from ops.submission_files "
        "where archived_at is null and archive_path is not null"
    ).fetchall()
    done = [sid for sid, target in rows if target and Path(target).exists()]
    if done:
        with conn.transaction():
            conn.execute("set local role loader")
            conn.execute(
                "update ops.submission_files set archived_at = now(), archive_error = null "
                "where submission_id = any(%s)",
                (done,),
            )


# --- one file -----------------------------------------------------------------------------------


def process_file(
    conn: psycopg.Connection,
    inbox: Path,
    folder: str | None,
    path: Path,
    directory: Directory,
    *,
    sender: str = receipts.SENDER,
) -> Outcome:
    """Decide, load (one transaction), then archive one file."""
    dept_code = normalise(folder).upper() if folder is not None else None
    known = dept_code is not None and dept_code in directory
    try:
        src = SubmittedFile.open(path)
    except NotAFile as exc:
        return _refuse_unread(conn, folder, path, dept_code, known, directory, exc, sender)
    with src:
        return _process_open(conn, inbox, folder, path, src, dept_code, known, directory, sender)


def _refuse_unread(conn, folder, path, dept_code, known, directory, exc: NotAFile, sender) -> Outcome:
    """A symlink or special file: a rejected record and a receipt, once; never read, never moved."""
    name = parse_name(path.name)
    template = name.template.code if name.template else None
    earlier = conn.execute(
        "select submission_id from ops.submission_files where file_hash = %s and file_name = %s "
        "and dept_code is not distinct from %s and archive_path is null order by submission_id limit 1",
        (exc.identity, path.name, dept_code),
    ).fetchone()
    if earlier:
        log.info("%s/%s: still there, already refused (submission %s)", folder, path.name, earlier[0])
        return Outcome(
            earlier[0], path.name, folder, dept_code, template, name.period, "rejected", reason=exc.reason,
            recovered=True,
        )  # fmt: skip
    r = receipts.Receipt(
        submission_id=0,
        file_name=path.name,
        dept_code=dept_code or "",
        dept_name=directory.get(dept_code).name if known else None,
        status="rejected",
        received_at=None,
        file_hash=exc.identity,
        template_code=template,
        period=name.period,
        reason=exc.reason,
        sender=sender,
    )
    _record(conn, r, dept_code, exc.size, target=None)
    log.warning("%s/%s: rejected without reading it: %s", folder, path.name, exc.reason)
    return Outcome(
        r.submission_id, path.name, folder, dept_code, template, name.period, "rejected", reason=exc.reason
    )


def _process_open(
    conn, inbox, folder, path, src: SubmittedFile, dept_code, known, directory, sender
) -> Outcome:
    digest = src.digest
    # committed by an earlier scan that did not get to archive it: archive only, load nothing
    leftover = conn.execute(
        "select f.submission_id, f.status, f.archive_path, f.template, f.period, f.rows_total, f.rows_accepted, "
        "f.rows_quarantined, f.reason, r.body_text "
        "from ops.submission_files f left join ops.submission_receipts r using (submission_id) "
        "where f.file_hash = %s and f.archived_at is null and f.archive_path is not null and f.file_name = %s "
        "and f.dept_code is not distinct from %s order by f.submission_id limit 1",
        (digest, path.name, dept_code),
    ).fetchone()
    if leftover:
        sid, status, target, template, period, total, accepted, quarantined, reason, text = leftover
        archived, error = _archive(conn, sid, src, Path(target), text or "")
        log.info(
            "%s/%s: already recorded as %s (submission %s); archived only", folder, path.name, status, sid
        )
        return Outcome(
            sid, path.name, folder, dept_code, template, period, status, total, accepted, quarantined, reason,
            str(archived) if archived else None, recovered=True, archive_error=error,
        )  # fmt: skip

    r = receipts.Receipt(
        submission_id=0,
        file_name=path.name,
        dept_code=dept_code or "",
        dept_name=directory.get(dept_code).name if known else None,
        status="rejected",
        received_at=None,  # set in the transaction
        file_hash=digest,
        sender=sender,
    )
    parsed: Parsed | None = None
    if folder is None:
        r.reason = (
            "文件未放在部门目录中：请放入收件箱中以本单位统一社会信用代码（dept_code）命名的目录后重新报送"
        )
    elif not known:
        name = parse_name(path.name)
        r.template_code, r.period = (name.template.code if name.template else None), name.period
        r.reason = (
            f"未知的部门目录“{folder}”：目录名必须是部门目录中登记的统一社会信用代码（dept_code）；"
            "系统不会根据单位名称或简称猜测报送单位，请放入本单位代码命名的目录后重新报送"
        )
    elif src.size > MAX_FILE_BYTES:
        name = parse_name(path.name)
        r.template_code, r.period = (name.template.code if name.template else None), name.period
        r.reason = f"文件过大（{src.size / 2**20:,.0f} MB，上限 {MAX_FILE_BYTES // 2**20} MB），未读取：请按期间或类型拆分为多个文件后报送"
    else:
        parsed = _decide(conn, r, src, path.name, dept_code, directory)

    target = _archive_target(inbox, folder, dept_code, known, r.status, path.name, digest)
    try:
        changed = _record(conn, r, dept_code, src.size, target, parsed=parsed, src=src)
    finally:
        if parsed is not None:
            parsed.close()
    if changed:
        log.warning("%s/%s: %s", folder, path.name, r.reason)
        archived, error = None, None
    else:
        archived, error = _archive(conn, r.submission_id, src, target, r.text)
    log.info(
        "%s/%s: %s%s (template %s, period %s, %d rows landed, %d quarantined)%s",
        folder if folder is not None else ".",
        path.name,
        r.status,
        f", supersedes submission {', '.join(str(e.submission_id) for e in r.supersedes)}"
        if r.supersedes
        else "",
        r.template_code,
        r.period,
        r.rows_accepted,
        r.rows_quarantined,
        f": {r.reason}" if r.reason else "",
    )
    return Outcome(
        r.submission_id,
        path.name,
        folder,
        dept_code,
        r.template_code,
        r.period,
        r.status,
        r.rows_total,
        r.rows_accepted,
        r.rows_quarantined,
        r.reason,
        str(archived) if archived else None,
        [e.submission_id for e in r.supersedes],
        archive_error=error,
    )


class _Changed(Exception):
    pass


def _record(
    conn: psycopg.Connection,
    r: receipts.Receipt,
    dept_code: str | None,
    size: int,
    target: Path | None,
    *,
    parsed: Parsed | None = None,
    src: SubmittedFile | None = None,
) -> bool:
    """The file's record, rows, quarantine and receipt in one transaction. A file whose rows turn out
    unreadable further down, or that changed while it was read, lands nothing and is recorded as
    rejected (with `target` None when it changed: what is at its path now is another file).
    Returns True when it changed."""
    changed = False
    batch_id = conn.execute("select nextval('ops.batch_id_seq')").fetchone()[0]
    with conn.transaction():
        conn.execute("set local role loader")
        r.received_at = conn.execute("select now()").fetchone()[0]
        if parsed is not None:
            try:
                with conn.transaction():  # a savepoint: all of the file's rows, or none
                    _insert_file(conn, r, dept_code, size, target, batch_id)
                    _land(conn, parsed, r, dept_code, r.file_hash, batch_id)
                    if src is not None and (why := src.changed()):
                        raise _Changed(why)
                    conn.execute(
                        "update ops.submission_files set rows_total = %s, rows_accepted = %s, rows_quarantined = %s "
                        "where submission_id = %s",
                        (r.rows_total, r.rows_accepted, r.rows_quarantined, r.submission_id),
                    )
            except (Rejected, _Changed) as exc:
                changed = isinstance(exc, _Changed)
                r.status, r.reason = "rejected", exc.reason if isinstance(exc, Rejected) else str(exc)
                r.rows_total = r.rows_accepted = r.rows_quarantined = 0
                r.problems, r.problems_total, r.supersedes, r.ignored_headers = [], 0, [], []
                parsed = None
                if changed:
                    target = None
        elif src is not None and (why := src.changed()):
            changed, r.status, r.reason, target = True, "rejected", why, None
            r.duplicate_of = None
        if parsed is None:
            _insert_file(conn, r, dept_code, size, target, batch_id)
        subject, r.text, html = receipts.render(r)
        conn.execute(
            "insert into ops.submission_receipts (submission_id, dept_code, subject, body_text, body_html) "
            "values (%s, %s, %s, %s, %s)",
            (r.submission_id, dept_code, subject, r.text, html),
        )
    return changed


def _insert_file(conn, r: receipts.Receipt, dept_code, size: int, target: Path | None, batch_id) -> None:
    earlier = []
    if r.status == "accepted":
        # the corrected file replaces the current one of this department, template and period
        earlier = conn.execute(
            "update ops.submission_files set status = 'superseded' "
            "where dept_code = %s and template = %s and period = %s and status = 'accepted' "
            "returning submission_id, file_name, received_at",
            (dept_code, r.template_code, r.period),
        ).fetchall()
        r.supersedes = [receipts.Earlier(*e) for e in earlier]
    r.submission_id = conn.execute(
        """
        insert into ops.submission_files (file_hash, dept_code, template, period, file_name, file_size,
            received_at, status, rows_total, rows_accepted, rows_quarantined, reason, duplicate_of,
            archive_path, batch_id)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        returning submission_id
        """,
        (
            r.file_hash,
            dept_code,
            r.template_code,
            r.period,
            r.file_name,
            size,
            r.received_at,
            r.status,
            r.rows_total,
            r.rows_accepted,
            r.rows_quarantined,
            r.reason,
            r.duplicate_of.submission_id if r.duplicate_of else None,
            str(target) if target is not None else None,
            batch_id,
        ),
    ).fetchone()[0]
    if earlier:
        conn.execute(
            "update ops.submission_files set superseded_by = %s where submission_id = any(%s)",
            (r.submission_id, [e[0] for e in earlier]),
        )


def _decide(
    conn: psycopg.Connection,
    r: receipts.Receipt,
    src: SubmittedFile,
    file_name: str,
    dept_code: str,
    directory: Directory,
) -> Parsed | None:
    """Fill in the receipt's verdict for a file in a known department's folder; the parsed file
    (header found, rows still to stream) when it lands.

    Identical content already landed for the same department and period is a duplicate. Identical
    content with rows for another department or period is a file sent by mistake and is rejected
    (an empty template — "nothing to report" — may well be byte-identical across periods).
    """
    name = parse_name(file_name)
    r.period = name.period
    earlier = conn.execute(
        "select submission_id, file_name, received_at, dept_code, template, period, rows_total "
        "from ops.submission_files "
        "where file_hash = %s and status in ('accepted', 'superseded') "
        "order by (dept_code = %s and period is not distinct from %s) desc, submission_id limit 1",
        (r.file_hash, dept_code, name.period),
    ).fetchone()
    if earlier and earlier[3] == dept_code and earlier[5] == name.period:
        r.status = "duplicate"
        r.duplicate_of = receipts.Earlier(*earlier[:3])
        r.template_code = earlier[4]
        return None
    try:
        parsed = open_parse(src.f, file_name, directory.resolve)
    except Rejected as exc:
        r.reason = exc.reason
        r.template_code = exc.template.code if exc.template else None
        return None
    r.template_code = parsed.template.code
    reason = None
    if name.period is None:
        reason = (
            "文件名中没有可识别的报送期间：文件名应为 <模板名>_<期间>.<扩展名>，期间写作 2026、"
            f"2026H1、2026Q2 或 2026-06，例如 {parsed.template.name}_2026Q2{name.ext}"
        )
    elif earlier and earlier[6]:  # the same content has as many rows as the earlier file had
        who = directory.get(earlier[3]).name if earlier[3] in directory else earlier[3]
        reason = (
            f"本文件与{who}于 {receipts.Earlier(*earlier[:3]).received_text} 报送的“{earlier[1]}”"
            f"（期间 {earlier[5]}）内容完全相同，但报送单位或期间不同，疑似报错文件：请核对后重新报送"
        )
    if reason:
        parsed.close()
        r.reason = reason
        return None
    r.status = "accepted"
    r.ignored_headers = parsed.ignored_headers
    return parsed


LAND_CHUNK = 5_000  # rows per COPY: the file's rows stream through in slices, all in one transaction


def _land(
    conn: psycopg.Connection, parsed: Parsed, r: receipts.Receipt, dept_code: str, digest: str, batch
) -> None:
    """Stream the file's rows into its raw table and its bad rows into the quarantine, slice by slice."""
    table = sql.Identifier("raw", parsed.template.table)
    loaded_at = r.received_at
    copy_sql = sql.SQL(
        "copy {table} (record_id, payload, dept_code, period, file_hash, row_number, _batch_id, _loaded_at) "
        "from stdin"
    ).format(table=table)
    rows: list[Row] = []
    problems: list = []
    r.problems, r.problems_total = [], 0

    def flush() -> None:
        with conn.cursor() as cur:
            if rows:
                with cur.copy(copy_sql) as copy:
                    for row in rows:
                        copy.write_row(
                            (
                                row.record_id,
                                orjson.dumps(row.payload).decode(),
                                dept_code,
                                r.period,
                                digest,
                                row.row_number,
                                batch,
                                loaded_at,
                            )
                        )
            if problems:
                cur.executemany(
                    "insert into ops.submission_quarantine (submission_id, file_hash, row_number, column_name, value, reason) "
                    "values (%s, %s, %s, %s, %s, %s)",
                    [(r.submission_id, digest, p.row_number, p.column, p.value, p.reason) for p in problems],
                )
        rows.clear()
        problems.clear()

    for item in parsed.records():
        if isinstance(item, Row):
            rows.append(item)
        else:
            problems.extend(item)
            r.problems_total += len(item)
            if len(r.problems) < receipts.MAX_LISTED_PROBLEMS:
                r.problems.extend(item)
        if len(rows) >= LAND_CHUNK or len(problems) >= LAND_CHUNK:
            flush()
    flush()
    r.rows_total, r.rows_accepted, r.rows_quarantined = (
        parsed.rows_total,
        parsed.rows_accepted,
        parsed.rows_quarantined,
    )


def _archive_target(
    inbox: Path, folder: str | None, dept_code: str | None, known: bool, status: str, name: str, digest: str
) -> Path:
    """`_archive/<dept_code>/<outcome>/<name>`; unknown folders under `_archive/_unknown/<folder>/`."""
    if folder is None:
        base = inbox / ARCHIVE / UNKNOWN / ROOT
    elif not known:
        base = inbox / ARCHIVE / UNKNOWN / folder
    else:
        base = inbox / ARCHIVE / dept_code
    target = base / status / name
    # names come from the file system, so they hold no "/" — but never write outside the archive
    if os.path.normpath(target).startswith(os.path.normpath(inbox / ARCHIVE) + os.sep) is False:
        raise ValueError(f"archive path outside the archive: {target}")
    return _free_name(target, digest)


NAME_MAX = 255  # bytes, of one path component (ext4, xfs, …)
RECEIPT_SUFFIX = ".receipt.txt"


def _fit(stem: str, suffix: str) -> str:
    """`stem + suffix`, the stem shortened (on a character boundary) to fit NAME_MAX bytes."""
    budget = NAME_MAX - len(suffix.encode("utf-8", "surrogateescape"))
    raw = stem.encode("utf-8", "surrogateescape")
    if len(raw) <= budget:
        return stem + suffix
    return raw[:budget].decode("utf-8", "ignore") + suffix


def receipt_path(target: Path) -> Path:
    """Where the receipt of an archived file goes: `<name>.receipt.txt`, shortened for a 255-byte name."""
    return target.with_name(_fit(target.name, RECEIPT_SUFFIX))


def _free_name(target: Path, digest: str) -> Path:
    if not target.exists() and not receipt_path(target).exists():
        return target
    stem, suffix = os.path.splitext(target.name)
    for n in range(8, 65, 4):
        candidate = target.with_name(_fit(stem, f".{digest[:n]}{suffix}"))
        if not candidate.exists() and not receipt_path(candidate).exists():
            return candidate
    return target.with_name(_fit(stem, f".{digest}.{time.time_ns()}{suffix}"))


def _archive(
    conn: psycopg.Connection, submission_id: int, src: SubmittedFile, target: Path, receipt_text: str
) -> tuple[Path | None, str | None]:
    """Receipt next to the archived file, move the file, note it; a crash anywhere here is finished later.

    An archive that cannot be written (a read-only mount, a file where a folder should be, a full
    disk) leaves the file where it is, recorded: the error goes to ops.submission_files.archive_error
    and the next scan archives it. A file replaced at its path since it was read is not moved.
    """
    try:
        if not src.still_at_path():
            raise OSError(f"{src.path} 已被替换或移走，未归档")
        if target.exists():  # e.g. someone copied a file of the same name there meanwhile
            target = _free_name(target, f"{submission_id:08d}")
        target.parent.mkdir(parents=True, exist_ok=True)
        receipt_path(target).write_text(receipt_text, encoding="utf-8")
        shutil.move(str(src.path), str(target))
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
        with conn.transaction():
            conn.execute("set local role loader")
            conn.execute(
                "update ops.submission_files set archive_error = %s where submission_id = %s",
                (error, submission_id),
            )
        return None, error
    with conn.transaction():
        conn.execute("set local role loader")
        conn.execute(
            "update ops.submission_files set archive_path = %s, archived_at = now(), archive_error = null "
            "where submission_id = %s",
            (str(target), submission_id),
        )
    return target, None
