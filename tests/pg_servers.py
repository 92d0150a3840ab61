"""PostgreSQL servers other than the embedded one, for running the warehouse tests on every supported
major version: a throw-away cluster from a distribution's binaries (Debian's `postgresql-15` in
/usr/lib/postgresql/15/bin), set up the way an operator's server is.

- the superuser `postgres` is reachable only over the Unix socket in the cluster's folder (trust),
  as a DBA's own access would be;
- the platform's login `etl_user` is **not** a superuser: it logs in over TCP on 127.0.0.1 with a
  password (scram-sha-256) and may create databases; the DBA has created the group roles `loader`,
  `transformer` and `analyst` and granted them to it (README "Roles"; `analyst` so that tests can act
  as an analyst with SET ROLE).

As root (CI), initdb and postgres run as the unprivileged user `postgres` (created by Debian's
postgresql-common; `pgtest` is created when it is missing).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from market_access import warehouse

PG15_BIN = Path("/usr/lib/postgresql/15/bin")
PLATFORM_USER = "etl_user"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _os_user() -> str | None:
    """The unprivileged user the server runs as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgtest"):
        if subprocess.run(["id", "-u", name], capture_output=True).returncode == 0:
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "pgtest"], check=True
    )
    return "pgtest"


def _run(cmd: list[str], user: str | None) -> None:
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr or out.stdout}")


@dataclass
class Cluster:
    bindir: Path
    base: Path
    port: int
    user: str | None
    password: str

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def admin(self) -> warehouse.WarehouseConfig:
        """The superuser over the Unix socket (the DBA's access)."""
        return warehouse.WarehouseConfig(
            host=str(self.base), port=self.port, dbname="postgres", user="postgres"
        )

    @property
    def platform(self) -> warehouse.WarehouseConfig:
        """The platform's login over TCP with its password: what AIRFLOW_CONN_WAREHOUSE would hold."""
        return warehouse.WarehouseConfig(
            host="127.0.0.1", port=self.port, dbname="postgres", user=PLATFORM_USER, password=self.password
        )

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            try:
                _run(
                    [str(self.bindir / "pg_ctl"), "-w", "-D", str(self.datadir), "stop", "-m", "fast"],
                    self.user,
                )
            except RuntimeError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)


def start_cluster(bindir: Path = PG15_BIN) -> Cluster:
    """initdb a new cluster in a temp folder, start it on a free loopback port, create the platform user."""
    if not (bindir / "postgres").exists():
        raise FileNotFoundError(
            f"no PostgreSQL server in {bindir}: install it (`make system-deps`, i.e. apt-get install postgresql-15)"
        )
    user = _os_user()
    base = Path(tempfile.mkdtemp(prefix="market-access-pg-"))
    if user:
        shutil.chown(base, user)
    cluster = Cluster(
        bindir=bindir, base=base, port=_free_port(), user=user, password=secrets.token_urlsafe(16)
    )
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(cluster.datadir),
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
            user,
        )
        # the embedded server's sizing (warehouse.EMBEDDED_SETTINGS), so that timings compare
        settings = {
            **warehouse.EMBEDDED_SETTINGS,
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(base),
            "port": str(cluster.port),
        }
        opts = " ".join(f"-c {k}={v}" for k, v in settings.items())
        _run(
            [
                str(bindir / "pg_ctl"),
                "-w",
                "-t",
                "60",
                "-D",
                str(cluster.datadir),
                "-l",
                str(base / "server.log"),
                "-o",
                opts,
                "start",
            ],
            user,
        )
        with warehouse.connect(cluster.admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("create role {} login createdb password {}").format(
                    sql.Identifier(PLATFORM_USER), sql.Literal(cluster.password)
                )
            )
            for role in ("loader", "transformer", "analyst"):
                conn.execute(f"create role {role} nologin")
                conn.execute(f"grant {role} to {PLATFORM_USER}")
    except BaseException:
        cluster.stop()
        raise
    return cluster


# --- a stand-in for an older server ------------------------------------------------------------------
class VersionStandIn:
    """A TCP server on 127.0.0.1 that speaks the PostgreSQL v3 protocol's start-up as a real server of
    `version` does: it refuses SSL/GSS encryption ('N'), trusts the user (AuthenticationOk), reports
    the usual ParameterStatus values (server_version first), BackendKeyData and ReadyForQuery. A
    simple query asking for the version is answered as the real server would; any other query gets
    an ErrorResponse (it has no data). Use as a context manager; `port` is where it listens.
    """

    def __init__(self, version: str = "14.11"):
        import socketserver
        import struct
        import threading

        self.version = version
        self.queries: list[str] = []
        major, minor = (int(x) for x in version.split(".")[:2])
        version_num = str(major * 10000 + minor)
        params = {
            "server_version": version,
            "server_encoding": "UTF8",
            "client_encoding": "UTF8",
            "DateStyle": "ISO, MDY",
            "integer_datetimes": "on",
            "IntervalStyle": "postgres",
            "is_superuser": "off",
            "standard_conforming_strings": "on",
            "TimeZone": "Etc/UTC",
            "application_name": "",
        }
        full = (
            f"PostgreSQL {version} on x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit"
        )
        outer = self

        def msg(kind: bytes, body: bytes) -> bytes:
            return kind + struct.pack("!i", len(body) + 4) + body

        def cstr(s: str) -> bytes:
            return s.encode() + b"\0"

        def answer(query: str) -> tuple[str, str] | None:
            """(column, value) of a version query, None for anything else."""
            outer.queries.append(query)
            q = query.lower()
            if "server_version_num" in q:
                return "server_version_num", version_num
            if "server_version" in q:
                return "server_version", version
            if "version()" in q:
                return "version", full
            return None

        def described(column: str) -> bytes:
            return msg(
                b"T", struct.pack("!h", 1) + cstr(column) + struct.pack("!ihihih", 0, 0, 25, -1, -1, 0)
            )

        def data(value: str) -> bytes:
            v = value.encode()
            return msg(b"D", struct.pack("!hi", 1, len(v)) + v) + msg(b"C", cstr("SELECT 1"))

        no_data = msg(b"E", b"SERROR\0VERROR\0C0A000\0Mthe version stand-in holds no data\0\0")

        class Handler(socketserver.BaseRequestHandler):
            def recv_exact(self, n: int) -> bytes:
                buf = b""
                while len(buf) < n:
                    chunk = self.request.recv(n - len(buf))
                    if not chunk:
                        raise ConnectionError("client went away")
                    buf += chunk
                return buf

            def handle(self):
                try:
                    while True:  # SSLRequest / GSSENCRequest come before the StartupMessage
                        length, code = struct.unpack("!ii", self.recv_exact(8))
                        rest = self.recv_exact(length - 8)
                        if code in (80877103, 80877104):
                            self.request.sendall(b"N")
                            continue
                        if code == 80877102:  # CancelRequest
                            return
                        break
                    startup = dict(zip(*[iter(rest.split(b"\0")[:-2])] * 2, strict=False))
                    user = startup.get(b"user", b"").decode()
                    out = msg(b"R", struct.pack("!i", 0))
                    for k, v in {**params, "session_authorization": user}.items():
                        out += msg(b"S", cstr(k) + cstr(v))
                    out += msg(b"K", struct.pack("!ii", 4242, 271828)) + msg(b"Z", b"I")
                    self.request.sendall(out)
                    found, failed, status = None, False, b"I"
                    while True:
                        kind = self.recv_exact(1)
                        (length,) = struct.unpack("!i", self.recv_exact(4))
                        body = self.recv_exact(length - 4)
                        if kind == b"X":
                            return
                        if kind == b"Q":  # simple query
                            query = body.rstrip(b"\0").decode().strip().rstrip(";").lower()
                            if query in ("begin", "commit", "rollback"):  # psycopg's own, outside autocommit
                                status = b"T" if query == "begin" else b"I"
                                reply = msg(b"C", cstr(query.upper()))
                            else:
                                found = answer(query)
                                reply = described(found[0]) + data(found[1]) if found else no_data
                                status = status if found else (b"E" if status == b"T" else b"I")
                            self.request.sendall(reply + msg(b"Z", status))
                        elif kind == b"P":  # extended query: Parse, Bind, Describe, Execute, Sync
                            found = answer(body.split(b"\0")[1].decode())
                            self.request.sendall(msg(b"1", b"") if found else no_data)
                            failed = found is None
                            if failed and status == b"T":
                                status = b"E"
                        elif kind == b"B" and not failed:
                            self.request.sendall(msg(b"2", b""))
                        elif kind == b"D" and not failed:
                            self.request.sendall(described(found[0]))
                        elif kind == b"E" and not failed:
                            self.request.sendall(data(found[1]))
                        elif kind == b"S":
                            self.request.sendall(msg(b"Z", status))
                            failed = False
                except (ConnectionError, OSError):
                    return

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def config(self, user: str = PLATFORM_USER) -> warehouse.WarehouseConfig:
        return warehouse.WarehouseConfig(host="127.0.0.1", port=self.port, dbname="warehouse", user=user)

    def __enter__(self) -> VersionStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
