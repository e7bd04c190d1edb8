"""The digest as an RFC 5322 message: multipart/alternative, text first, then HTML.

Headers hold text from feeds (the top item's title goes into the Subject), so every header
value is cleaned first: control characters and line breaks become spaces, and "=?" loses its
meaning. The latter matters: Python's email package decodes RFC 2047 encoded words in values it
is given, so a title holding "=?utf-8?q?=0D=0ABcc:...?=" would otherwise become a new header.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from urllib.parse import quote

from digest.render import DigestView
from digest.settings import Config, UserConfig
from digest.values import mailbox

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
DEFAULT_SENDER = "digest@localhost"


def clean_header(text: str) -> str:
    return " ".join(_CONTROL.sub(" ", text).replace("=?", "= ?").split())


def sender(config: Config) -> Address:
    """The From address: [smtp] from ('Name <addr>' or a bare address), else a local
    placeholder for outbox-only setups; named after the digest when it names no one. An
    Address, so the email package quotes the name: a title "Papers, daily" stays one
    address, where string formatting would make two."""
    name, addr = mailbox(clean_header(config.smtp.sender if config.smtp and config.smtp.sender
                                      else DEFAULT_SENDER))
    return Address(display_name=name or clean_header(config.digest.title), addr_spec=addr)


class _Policy(EmailPolicy):
    """policy.SMTP, except that List-Unsubscribe is folded between its URIs and never
    RFC 2047-encoded: the email package encodes a long URI it cannot fold, and an encoded word
    is no URI to a mail client (RFC 2369 wants them verbatim in angle brackets)."""

    def fold(self, name: str, value: str) -> str:
        if name.lower() == "list-unsubscribe":
            return f"{name}: " + f",{self.linesep} ".join(_uris(str(value))) + self.linesep
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() == "list-unsubscribe":
            return self.fold(name, value).encode("ascii")
        return super().fold_binary(name, value)


POLICY = _Policy(linesep="\r\n")  # policy.SMTP is EmailPolicy(linesep="\r\n")


def _uris(value: str) -> list[str]:
    return [f"<{u}>" for u in re.findall(r"<([^<>\s]+)>", value)]


def quote_phrase(text: str) -> str:
    """An RFC 5322 phrase: as it is when it is all atoms, else one quoted string. Non-ASCII
    text is RFC 2047-encoded by the email package, which an encoded word inside quotes would
    break, so there the specials become spaces instead."""
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\- ]+", text):
        return text
    if not text.isascii():
        return " ".join(re.sub(r'[()<>\[\]:;@\\,."]', " ", text).split())
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unsubscribe_header(https_or_http: str, mailto: str, reader: str) -> str:
    """RFC 2369 List-Unsubscribe: the web link, and a mailto form when configured."""
    uris = [f"<{https_or_http}>"] if https_or_http else []
    if mailto:
        uris.append(f"<mailto:{mailto}?subject={quote('unsubscribe ' + reader)}>")
    return ", ".join(uris)


def message_id(user: UserConfig, day: str, domain: str) -> str:
    """Deterministic per (reader, local date): a resend of the same digest is recognizably the
    same message, and a duplicate is dropped by servers and clients that dedupe on it."""
    token = hashlib.sha256(f"{user.name}\x1f{user.email}\x1f{day}".encode()).hexdigest()[:24]
    return f"<{day}.{token}@{domain}>"


def build_message(config: Config, user: UserConfig, view: DigestView, html: str, text: str,
                  now: datetime) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    from_ = sender(config)
    domain = from_.domain or "localhost"
    msg["Subject"] = clean_header(view.subject)
    msg["From"] = from_
    msg["To"] = Address(display_name=clean_header(user.display_name), addr_spec=clean_header(user.email))
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(user, view.date, domain)
    # RFC 2919: the phrase is a quoted string when it holds specials (a comma, a dot...).
    msg["List-Id"] = f"{quote_phrase(clean_header(config.digest.title))} <digest.{domain}>"
    mailto = config.smtp.unsubscribe_mailto if config.smtp else ""
    if view.unsubscribe_url or mailto:
        msg["List-Unsubscribe"] = unsubscribe_header(view.unsubscribe_url, mailto, user.name)
    if view.unsubscribe_url.startswith("https://"):
        # RFC 8058 one-click: mail clients POST "List-Unsubscribe=One-Click" to the https URI.
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg
