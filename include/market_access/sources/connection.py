"""Where a source system is and how to log in: parsed from Airflow's connection URI form."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class SourceConnection:
    """One source system's endpoint and OAuth client credentials (contract §7)."""

    system: str
    base_url: str  # scheme://host:port + base_path, no trailing slash
    client_id: str
    client_secret: str = field(repr=False)  # never printed, never logged
    verify: bool = True

    def __repr__(self) -> str:  # the dataclass repr would be fine too; be explicit about the secret
        return f"SourceConnection(system={self.system!r}, base_url={self.base_url!r}, client_id={self.client_id!r})"

    @classmethod
    def from_parts(
        cls,
        system: str,
        *,
        scheme: str | None,
        host: str | None,
        port: int | None,
        login: str | None,
        password: str | None,
        extra: dict | None,
    ) -> SourceConnection:
        scheme = (scheme or "http").lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"connection {system!r}: scheme must be http or https, not {scheme!r}")
        if not host:
            raise ValueError(f"connection {system!r}: no host")
        if not login or not password:
            raise ValueError(f"connection {system!r}: the OAuth client id and secret go in login and password")
        extra = extra or {}
        base_path = str(extra.get("base_path") or "").strip()
        if base_path and not base_path.startswith("/"):
            base_path = "/" + base_path
        verify = str(extra.get("verify", "true")).strip().lower() not in ("false", "0", "no")
        netloc = f"{host}:{port}" if port else host
        return cls(
            system=system,
            base_url=f"{scheme}://{netloc}{base_path.rstrip('/')}",
            client_id=login,
            client_secret=password,
            verify=verify,
        )

    @classmethod
    def from_uri(cls, system: str, uri: str) -> SourceConnection:
        """Parse `http://<client_id>:<client_secret>@host:port?base_path=%2Fgateway&verify=true`."""
        parts = urlsplit(uri)
        extra = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return cls.from_parts(
            system,
            scheme=parts.scheme,
            host=parts.hostname,
            port=parts.port,
            login=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            extra=extra,
        )


def env_var_for(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def from_environment(system: str, conn_id: str | None = None) -> SourceConnection | None:
    """The connection given as AIRFLOW_CONN_<ID>, or None when the variable is not set."""
    uri = os.environ.get(env_var_for(conn_id or system), "").strip()
    return SourceConnection.from_uri(system, uri) if uri else None
