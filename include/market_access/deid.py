"""Keyed pseudonyms (HMAC-SHA256) for personal information: the key, its installation, the reference."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

KEY_ENV = "MARKET_ACCESS_HMAC_KEY"
KEY_ID_ENV = "MARKET_ACCESS_HMAC_KEY_ID"
AIRFLOW_VARIABLE = "market_access_hmac_key"
MIN_KEY_BYTES = 32
BLOCK = 64  # SHA-256 block size

# Built on the server's sha256(bytea): the embedded PostgreSQL has no pgcrypto. Only the padded
# keys are stored, in a table nobody but loader can read; the function runs as loader (SECURITY
# DEFINER) so the transformer can compute pseudonyms without ever seeing the key.
SCHEMA_SQL = """
create schema if not exists deid authorization loader;
revoke all on schema deid from public;
grant usage, create on schema deid to transformer;  -- dbt builds the name dictionary there

set role loader;

create table if not exists deid.hmac_keys (
    key_id          text primary key,
    inner_pad       bytea not null check (length(inner_pad) = 64),
    outer_pad       bytea not null check (length(outer_pad) = 64),
    is_active       boolean not null default false,
    installed_at    timestamptz not null default now()
);
create unique index if not exists hmac_keys_one_active on deid.hmac_keys (is_active) where is_active;
revoke all on deid.hmac_keys from public;
comment on table deid.hmac_keys is 'HMAC-SHA256 假名化密钥 (已填充的内外密钥, 仅 loader 可读); 当前使用 is_active 的一行';

-- plpgsql (its key lookup is a cached plan) and parallel safe, so that staging builds can
-- spread the hashing over parallel workers
create or replace function deid.pseudonym(value text) returns text
language plpgsql stable security definer parallel safe
set search_path = pg_catalog, deid
as $fn$
declare
    k record;
begin
    if value is null or value = '' then
        return null;
    end if;
    select key_id, inner_pad, outer_pad into k from deid.hmac_keys where is_active;
    if not found then
        return null;
    end if;
    return k.key_id || ':' || encode(
        sha256(k.outer_pad || sha256(k.inner_pad || convert_to(value, 'UTF8'))), 'hex');
end
$fn$;
comment on function deid.pseudonym(text) is '规范化后的个人标识 → "<key_id>:<HMAC-SHA256 hex>" (空值返回 null)';
revoke all on function deid.pseudonym(text) from public;
grant execute on function deid.pseudonym(text) to transformer;

reset role;
"""


class MissingKeyError(RuntimeError):
    """No pseudonym key is configured: retrying cannot help, an operator must set one."""


@dataclass(frozen=True, repr=False)
class HmacKey:
    """A secret key and its public id; repr never shows the key."""

    key: bytes
    key_id: str

    def __repr__(self) -> str:
        return f"HmacKey(key_id={self.key_id!r})"


def _padded(key: bytes) -> bytes:
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    return key.ljust(BLOCK, b"\x00")


def pads(key: bytes) -> tuple[bytes, bytes]:
    """(K' xor ipad, K' xor opad) as RFC 2104 defines them."""
    k = _padded(key)
    return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)


def pseudonym(value: str | None, key: bytes, key_id: str) -> str | None:
    """Reference implementation with the stdlib: what deid.pseudonym() in SQL must return."""
    if value is None or value == "":
        return None
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{key_id}:{digest}"


def key_id_for(key: bytes) -> str:
    return f"local-{hashlib.sha256(key).hexdigest()[:8]}"


def parse_key(text: str) -> bytes:
    """A hex string is taken as bytes; anything else as its UTF-8 encoding. Must carry ≥ 32 bytes."""
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) % 2 == 0 else text.encode()
    except ValueError:
        key = text.encode()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"the HMAC key must have at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`); got {len(key)}"
        )
    return key


def install_schema(conn: psycopg.Connection) -> None:
    """Create schema deid, the key table and deid.pseudonym(); idempotent (roles must exist)."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('market_access.deid'))")
        conn.execute(SCHEMA_SQL)


def install_key(conn: psycopg.Connection, key: bytes, key_id: str) -> bool:
    """Make key_id the active key (a new id rotates; the same id again changes nothing).

    Returns True when the active key changed. Rows computed earlier keep their key id.
    """
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the HMAC key must have at least {MIN_KEY_BYTES} bytes")
    install_schema(conn)
    inner, outer = pads(key)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('market_access.deid'))")
        conn.execute("set local role loader")
        row = conn.execute(
            "select inner_pad = %s and outer_pad = %s, is_active from deid.hmac_keys where key_id = %s",
            (inner, outer, key_id),
        ).fetchone()
        if row is not None and not row[0]:
            raise ValueError(
                f"key id {key_id!r} is already installed with a different key; choose a new key id"
            )
        if row is not None and row[1]:
            return False
        conn.execute("update deid.hmac_keys set is_active = false where is_active")
        conn.execute(
            """insert into deid.hmac_keys (key_id, inner_pad, outer_pad, is_active) values (%s, %s, %s, true)
               on conflict (key_id) do update set is_active = true""",
            (key_id, inner, outer),
        )
    log.info("HMAC key %s is now active", key_id)
    return True


def key_from_environment(
    settings=None, *, allow_local: bool | None = None, variable: str | None = None
) -> HmacKey:
    """The key: environment, else the Airflow Variable's text, else (embedded default only) a local file.

    MARKET_ACCESS_HMAC_KEY (+ MARKET_ACCESS_HMAC_KEY_ID, default derived from the key); `variable`,
    the value of the Variable market_access_hmac_key as the caller read it (inside Airflow:
    `market_access.orchestration.connections.hmac_key_variable()`; this module never asks Airflow);
    or <local_dir>/secrets/hmac.key generated once (mode 0600).
    """
    text = os.environ.get(KEY_ENV, "").strip()
    if text:
        key = parse_key(text)
        return HmacKey(key, os.environ.get(KEY_ID_ENV, "").strip() or key_id_for(key))
    text = (variable or "").strip()
    if text:
        key = parse_key(text)
        return HmacKey(key, os.environ.get(KEY_ID_ENV, "").strip() or key_id_for(key))
    if allow_local is None:
        allow_local = not os.environ.get("AIRFLOW_CONN_WAREHOUSE", "").strip()
    if not allow_local or settings is None:
        raise MissingKeyError(
            f"no HMAC key: set {KEY_ENV} (and {KEY_ID_ENV}) or the Airflow Variable {AIRFLOW_VARIABLE}; "
            "a local key is generated only for the embedded warehouse"
        )
    return local_key(settings.hmac_key_file)


def local_key(path: Path) -> HmacKey:
    """Read the key file, generating it once (0600) when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        log.info("generated a local HMAC key in %s", path)
    key = parse_key(path.read_text())
    return HmacKey(key, key_id_for(key))
