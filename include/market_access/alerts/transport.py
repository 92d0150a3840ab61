"""How messages leave: the `smtp_default` connection (Airflow's conventions), or .eml files in an outbox.

The connection is Airflow's `smtp_default`: given as `AIRFLOW_CONN_SMTP_DEFAULT` (URI or JSON), or,
inside an Airflow task, wherever Airflow keeps connections (read by the orchestration layer and
passed in as an SmtpConnection). Its fields follow the SMTP provider:
host, port, login, password; extra `from_email`, `disable_ssl` (default false: implicit TLS,
port 465), `disable_tls` (default false: STARTTLS when SSL is off, port 587), `timeout` (30 s),
`retry_limit` (connection attempts after the first, 5) and `ssl_context` (`default` or `none`).
No connection at all (the embedded default of `make run`) means the outbox: one .eml file per
message.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from email.policy import compat32
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

CONN_ID = "smtp_default"
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


class MailError(RuntimeError):
    """A message could not be handed over; the text names the connection, never its password.

    Raised for everything that happens before the server could have taken the message (connect,
    greeting, login, MAIL/RCPT/DATA refused, the connection lost while the message was still being
    sent) and for a 4xx reply to the message (the server did not take it, "try again later"): the
    message is not sent and is safe to send again.
    """


class MailUndelivered(MailError):
    """The message was transmitted to the end, and then the server did not accept it for sure.

    `status`: ``uncertain`` — no reply to the end of the message (the connection dropped or timed
    out after the terminating "."): the server may have queued it, so it must not be sent again
    blindly; ``rejected`` — a 5xx reply: the server refused it for good, sending the same bytes
    again would be refused again. `reply` is what the server said (or the error), `raw` the bytes.
    """

    def __init__(self, message: str, *, status: str, reply: str, raw: bytes, location: str) -> None:
        super().__init__(message)
        self.status, self.reply, self.raw, self.location = status, reply, raw, location


def env_var_for(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def _flag(extra: dict, name: str, conn_id: str) -> bool:
    """An extra's boolean; URI query values arrive as strings, and "false" must mean false."""
    value = extra.get(name, False)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"connection {conn_id!r}: extra {name}={value!r} is not true or false")


@dataclass(frozen=True)
class SmtpConnection:
    """The mail relay and how to talk to it; the password is never shown."""

    host: str
    port: int
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    from_email: str | None = None
    use_ssl: bool = True
    starttls: bool = True
    timeout: float = 30.0
    retry_limit: int = 5
    verify: bool = True
    conn_id: str = CONN_ID
    origin: str = ""  # where it came from, for messages: the variable or "Airflow connection"

    def display(self) -> str:
        """Safe to print: host, port, user and security, no password."""
        user = f"{self.login}@" if self.login else ""
        mode = "SSL" if self.use_ssl else ("STARTTLS" if self.starttls else "plain")
        return f"smtp://{user}{self.host}:{self.port} ({mode}; connection {self.conn_id!r}{self._origin()})"

    def _origin(self) -> str:
        return f" from {self.origin}" if self.origin else ""

    @classmethod
    def from_parts(
        cls,
        *,
        host: str | None,
        port: int | None,
        login: str | None,
        password: str | None,
        extra: dict | None,
        conn_id: str = CONN_ID,
        origin: str = "",
    ) -> SmtpConnection:
        extra = dict(extra or {})
        if not host:
            raise ValueError(f"connection {conn_id!r}{' (' + origin + ')' if origin else ''}: no host")
        use_ssl = not _flag(extra, "disable_ssl", conn_id)
        starttls = not use_ssl and not _flag(extra, "disable_tls", conn_id)
        context = str(extra.get("ssl_context") or "default").strip().lower()
        if context not in ("default", "none"):
            raise ValueError(
                f"connection {conn_id!r}: extra ssl_context must be 'default' or 'none', not {context!r}"
            )
        try:
            timeout = float(extra.get("timeout", 30))
            retry_limit = int(extra.get("retry_limit", 5))
        except (TypeError, ValueError):
            raise ValueError(
                f"connection {conn_id!r}: extra timeout and retry_limit must be numbers"
            ) from None
        return cls(
            host=host,
            port=int(port) if port else (465 if use_ssl else 587),
            login=login or None,
            password=password or None,
            from_email=(str(extra.get("from_email") or "").strip() or None),
            use_ssl=use_ssl,
            starttls=starttls,
            timeout=timeout,
            retry_limit=max(0, retry_limit),
            verify=context == "default",
            conn_id=conn_id,
            origin=origin,
        )

    @classmethod
    def parse(cls, value: str, *, conn_id: str = CONN_ID, origin: str = "") -> SmtpConnection:
        """Airflow's two environment forms: `smtp://user:pass@host:port?from_email=…` or JSON."""
        value = value.strip()
        if value.startswith("{"):
            try:
                d = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"connection {conn_id!r} ({origin}): not valid JSON ({exc.msg})") from None
            extra = d.get("extra") or {}
            if isinstance(extra, str):
                extra = json.loads(extra) if extra.strip() else {}
            return cls.from_parts(
                host=d.get("host"),
                port=d.get("port"),
                login=d.get("login"),
                password=d.get("password"),
                extra=extra,
                conn_id=conn_id,
                origin=origin,
            )
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("smtp", "smtps", "email"):
            raise ValueError(
                f"connection {conn_id!r} ({origin}): expected an smtp:// URI, not {parts.scheme}://…"
            )
        extra = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if "__extra__" in extra:
            extra = json.loads(extra["__extra__"])
        return cls.from_parts(
            host=unquote(parts.hostname) if parts.hostname else None,
            port=parts.port,
            login=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            extra=extra,
            conn_id=conn_id,
            origin=origin,
        )


class _FromEnvironment:
    """Marker: resolve the relay from the environment (see `resolve`)."""

    def __repr__(self) -> str:
        return "FROM_ENVIRONMENT"


FROM_ENVIRONMENT = _FromEnvironment()


def resolve(conn_id: str = CONN_ID) -> SmtpConnection | None:
    """The connection given in the environment (`AIRFLOW_CONN_SMTP_DEFAULT`), or None (the outbox).

    This module never asks Airflow: inside a task, `market_access.orchestration.connections.
    smtp_connection()` falls back on Airflow's own lookup (secrets backends, metadata database) and
    passes the result to `send_alerts` / `send_receipts` as `smtp=`.
    """
    var = env_var_for(conn_id)
    value = os.environ.get(var, "").strip()
    if value:
        return SmtpConnection.parse(value, conn_id=conn_id, origin=var)
    return None


# --- transports -------------------------------------------------------------------------------


class Transport:
    """Hands messages over; `where` says where they went, for the summary and ops.alert_messages."""

    name = ""
    where = ""
    from_email: str | None = None

    @contextmanager
    def session(self) -> Iterator[Transport]:
        yield self

    def deliver(self, msg: Message, recipients: Sequence[str], *, label: str) -> str:
        """Hand one message over; returns where it went. Raises MailError when it was not accepted.

        `label` names the message for people (the outbox uses it in the file name).
        """
        raise NotImplementedError

    def deliver_bytes(self, raw: bytes, recipients: Sequence[str], *, message_id: str, label: str) -> str:
        """The same for a message already flattened (CRLF line ends)."""
        raise NotImplementedError


class SmtpTransport(Transport):
    """One SMTP session per `session()`; a message counts as sent once the server has accepted it."""

    name = "smtp"

    def __init__(self, conn: SmtpConnection, *, retry_delay: float = 1.0) -> None:
        self.conn = conn
        self.where = conn.display()
        self.from_email = conn.from_email
        self.retry_delay = retry_delay
        self._client: smtplib.SMTP | None = None
        self._in_session = False

    def _fail(self, what: str, exc: BaseException) -> MailError:
        detail = f"{type(exc).__name__}: {exc}"
        if self.conn.password:
            detail = detail.replace(self.conn.password, "***")
        return MailError(
            f"邮件未发出 (mail not sent): {what} — SMTP server {self.conn.display()}: {detail}. "
            f"Check the connection ({env_var_for(self.conn.conn_id)} or the Airflow connection "
            f"{self.conn.conn_id!r}); nothing unsent was marked as mailed, the next run retries."
        )

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not self.conn.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _connect(self) -> smtplib.SMTP:
        c = self.conn
        last: BaseException | None = None
        for attempt in range(c.retry_limit + 1):
            if attempt:
                time.sleep(min(self.retry_delay * 2 ** (attempt - 1), 30.0))
            try:
                if c.use_ssl:
                    return smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=self._context())
                return smtplib.SMTP(c.host, c.port, timeout=c.timeout)
            except (OSError, smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected) as exc:
                last = exc
                log.warning(
                    "SMTP %s: connection attempt %d of %d failed: %s",
                    c.display(),
                    attempt + 1,
                    c.retry_limit + 1,
                    exc,
                )
        assert last is not None
        raise self._fail(f"could not connect after {c.retry_limit + 1} attempt(s)", last)

    def _open(self) -> smtplib.SMTP:
        """Connect, greet, STARTTLS and log in."""
        client = self._connect()
        try:
            try:
                client.ehlo()
                if self.conn.starttls:
                    client.starttls(context=self._context())
                    client.ehlo()
            except smtplib.SMTPNotSupportedError as exc:
                raise self._fail(
                    "the server offers no STARTTLS (set extra disable_tls=true for a relay without TLS)", exc
                ) from None
            except (OSError, smtplib.SMTPException) as exc:
                raise self._fail("greeting or STARTTLS failed", exc) from None
            if self.conn.login and self.conn.password:
                try:
                    client.login(self.conn.login, self.conn.password)
                except (OSError, smtplib.SMTPException) as exc:
                    raise self._fail(f"login as {self.conn.login!r} failed", exc) from None
        except BaseException:
            client.close()
            raise
        return client

    @contextmanager
    def session(self) -> Iterator[SmtpTransport]:
        self._client = self._open()
        self._in_session = True
        try:
            yield self
        finally:
            client, self._client, self._in_session = self._client, None, False
            if client is not None:
                try:
                    client.quit()
                except (OSError, smtplib.SMTPException):
                    client.close()

    def deliver(self, msg: Message, recipients: Sequence[str], *, label: str) -> str:
        """One SMTP transaction, phase by phase, so that a failure says whether the server may
        have the message: before the end of DATA was sent → MailError (not sent, safe to retry);
        4xx reply to the message → MailError (the server did not take it); no reply to it →
        MailUndelivered uncertain; 5xx reply to it → MailUndelivered rejected."""
        if not getattr(self, "_in_session", False):
            raise RuntimeError("SmtpTransport.deliver outside session()")
        return self.deliver_bytes(flatten(msg), recipients, message_id=str(msg["Message-ID"]), label=label)

    def deliver_bytes(self, raw: bytes, recipients: Sequence[str], *, message_id: str, label: str) -> str:
        """`deliver` for a message as recorded (an operator's resend: the very bytes)."""
        if not getattr(self, "_in_session", False):
            raise RuntimeError("SmtpTransport.deliver outside session()")
        if self._client is None or self._client.sock is None:
            self._client = self._open()  # the last message's session was lost: a new one
        client = self._client
        where = f"smtp://{self.conn.host}:{self.conn.port}"
        what = f"message {message_id} to {', '.join(recipients)}"
        try:
            client.ehlo_or_helo_if_needed()
            options = [f"size={len(raw)}"] if client.does_esmtp and client.has_extn("size") else []
            code, reply = client.mail(self.from_email or "", options)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, self.from_email or "")
            refused = {}
            for rcpt in recipients:
                code, reply = client.rcpt(rcpt)
                if code not in (250, 251):
                    refused[rcpt] = (code, reply)
            if len(refused) == len(recipients):
                raise smtplib.SMTPRecipientsRefused(refused)
            client.putcmd("data")
            code, reply = client.getreply()
            if code != 354:
                raise smtplib.SMTPDataError(code, reply)
            body = smtplib._quote_periods(raw)
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            client.send(body + b".\r\n")  # raises before the terminator is out: not sent
        except (OSError, smtplib.SMTPException) as exc:
            self._reset(client)
            raise self._fail(f"{what} was not accepted", exc) from None
        try:
            code, reply = client.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            client.close()
            raise MailUndelivered(
                f"邮件投递结果不确定 (delivery uncertain): {what} was transmitted in full, then the SMTP "
                f"server {self.conn.display()} gave no reply ({type(exc).__name__}: {exc}). It may have "
                "been queued: recorded as uncertain, not sent again automatically.",
                status="uncertain",
                reply=f"no reply after the end of the message: {type(exc).__name__}: {exc}"[:500],
                raw=raw,
                location=where,
            ) from None
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        if 500 <= code < 600:
            self._reset(client)
            raise MailUndelivered(
                f"邮件被拒收 (message rejected): {what}: the SMTP server {self.conn.display()} replied "
                f"{code} {text} to the message. Recorded as rejected, not sent again automatically.",
                status="rejected",
                reply=f"{code} {text}"[:500],
                raw=raw,
                location=where,
            )
        if code != 250:  # 4xx: the server says it did not take the message
            self._reset(client)
            raise self._fail(f"{what} was not accepted", smtplib.SMTPDataError(code, reply))
        if refused:
            # accepted for the others: it is sent; the refused addresses are for the operator to fix
            log.warning("SMTP %s refused some recipients of %s: %s", self.conn.host, message_id, refused)
        return where

    @staticmethod
    def _reset(client: smtplib.SMTP) -> None:
        try:
            client.rset()
        except (OSError, smtplib.SMTPException):
            client.close()


def flatten(msg: Message) -> bytes:
    """The message as it goes on the wire (CRLF line ends), as smtplib's send_message writes it."""
    import io
    from email.generator import BytesGenerator

    with io.BytesIO() as out:
        BytesGenerator(out).flatten(msg, linesep="\r\n")
        return out.getvalue()


class OutboxTransport(Transport):
    """No relay configured: every message becomes one .eml file (RFC 5322, CRLF) in a folder."""

    name = "eml"

    def __init__(self, folder: Path, from_email: str) -> None:
        self.folder = Path(folder)
        self.where = str(self.folder)
        self.from_email = from_email

    def deliver(self, msg: Message, recipients: Sequence[str], *, label: str) -> str:
        return self.deliver_bytes(
            msg.as_bytes(policy=compat32.clone(linesep="\r\n")), recipients, message_id="", label=label
        )

    def deliver_bytes(self, raw: bytes, recipients: Sequence[str], *, message_id: str, label: str) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{label}_{uuid.uuid4().hex[:8]}.eml"
        tmp = target.with_name("." + target.name + ".tmp")
        try:
            tmp.write_bytes(raw)
            os.replace(tmp, target)  # a reader never sees half a file
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise MailError(f"邮件未写入 (message not written) to the outbox {self.folder}: {exc}") from None
        return str(target)


def transport_for(conn: SmtpConnection | None, outbox: Path, default_from: str) -> Transport:
    return SmtpTransport(conn) if conn is not None else OutboxTransport(outbox, default_from)


def local_domain(address: str | None) -> str:
    """Domain part for Message-IDs."""
    if address and "@" in address:
        return address.rsplit("@", 1)[1]
    return socket.getfqdn() or "localhost"
