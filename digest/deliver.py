"""Where finished messages go: an SMTP server, or an outbox folder of .eml files.

Backends only move bytes and classify failures: temporary (a 4xx reply, a dropped
connection; worth retrying) or permanent (a 5xx reply; retrying cannot help). The ledger logic
that makes a digest go out once lives in send.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

from digest.config import SmtpSettings
from digest.errors import DigestError


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

    def send(self, out: Outgoing) -> None:
        target = self.path(out.reader, out.day)
        tmp = target.with_suffix(".eml.part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(out.data)
            os.replace(tmp, target)
        except OSError as e:
            raise DeliveryError(f"cannot write {target} ({e.strerror}); check that the outbox "
                                "folder is writable.") from None

    def delivered(self, reader: str, day: str) -> bool:
        return self.path(reader, day).is_file()

    def close(self) -> None:
        pass


class Smtp:
    """One connection reused for a batch; reconnects when the server drops it. Every command
    has `timeout` seconds."""

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

    def send(self, out: Outgoing) -> None:
        to = f"{out.reader} <{out.recipient}>"
        for attempt in (1, 2):  # a reused connection may have been dropped: reconnect once
            if self.conn is None:
                self.conn = self._connect()
            try:
                refused = self.conn.sendmail(out.sender, [out.recipient], out.data)
            except smtplib.SMTPRecipientsRefused as e:
                self._reset()
                code, text = next(iter(e.recipients.values()))
                raise _reply_error(code, text, to) from None
            except smtplib.SMTPResponseException as e:
                self._reset()
                raise _reply_error(e.smtp_code, e.smtp_error, to) from None
            except (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError) as e:
                self.close()
                if attempt == 2:
                    raise DeliveryError(f"the SMTP server {self.s.host} dropped the connection "
                                        f"({e or 'disconnected'}).") from None
                continue
            if refused:
                code, text = next(iter(refused.values()))
                raise _reply_error(code, text, to)
            return

    def _reset(self) -> None:
        try:
            if self.conn is not None:
                self.conn.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.conn.quit()
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
