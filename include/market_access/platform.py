"""Brings the platform up on embedded defaults and runs its DAGs through Airflow (behind `make run`)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from market_access import deid, warehouse
from market_access.settings import Settings
from market_access.sources import catalog
from market_access.sources.connection import SourceConnection, env_var_for
from market_access.submissions.summary import last_submission_id, print_submissions_table, submissions_summary

# DAGs in dependency order: the syncs and the department inbox land raw data, then dbt builds
RUN_ORDER = [f"sync_{name}" for name in catalog.systems()] + [
    "submissions_inbox",
    "build_warehouse",
    "data_quality",
    "publish_marts",
]

# the daily cycle's phases (bench/daily_cycle.py): which DAGs of RUN_ORDER each one is
PHASES = {
    "syncs": lambda dag_id: dag_id.startswith("sync_"),
    "inbox": lambda dag_id: dag_id == "submissions_inbox",
    "build": lambda dag_id: dag_id == "build_warehouse",
    "quality": lambda dag_id: dag_id == "data_quality",
    "publish": lambda dag_id: dag_id == "publish_marts",
}
# the runner's marker lines around each DAG (orchestration/dagtest.py prints them, run_dags reads them)
DAGTEST_MARK = "##market_access dag "
# each DAG's seconds in the last `make run`, relative to the local folder
TIMINGS_FILE = "logs/run/timings.json"

# Cosmos' watcher producer copies every XCom it pushes into an Airflow Variable, by default rewriting the
# whole (growing) copy on each push — several pushes per dbt node; in a py-spy profile of a scale-0.01
# day run (2026-12-01) the rewrites held the two producers' threads about 40 s. Off, the copy is written
# once, by the producer's failure callback, which is when a cleared producer needs it; only a producer
# killed outright (its worker lost) leaves none, and then its cleared models' tasks run their models
# themselves.
WATCHER_BACKUP_ON_FAILURE_ONLY = ("AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY", "False")


def say(msg: str = "") -> None:
    print(msg, flush=True)


@dataclass
class Stack:
    """What is running and how to reach it; `env()` is what Airflow processes get."""

    settings: Settings
    warehouse: warehouse.WarehouseConfig
    warehouse_embedded: bool
    sources: dict[str, str] = field(default_factory=dict)  # system → Airflow connection URI
    simulated: list[str] = field(default_factory=list)
    simulator_proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update(
            {
                "MARKET_ACCESS_HOME": str(s.root),
                "AIRFLOW_HOME": str(s.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(s.root / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(s.root / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Shanghai",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                warehouse.ENV_VAR: self.warehouse.airflow_uri(),
                "SUBMISSIONS_INBOX": str(s.submissions_inbox),
                "DEPARTMENTS_CSV": str(s.departments_csv),
            }
        )
        # an interactive run should not sit out production-length retry delays
        env.setdefault("SYNC_RETRY_DELAY_SECONDS", "5")
        # the bundled tools must not try to phone home (Cosmos telemetry) from a government network
        env.setdefault("DO_NOT_TRACK", "1")
        env.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
        # Cosmos' partial-parse and profile cache: this platform's own, not /tmp/cosmos shared by every
        # Airflow on the machine (two platforms' builds must not read each other's half-written cache)
        env.setdefault("AIRFLOW__COSMOS__CACHE_DIR", str(s.local_dir / "cosmos"))
        env.setdefault(*WATCHER_BACKUP_ON_FAILURE_ONLY)
        if self.warehouse_embedded and not os.environ.get(deid.KEY_ENV, "").strip():
            # the embedded default's pseudonym key: generated once into .local/secrets, never in the repo
            key = deid.local_key(s.hmac_key_file)
            env[deid.KEY_ENV] = key.key.hex()
            env[deid.KEY_ID_ENV] = key.key_id
        for system, uri in self.sources.items():
            env[env_var_for(catalog.system(system).conn_id)] = uri
        clock = self.simulated_clock()
        if clock and len(self.simulated) == len(catalog.systems()):
            # the simulated county's data ends at its clock: judge feed freshness and deadlines there
            env.setdefault("QUALITY_AS_OF", clock)
        return env

    def simulated_clock(self) -> str | None:
        """The simulators' present (YYYY-MM-DD), from their state file."""
        state = self.settings.simulator_dir / "state.json"
        try:
            return str(json.loads(state.read_text(encoding="utf-8"))["clock"])[:10]
        except (OSError, ValueError, KeyError):
            return None

    def stop_simulators(self) -> None:
        proc = self.simulator_proc
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.simulator_proc = None


def start_warehouse(s: Settings) -> tuple[warehouse.WarehouseConfig, bool]:
    cfg = warehouse.configured()
    if cfg is not None:
        say(f"• warehouse: {warehouse.ENV_VAR} is set → {cfg.display()} (no embedded server started)")
        warehouse.check_server(cfg)  # an unsupported version is refused before anything starts
        return cfg, False
    say(f"• warehouse: starting the embedded PostgreSQL in {s.pgdata} …")
    t0 = time.monotonic()
    cfg = warehouse.start_embedded(s.pgdata)
    say(f"  ready in {time.monotonic() - t0:.1f}s: {cfg.display()}")
    return cfg, True


def start_simulators(
    s: Settings, systems: list[str], advance_days: int
) -> tuple[subprocess.Popen, dict[str, str]]:
    """Start the bundled simulators for `systems` and wait until they listen."""
    state = s.simulator_dir
    state.mkdir(parents=True, exist_ok=True)
    endpoints = state / "endpoints.json"
    endpoints.unlink(missing_ok=True)
    log_path = s.log_dir / "simulators.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "market_access.simulators",
        "serve",
        "--systems",
        ",".join(systems),
        "--host",
        "127.0.0.1",
        "--port-base",
        "0",
        "--seed",
        str(s.sim_seed),
        "--scale",
        str(s.sim_scale),
        "--faults",
        s.sim_faults,
        "--state-dir",
        str(state),
    ]
    if advance_days:
        cmd += ["--advance", str(advance_days)]
    say(
        f"• simulators: {', '.join(systems)} (scale {s.sim_scale}, faults {s.sim_faults}"
        + (f", clock advanced {advance_days} day" if advance_days else "")
        + f"); log {log_path}"
    )
    log_file = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_file, text=True, bufsize=1)
    assert proc.stdout is not None
    # echo the generator's progress lines while waiting for endpoints.json
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + 900
    while not endpoints.exists():
        line = proc.stdout.readline()
        if line:
            say("  " + line.rstrip())
            continue
        if proc.poll() is not None:
            raise RuntimeError(f"the simulators exited with code {proc.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the simulators did not come up within 15 minutes; see {log_path}")
        time.sleep(0.2)
    time.sleep(0.1)  # endpoints.json is written once all servers listen
    info = json.loads(endpoints.read_text(encoding="utf-8"))
    uris = {}
    for system in systems:
        ep = info[system]
        conn = SourceConnection.from_uri(
            system, ep["url"].replace("://", f"://{ep['client_id']}:{ep['client_secret']}@", 1)
        )
        uris[system] = _airflow_http_uri(conn)
    return proc, uris


def _airflow_http_uri(conn: SourceConnection) -> str:
    from urllib.parse import quote, urlsplit

    parts = urlsplit(conn.base_url)
    query = f"?base_path={quote(parts.path, safe='')}" if parts.path else ""
    return (
        f"{parts.scheme}://{quote(conn.client_id, safe='')}:{quote(conn.client_secret, safe='')}"
        f"@{parts.netloc}{query}"
    )


def bring_up(s: Settings, *, advance_days: int = 0) -> Stack:
    cfg, embedded = start_warehouse(s)
    stack = Stack(settings=s, warehouse=cfg, warehouse_embedded=embedded)
    to_simulate = []
    for name, system in catalog.systems().items():
        uri = os.environ.get(env_var_for(system.conn_id), "").strip()
        if uri:
            stack.sources[name] = uri
            say(
                f"• {system.title}: {env_var_for(system.conn_id)} is set → {SourceConnection.from_uri(name, uri).base_url}"
            )
        else:
            to_simulate.append(name)
    if to_simulate:
        stack.simulator_proc, uris = start_simulators(s, to_simulate, advance_days)
        stack.sources.update(uris)
        stack.simulated = to_simulate
    return stack


# written into AIRFLOW_HOME after `airflow db migrate` succeeded: the Airflow version and the
# metadata database's migration revision it left
MIGRATED_STAMP = "migrated.json"


def sqlite_metadata(env: dict[str, str]) -> Path | None:
    """The SQLite file of Airflow's metadata database when it is make run's default
    (`$AIRFLOW_HOME/airflow.db`, set neither in the environment nor otherwise in airflow.cfg); else None."""
    if any(
        env.get(f"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN{suffix}", "").strip()
        for suffix in ("", "_CMD", "_SECRET")
    ):
        return None
    home = Path(env["AIRFLOW_HOME"])
    default = home / "airflow.db"
    cfg = home / "airflow.cfg"
    if cfg.exists():
        import configparser

        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(cfg, encoding="utf-8")
        except configparser.Error:
            return None
        conn = parser.get("database", "sql_alchemy_conn", fallback=f"sqlite:///{default}").strip()
        if conn != f"sqlite:///{default}":
            return None
    return default


def metadata_revision(db: Path) -> str | None:
    """The migration revision recorded in a SQLite metadata database (None: no database, no table)."""
    import sqlite3

    if not db.is_file():
        return None
    try:
        with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
            rows = conn.execute("select version_num from alembic_version").fetchall()
    except sqlite3.Error:
        return None
    return rows[0][0] if len(rows) == 1 else None


def _migration_state(env: dict[str, str]) -> dict[str, str] | None:
    from importlib.metadata import version

    db = sqlite_metadata(env)
    revision = metadata_revision(db) if db else None
    return {"airflow": version("apache-airflow"), "revision": revision} if revision else None


def metadata_is_migrated(env: dict[str, str]) -> bool:
    """Whether `airflow db migrate` has nothing to do: the SQLite metadata database is at the revision
    that this Airflow version's migration left in it (MIGRATED_STAMP). Any other database, a missing
    stamp, another Airflow version or another revision: migrate."""
    state = _migration_state(env)
    stamp = Path(env["AIRFLOW_HOME"]) / MIGRATED_STAMP
    try:
        return state is not None and json.loads(stamp.read_text(encoding="utf-8")) == state
    except (OSError, ValueError):
        return False


def record_migrated(env: dict[str, str]) -> None:
    state = _migration_state(env)
    stamp = Path(env["AIRFLOW_HOME"]) / MIGRATED_STAMP
    if state is None:
        stamp.unlink(missing_ok=True)
    else:
        stamp.write_text(json.dumps(state) + "\n", encoding="utf-8")


def airflow(stack: Stack, *args: str, log_path: Path) -> int:
    """Run an `airflow` CLI command (`db migrate`) with the platform's environment; output goes to
    log_path. The DAGs themselves run through run_dags."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    exe = str(Path(sys.executable).with_name("airflow"))
    with open(log_path, "w", encoding="utf-8") as log:
        return subprocess.run(
            [exe, *args], env=stack.env(), stdout=log, stderr=subprocess.STDOUT, text=True
        ).returncode


def run_dags(stack: Stack, dag_ids: list[str], log_dir: Path):
    """`airflow dags test` of each DAG in order, in one process (orchestration/dagtest.py): yields
    (dag_id, exit code, seconds) as each finishes, and writes each DAG's output to
    `log_dir/<dag_id>.log`. If the process dies inside a DAG, that DAG has failed (its log says
    how) and the rest run in a new process: one DAG never stops the others."""
    log_dir.mkdir(parents=True, exist_ok=True)
    pending = list(dag_ids)
    while pending:
        proc = subprocess.Popen(
            [sys.executable, "-m", "market_access.orchestration.dagtest", *pending],
            env=stack.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        assert proc.stdout is not None
        # what a process prints before its first DAG (appended: a restart keeps the first one's)
        log = open(
            log_dir / "dagtest-startup.log", "a" if pending != list(dag_ids) else "w", encoding="utf-8"
        )
        current: str | None = None
        started = time.monotonic()
        try:
            for line in proc.stdout:
                if line.startswith(DAGTEST_MARK):
                    word, dag_id, *rest = line[len(DAGTEST_MARK) :].split()
                    if word == "start":
                        log.close()
                        log = open(log_dir / f"{dag_id}.log", "w", encoding="utf-8")
                        current, started = dag_id, time.monotonic()
                    else:
                        fields = dict(f.split("=", 1) for f in rest)
                        log.close()
                        log = open(os.devnull, "w", encoding="utf-8")
                        current = None
                        pending.remove(dag_id)
                        yield dag_id, int(fields["rc"]), float(fields["seconds"])
                    continue
                log.write(line)
                if _PROGRESS.search(line):
                    say("    " + _compact(line))
        finally:
            log.close()
        rc = proc.wait()
        if current is not None:  # the process died inside this DAG
            with open(log_dir / f"{current}.log", "a", encoding="utf-8") as tail:
                tail.write(f"\n[make run] the dags test process ended with exit {rc} inside {current}\n")
            pending.remove(current)
            yield current, rc or 1, time.monotonic() - started
        elif pending:  # it died before starting the next one (Airflow itself failed to start)
            for dag_id in pending:
                yield dag_id, rc or 1, 0.0
            return


# what `make run` echoes of Airflow's output: the platform's own log lines, and failures
_PROGRESS = re.compile(r"\[market_access\.|new_state=(failed|up_for_retry)|^\w*Error: |\[error")


def _compact(line: str) -> str:
    line = line.rstrip()
    state = re.search(r"new_state=(\w+)", line)
    if state:
        return f"task attempt ended: {state.group(1)}"
    line = re.sub(r"^\S+Z \[\w+\s*\] ", "", line)
    line = re.sub(r"\s+\[[\w.]+\]\s+loc=\S+.*$", "", line)
    return line[:240]


def sync_summary(cfg: warehouse.WarehouseConfig, since_batch: int = 0) -> list[dict]:
    """Per resource: current records, tombstones, stored versions, rows new since `since_batch`, state."""
    from psycopg import sql
    from psycopg.rows import dict_row

    rows = []
    with warehouse.connect(cfg, autocommit=True) as conn:
        conn.row_factory = dict_row
        if conn.execute("select to_regclass('ops.sync_state') is null as missing").fetchone()["missing"]:
            return rows
        states = {(r["system"], r["resource"]): r for r in conn.execute("select * from ops.sync_state")}
        for res in catalog.all_resources():
            st = states.get((res.system, res.name))
            row = {
                "source": f"{res.system}/{res.name}",
                "table": res.qualified_table,
                "current": 0,
                "deleted": 0,
                "versions": 0,
                "new": 0,
                "quarantined": 0,
                "watermark": None,
                "status": st["last_status"] if st else "never run",
                "error": st["last_error"] if st and st["last_status"] in ("failed", "held") else None,
            }
            if conn.execute("select to_regclass(%s) is not null as ok", (res.qualified_table,)).fetchone()[
                "ok"
            ]:
                counts = conn.execute(
                    sql.SQL(
                        """
                        with latest as (
                            select distinct on (record_id) record_id, is_deleted
                            from {t} order by record_id, source_updated_at desc, raw_id desc
                        )
                        select (select count(*) from latest where not is_deleted) as current,
                               (select count(*) from latest where is_deleted) as deleted,
                               (select count(*) from {t}) as versions,
                               (select count(*) from {t} where _batch_id > %s) as new
                        """
                    ).format(t=sql.Identifier("raw", res.table)),
                    (since_batch,),
                ).fetchone()
                row.update(counts)
            q = conn.execute(
                "select count(*) as n from ops.quarantine where source = %s and batch_id > %s",
                (row["source"], since_batch),
            ).fetchone()
            row["quarantined"] = q["n"]
            if st and st["watermark"]:
                from market_access.load.sync import to_beijing_text

                row["watermark"] = to_beijing_text(st["watermark"])
            rows.append(row)
    return rows


def last_batch_id(cfg: warehouse.WarehouseConfig) -> int:
    with warehouse.connect(cfg, autocommit=True) as conn:
        row = conn.execute(
            "select case when to_regclass('ops.load_batches') is null then 0 "
            "else (select coalesce(max(batch_id), 0) from ops.load_batches) end"
        ).fetchone()
        return int(row[0])


def print_sync_table(rows: list[dict]) -> None:
    say(
        f"  {'source':<36}{'current':>9}{'deleted':>9}{'versions':>10}{'new':>9}{'quarant.':>10}  watermark / status"
    )
    for r in rows:
        tail = r["watermark"] or ""
        if r["status"] != "succeeded":
            tail = f"{tail} {r['status']}".strip()
        say(
            f"  {r['source']:<36}{r['current']:>9}{r['deleted']:>9}{r['versions']:>10}{r['new']:>9}"
            f"{r['quarantined']:>10}  {tail}"
        )
        if r.get("error"):
            say(f"      last error: {r['error'][:300]}")


def generate_demo_submissions(s: Settings) -> None:
    """Write the simulated departments' files for the simulators' current day into the default inbox.

    Only when SUBMISSIONS_INBOX is not set (a real inbox is the departments' own), and once per
    simulated day: the first run gets the quarter's bulk, each later day a few late or corrected files.
    """
    if os.environ.get("SUBMISSIONS_INBOX", "").strip():
        say(f"• submissions: SUBMISSIONS_INBOX is set → {s.submissions_inbox} (no demo files written)")
        return
    from market_access import directory
    from market_access.simulators.submissions import generate

    day = 0
    state = s.simulator_dir / "state.json"
    if state.exists():
        try:
            day = int(json.loads(state.read_text(encoding="utf-8")).get("day", 0))
        except ValueError:
            day = 0
    marker = s.simulator_dir / "submissions.json"
    done = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else {}
    key = f"{s.sim_seed}"
    if day in done.get(key, []):
        say(f"• submissions: demo files of simulated day {day} are already in {s.submissions_inbox}")
        return
    try:
        depts = directory.load(s.departments_csv)
    except directory.DirectoryError as exc:
        say(f"• submissions: no demo files, the department directory is refused: {exc}")
        return
    out = generate(s.submissions_inbox, seed=s.sim_seed, day=day, directory=depts)
    done.setdefault(key, []).append(day)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(done), encoding="utf-8")
    say(f"• submissions: {len(out)} demo files of simulated day {day} written to {s.submissions_inbox}")


def print_quality_summary(cfg: warehouse.WarehouseConfig, since: datetime) -> None:
    """The newest quality run per department, its mails and the receipts mailed since `since`."""
    with warehouse.connect(cfg, autocommit=True) as conn:
        exists = conn.execute("select to_regclass('ops.quality_runs') is not null").fetchone()[0]
        has_nc = (
            exists
            and conn.execute(
                "select exists (select from information_schema.columns where table_schema = 'ops' "
                "and table_name = 'quality_runs' and column_name = 'not_checked')"
            ).fetchone()[0]
        )
        run = (
            conn.execute(
                "select run_id, data_date, status, extract(epoch from finished_at - started_at), data_docs_dir, "
                + ("not_checked" if has_nc else "'[]'::jsonb")
                + " from ops.quality_runs order by started_at desc limit 1"
            ).fetchone()
            if exists
            else None
        )
        if run is None:
            say("  no quality run yet")
            return
        run_id, data_date, status, seconds, docs, not_checked = run
        rows = conn.execute(
            """
            select coalesce(d.dept_name, q.dept_code), count(*),
                   count(*) filter (where not q.success),
                   count(*) filter (where not q.success and q.severity = 'blocking'),
                   coalesce(sum(q.failed_count) filter (where q.level = 'row'), 0)
            from ops.quality_results as q
            left join raw.directory__departments as d using (dept_code)
            where q.run_id = %s
            group by 1 order by 3 desc, 1
            """,
            (run_id,),
        ).fetchall()
        has_mail = conn.execute("select to_regclass('ops.alert_messages') is not null").fetchone()[0]
        mails = (
            conn.execute(
                "select kind, count(*), min(transport), min(location) from ops.alert_messages "
                "where (run_id = %s or (kind = 'receipt' and sent_at >= %s)) and status = 'sent' "
                "group by kind order by kind",
                (run_id, since),
            ).fetchall()
            if has_mail
            else []
        )
        from market_access.alerts import state as alert_state

        awaiting = alert_state.undelivered(conn) if has_mail else []
    took = f"{seconds:.1f}s" if seconds is not None else "-"
    say(f"  run {run_id} as of {data_date}: {status} in {took}; Data Docs {docs}")
    if not_checked:
        say(f"  not checked ({len(not_checked)}):")
        for n in not_checked:
            say(f"    {n.get('relation') or '-'}: {n.get('reason_zh') or n.get('reason')}")
    # numbers first, the Chinese name last: CJK characters are two columns wide
    say(f"  {'rules':>6} {'failed':>7} {'blocking':>9} {'failing rows':>13}  department")
    for name, n, failed, blocking, failing_rows in rows:
        say(f"  {n:>6} {failed:>7} {blocking:>9} {failing_rows:>13}  {name}")
    if not mails:
        say("  mails: none")
    for kind, n, transport, location in mails:
        where = str(Path(location).parent) if transport == "eml" else location
        say(f"  mails ({kind}): {n} via {transport} → {where}")
    if awaiting:
        # transmitted but not surely accepted (uncertain) or refused (rejected): never resent blindly
        say(f"  ! {len(awaiting)} mail(s) uncertain or rejected, not sent again automatically — "
            "python -m market_access.alerts undelivered; then resolve MESSAGE_ID --delivered|--resend|--drop")  # fmt: skip
        for m in awaiting[:10]:
            say(f"    {m['status']:<9} {m['kind']:<8} {m['message_id']}  {m['smtp_reply'] or ''}")


def run_all(s: Settings) -> int:
    """`make run`: bring the stack up, run every DAG once through Airflow, print a summary."""
    from market_access.load.schema import bootstrap

    t_start = time.monotonic()
    started_at = datetime.now(UTC)
    say("市场准入效能评估数据平台 — make run")
    advance = s.sim_advance_days if (s.simulator_dir / "state.json").exists() else 0
    stack = bring_up(s, advance_days=advance)
    failed: list[str] = []
    timings: dict[str, float] = {}
    try:
        with warehouse.connect(stack.warehouse, autocommit=True) as conn:
            bootstrap(conn)
        before = last_batch_id(stack.warehouse)
        before_submission = last_submission_id(stack.warehouse)
        generate_demo_submissions(s)
        run_logs = s.log_dir / "run"
        say(f"• Airflow: metadata database in {s.airflow_home} …")
        t0 = time.monotonic()
        env = stack.env()
        if metadata_is_migrated(env):
            say(f"  ready: already migrated by this Airflow version ({s.airflow_home / MIGRATED_STAMP})")
        else:
            rc = airflow(stack, "db", "migrate", log_path=run_logs / "airflow-db-migrate.log")
            if rc != 0:
                say(f"  airflow db migrate failed (exit {rc}); see {run_logs / 'airflow-db-migrate.log'}")
                return 1
            record_migrated(env)
            say(f"  ready in {time.monotonic() - t0:.1f}s")
        say(f"▶ {', '.join(RUN_ORDER)} (airflow dags test, in one process; logs in {run_logs})")
        for dag_id, rc, seconds in run_dags(stack, RUN_ORDER, run_logs):
            timings[dag_id] = seconds
            status = "ok" if rc == 0 else f"FAILED (exit {rc})"
            say(f"  {dag_id}: {status} in {seconds:.1f}s (log {run_logs / (dag_id + '.log')})")
            if rc != 0:
                failed.append(dag_id)
            (s.local_dir / TIMINGS_FILE).write_text(json.dumps(timings, indent=1), encoding="utf-8")
    finally:
        stack.stop_simulators()

    say("")
    say("══ 同步结果 sync summary (this run) ══")
    print_sync_table(sync_summary(stack.warehouse, since_batch=before))
    say("")
    say("══ 部门报送 department submissions (this run) ══")
    print_submissions_table(submissions_summary(stack.warehouse, since_submission=before_submission))
    say("")
    say("══ 数据质量与告警 data quality and alerts (latest run) ══")
    print_quality_summary(stack.warehouse, started_at)
    say("")
    say(
        f"Time taken: {time.monotonic() - t_start:.1f}s ("
        + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
        + ")"
    )
    say("Where things are:")
    if stack.warehouse_embedded:
        say(f"  warehouse     embedded PostgreSQL, data in {s.pgdata}")
        say(f"                connect: python -m market_access psql   (URL {stack.warehouse.display()})")
        say("                stop it: make stop")
    else:
        say(f"  warehouse     {stack.warehouse.display()}")
    say("  warehouse     dbt (dbt_project/): schema staging, de-identified; analysts read schema marts only")
    say("  raw layer     schema raw, one table per resource; sync state in ops.sync_state,")
    say("                batches in ops.load_batches, unparseable records in ops.quarantine")
    say(f"  submissions   inbox {s.submissions_inbox} (one folder per dept_code; archive in _archive/);")
    say("                raw.submissions__<template>[_current]; files, receipts, rows in ops.submission_*")
    say("  quality       rules config/quality_rules.yml; results ops.quality_results, history in")
    say(f"                marts.mart_data_quality_scorecard; Data Docs {s.quality_data_docs_dir}")
    say(f"  mail          smtp_default if configured, else .eml files in {s.alert_mail_dir}")
    say(f"  airflow       AIRFLOW_HOME={s.airflow_home} (SQLite metadata); logs in {s.log_dir / 'run'}")
    if stack.simulated:
        say(
            f"  simulators    state in {s.simulator_dir}; the next make run advances their clock "
            f"{s.sim_advance_days} day(s)"
        )
    if failed:
        say(f"✗ failed: {', '.join(failed)}")
        return 1
    say("✓ all DAGs succeeded")
    return 0
