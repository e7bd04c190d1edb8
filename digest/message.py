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
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from digest.config import Config, UserConfig
from digest.render import DigestView

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
DEFAULT_SENDER = "digest@localhost"


def clean_header(text: str) -> str:
    return " ".join(_CONTROL.sub(" ", text).replace("=?", "= ?").split())


def sender(config: Config) -> str:
    """The From address: [smtp] from, else a local placeholder for outbox-only setups."""
    if config.smtp and config.smtp.sender:
        return config.smtp.sender
    return f"{clean_header(config.digest.title)} <{DEFAULT_SENDER}>"


def message_id(user: UserConfig, day: str, domain: str) -> str:
    """Deterministic per (reader, local date): a resend of the same digest is recognizably the
    same message, and a duplicate is dropped by servers and clients that dedupe on it."""
    token = hashlib.sha256(f"{user.name}\x1f{user.email}\x1f{day}".encode()).hexdigest()[:24]
    return f"<{day}.{token}@{domain}>"


def build_message(config: Config, user: UserConfig, view: DigestView, html: str, text: str,
                  now: datetime) -> EmailMessage:
    msg = EmailMessage(policy=policy.SMTP)
    from_ = sender(config)
    domain = parseaddr(from_)[1].rpartition("@")[2] or "localhost"
    msg["Subject"] = clean_header(view.subject)
    msg["From"] = clean_header(from_)
    msg["To"] = Address(display_name=clean_header(user.display_name), addr_spec=clean_header(user.email))
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(user, view.date, domain)
    msg["List-Id"] = f"{clean_header(config.digest.title)} <digest.{domain}>"
    if view.unsubscribe_url:
        # RFC 8058 one-click: mail clients POST "List-Unsubscribe=One-Click" to this URL.
        msg["List-Unsubscribe"] = f"<{view.unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg
