"""What `make run` and `status` print about department submissions: per department, per run."""

from __future__ import annotations

from market_access import warehouse


def say(msg: str = "") -> None:
    print(msg, flush=True)


def last_submission_id(cfg: warehouse.WarehouseConfig) -> int:
    with warehouse.connect(cfg, autocommit=True) as conn:
        if conn.execute("select to_regclass('ops.submission_files') is null").fetchone()[0]:
            return 0  # (a query naming a missing table fails even in a branch not taken)
        row = conn.execute("select coalesce(max(submission_id), 0) from ops.submission_files").fetchone()
        return int(row[0])


def submissions_summary(cfg: warehouse.WarehouseConfig, since_submission: int = 0) -> list[dict]:
    """Per department folder, for files received after `since_submission`: rows landed and
    quarantined, files accepted / rejected / duplicate, and earlier files they superseded."""
    from psycopg.rows import dict_row

    with warehouse.connect(cfg, autocommit=True) as conn:
        conn.row_factory = dict_row
        if conn.execute("select to_regclass('ops.submission_files') is null as missing").fetchone()[
            "missing"
        ]:
            return []
        has_directory = conn.execute(
            "select to_regclass('raw.directory__departments') is not null as ok"
        ).fetchone()["ok"]
        name = "d.dept_name" if has_directory else "null::text"
        join = "left join raw.directory__departments d on d.dept_code = f.dept_code" if has_directory else ""
        return conn.execute(
            f"""
            with received as (
                select f.dept_code,
                       {name} as dept_name,
                       coalesce(sum(f.rows_accepted) filter (where f.status in ('accepted', 'superseded')), 0)
                           as rows_accepted,
                       coalesce(sum(f.rows_quarantined) filter (where f.status in ('accepted', 'superseded')), 0)
                           as rows_quarantined,
                       count(*) filter (where f.status in ('accepted', 'superseded')) as accepted,
                       count(*) filter (where f.status = 'rejected') as rejected,
                       count(*) filter (where f.status = 'duplicate') as duplicate
                from ops.submission_files f {join}
                where f.submission_id > %(since)s
                group by 1, 2
            ),
            replaced as (
                select old.dept_code, count(*) as superseded
                from ops.submission_files old
                join ops.submission_files new on new.submission_id = old.superseded_by
                where new.submission_id > %(since)s
                group by 1
            )
            select r.*, coalesce(x.superseded, 0) as superseded
            from received r left join replaced x on x.dept_code is not distinct from r.dept_code
            order by r.dept_name is null, r.dept_code
            """,
            {"since": since_submission},
        ).fetchall()


def print_submissions_table(rows: list[dict]) -> None:
    if not rows:
        say("  no department files this run")
        return
    say(
        f"  {'rows ok':>8}{'quarant.':>9}  {'files ok':>9}{'rejected':>9}{'duplicate':>10}{'supersed.':>10}  department"
    )
    totals = dict.fromkeys(
        ("rows_accepted", "rows_quarantined", "accepted", "rejected", "duplicate", "superseded"), 0
    )
    for r in rows:
        for k in totals:
            totals[k] += r[k]
        if r["dept_name"]:
            who = f"{r['dept_name']} ({r['dept_code']})"
        elif r["dept_code"] is None:
            who = "收件箱根目录 (files outside any department folder)"
        else:
            who = f"未知目录 {r['dept_code']} (not a department code)"
        say(
            f"  {r['rows_accepted']:>8}{r['rows_quarantined']:>9}  {r['accepted']:>9}{r['rejected']:>9}"
            f"{r['duplicate']:>10}{r['superseded']:>10}  {who}"
        )
    say(
        f"  {totals['rows_accepted']:>8}{totals['rows_quarantined']:>9}  {totals['accepted']:>9}"
        f"{totals['rejected']:>9}{totals['duplicate']:>10}{totals['superseded']:>10}  total"
    )
