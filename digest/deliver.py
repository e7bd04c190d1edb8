"""Where finished messages go: an SMTP server, or an outbox folder of .eml files.

Backends only move bytes and classify failures: temporary (a 4xx reply, a connection that
broke before the message went out; worth retrying), permanent (a 5xx reply; retrying cannot
help) or Unconfirmed (the connection broke after the whole message went out: the server may have
it, so it must not be sent again). The ledger logic that makes a digest go out once lives in
send.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

from digest.errors import DigestError
from digest.settings import SmtpSettings


@dataclass
class Outgoing:
    """One message, serialized once (a retry resends the same bytes), with its envelope."""

    reader: str
    day: str
    sender: str  # envelope MAIL FROM
    recipient: str  # envelope RCPT TO
    data: bytes

    @classmethod
    def of(cls, msg: EmailMessage, reader: str, day: str) -> Outgoing:
        return cls(reader, day, parseaddr(msg["From"])[1], parseaddr(msg["To"])[1], bytes(msg))


class DeliveryError(DigestError):
    """A message was not delivered. `permanent`: the server refused it for good (5xx)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent

    def __reduce__(self):
        return type(self), (str(self), self.permanent)


class Unconfirmed(DeliveryError):
    """The message went out whole and the server's answer never came: it may have been
    delivered. Never retried."""


class Aborted(DeliveryError):
    """Not sent: the run lost its hold on the digest (ledger.py) before handing it over."""


_BROKEN = (smtplib.SMTPServerDisconnected, OSError)  # OSError: resets, timeouts, refusals
_DOT = re.compile(rb"(?m)^\.")


def _broke(e: Exception) -> str:
    text = str(e)
    if isinstance(e, TimeoutError) or "timed out" in text:
        return "did not answer in time"
    return f"closed the connection ({text or 'disconnected'})"


class Outbox:
    """Writes each message to DIR/<local date>/<reader>.eml. The file appears whole or not at
    all (written aside, then renamed), so a crash never leaves half a message."""

    name = "outbox"

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, reader: str, day: str) -> Path:
        # Reader names are TOML keys and may hold any character: keep them inside the folder.
        safe = re.sub(r"[^\w.-]", "_", reader).lstrip(".") or "_"
        return self.folder / day / f"{safe}.eml"

    def send(self, out: Outgoing, commit: Callable[[], bool] = lambda: True) -> None:
        if not commit():  # the ledger's 'sending' (see Smtp.send)
            raise Aborted(f"the digest of {out.reader} for {out.day} is held by another run "
                          "now; not written.")
        target = self.path(out.reader, out.day)
        tmp = target.with_suffix(".eml.part")
        try:
            for folder in (self.folder, target.parent):  # the operator's alone: 0700, 0600
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(out.data)
            os.replace(tmp, target)
        except OSError as e:
            raise DeliveryError(f"cannot write {target} ({e.strerror}); check that the outbox "
                                "folder is writable.") from None

    def delivered(self, reader: str, day: str) -> bool:
        return self.path(reader, day).is_file()

    def close(self) -> None:
        pass


class Smtp:
    """One connection reused for a batch; reconnects once when an idle connection went stale.
    Every command has `timeout` seconds."""

    name = "smtp"

    def __init__(self, settings: SmtpSettings, password: str = ""):
        self.s = settings
        self.password = password
        self.conn: smtplib.SMTP | None = None
        self.connections = 0  # opened so far (the benchmark and tests read it)

    def _connect(self) -> smtplib.SMTP:
        s = self.s
        context = ssl.create_default_context()
        try:
            if s.security == "ssl":
                conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    conn.starttls(context=context)
            if s.username:
                conn.login(s.username, self.password)
        except smtplib.SMTPAuthenticationError as e:
            raise DeliveryError(f"the SMTP server {s.host} refused the login for {s.username!r} "
                                f"({e.smtp_code}); check the username and the password in "
                                f"${s.password_env}.", permanent=True) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError(f"the SMTP server {s.host}:{s.port} does not offer STARTTLS; "
                                "set [smtp] security to \"ssl\" (port 465) or, on a trusted "
                                "network only, \"none\".", permanent=True) from None
        except (OSError, smtplib.SMTPException) as e:
            raise DeliveryError(f"cannot connect to the SMTP server {s.host}:{s.port} ({e}); "
                                "check [smtp] host, port and security.") from None
        self.connections += 1
        return conn

    def send(self, out: Outgoing, commit: Callable[[], bool] = lambda: True) -> None:
        """Hand one message over. Before its bytes go out, every failure is safe to retry (a
        reused connection that went stale is reconnected once here); after, a broken
        connection raises Unconfirmed, never a retry: the server may have stored it.
        `commit()` runs once the server took the recipient, just before DATA: the ledger's
        'sending'. When it answers False (this run lost its hold), nothing is sent."""
        to = f"{out.reader} <{out.recipient}>"
        for attempt in (1, 2):
            reused = self.conn is not None
            if not reused:
                self.conn = self._connect()
            try:
                self._envelope(out, to)
                break
            except _BROKEN as e:
                self._drop()
                if reused and attempt == 1:
                    continue  # the server closed an idle connection: nothing was sent yet
                raise DeliveryError(f"the SMTP server {self.s.host} {_broke(e)} before the "
                                    "message was sent; it is retried.") from None
        if not commit():
            self._reset()
            raise Aborted(f"the digest for {to} is held by another run now; not sent.")
        self._data(out, to)

    def _envelope(self, out: Outgoing, to: str) -> None:
        conn = self.conn
        assert conn is not None
        try:
            conn.ehlo_or_helo_if_needed()
        except smtplib.SMTPHeloError as e:
            self._drop()
            raise _reply_error(e.smtp_code, e.smtp_error, to) from None
        # RFC 6152: 8-bit bytes need BODY=8BITMIME. Digests are 7-bit (quoted-printable), and
        # declaring it anyway cost 8 % of the send rate against aiosmtpd.
        eight_bit = not out.data.isascii() and conn.has_extn("8bitmime")
        for code, text in (conn.mail(out.sender, ["BODY=8BITMIME"] if eight_bit else []),
                           conn.rcpt(out.recipient)):
            if code not in (250, 251):
                self._reset()
                raise _reply_error(code, text, to)

    def _data(self, out: Outgoing, to: str) -> None:
        conn = self.conn
        assert conn is not None
        try:
            code, text = conn.docmd("DATA")
        except _BROKEN as e:
            self._drop()
            raise DeliveryError(f"the SMTP server {self.s.host} {_broke(e)} before the "
                                "message was sent; it is retried.") from None
        if code != 354:
            self._reset()
            raise _reply_error(code, text, to)
        # RFC 5321 4.5.2 dot-stuffing. The regex costs 0.4 ms on 50 kB; a scan that finds no
        # line starting with "." (the usual digest) costs a fraction of that.
        data = out.data
        if data.startswith(b".") or b"\n." in data:
            data = _DOT.sub(b"..", data)
        data += (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n"
        try:
            conn.send(data)  # sendall: if it fails, the final "." never left, so no delivery
        except _BROKEN as e:
            self._drop()  # without the final ".", the server discards what it got
            raise DeliveryError(f"the SMTP server {self.s.host} {_broke(e)} while the message "
                                "was being sent, before its end; it is retried.") from None
        try:
            code, text = conn.getreply()
        except _BROKEN as e:
            self._drop()
            raise Unconfirmed(f"the SMTP server {self.s.host} {_broke(e)} after the whole "
                              f"message to {to} was sent, so it may have been delivered; it is "
                              "not sent again by itself.") from None
        if code != 250:
            raise _reply_error(code, text, to)

    def _reset(self) -> None:
        try:
            if self.conn is not None:
                self.conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def close(self) -> None:
        """The end of a batch: QUIT politely."""
        if self.conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.conn.quit()
            self.conn = None

    def _drop(self) -> None:
        """A broken connection: close it without QUIT, which would wait out another timeout
        for an answer that is not coming."""
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
            self.conn = None


def _reply_error(code: int, text: bytes | str, to: str) -> DeliveryError:
    reply = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    reply = " ".join(reply.split())[:200]
    if 500 <= code < 600:
        return DeliveryError(f"the SMTP server refused the digest for {to} for good ({code} "
                             f"{reply}); fix the reader's address, then send again.", permanent=True)
    return DeliveryError(f"the SMTP server deferred the digest for {to} ({code} {reply}); "
                         "it is retried.")


def backend_for(config) -> Outbox | Smtp:
    """[smtp] when configured (password from the environment variable it names), else the
    outbox folder."""
    if config.smtp is None:
        return Outbox(config.digest.outbox)
    password = os.environ.get(config.smtp.password_env, "") if config.smtp.password_env else ""
    if config.smtp.username and not password:
        raise DeliveryError(f"${config.smtp.password_env} is empty; export the SMTP password in "
                            "it before sending.", permanent=True)
    return Smtp(config.smtp, password)
