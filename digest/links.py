"""Signed links in the digest: feedback votes, unsubscribe and "view in browser".

Each link carries an HMAC-SHA256 of what it does, so a link cannot be edited into another
reader's or another entry's. The secret comes from the DIGEST_SECRET environment variable, else
from a key file generated next to the database (never from the config, which gets shared).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from digest.errors import ConfigError

if TYPE_CHECKING:
    from digest.settings import Config

SECRET_ENV = "DIGEST_SECRET"  # noqa: S105 - the variable's name, not a secret
VOTES = {"up": 1, "down": -1}


def key_path(database: Path) -> Path:
    """Where the generated signing key lives: beside the database."""
    return database.with_name(database.name + ".key")


def load_secret(database: Path) -> bytes:
    """The signing key: $DIGEST_SECRET, else `<database>.key`, created (mode 600) if missing."""
    env = os.environ.get(SECRET_ENV, "")
    if env:
        return env.encode()
    path = key_path(database)
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    except OSError as e:
        raise ConfigError([f"cannot read the link-signing key {path} ({e.strerror}); fix its "
                           f"permissions or set {SECRET_ENV}."]) from None
    key = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_bytes().strip()
    except OSError as e:
        raise ConfigError([f"cannot create the link-signing key {path} ({e.strerror}); make its "
                           f"folder writable or set {SECRET_ENV}."]) from None
    return key


class Links:
    """Builds and checks the signed URLs under `base_url`."""

    @classmethod
    def of(cls, config: Config) -> Links:
        """The links of a config's emails and pages (the key is created on first use)."""
        return cls(config.digest.base_url, load_secret(config.digest.database),
                   config.web.link_days)

    def __init__(self, base_url: str, secret: bytes, link_days: int = 0):
        self.base = base_url.rstrip("/")
        self.secret = secret
        self.link_days = link_days  # view links work until the digest's date + this; 0: always

    def sign(self, *parts: str) -> str:
        msg = "\x1f".join(parts).encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()[:32]

    def verify(self, signature: str, *parts: str) -> bool:
        # A signature from a URL is any text; compare_digest refuses non-ASCII strings.
        signature = signature or ""
        return signature.isascii() and hmac.compare_digest(signature, self.sign(*parts))

    def feedback(self, reader: str, entry_id: str, vote: str) -> str:
        sig = self.sign("feedback", reader, entry_id, vote)
        return f"{self.base}/feedback/{_q(reader)}/{_q(entry_id)}/{vote}?s={sig}"

    def unsubscribe(self, reader: str) -> str:
        return f"{self.base}/unsubscribe/{_q(reader)}?s={self.sign('unsubscribe', reader)}"

    def resubscribe(self, reader: str) -> str:
        return f"{self.base}/resubscribe/{_q(reader)}?s={self.sign('resubscribe', reader)}"

    def reader(self, reader: str) -> str:
        """The reader's own page: their digests, votes and mutes, and a button to reset them."""
        return f"{self.base}/reader/{_q(reader)}?s={self.sign('reader', reader)}"

    def feed(self, reader: str) -> str:
        """The reader's digests as an Atom feed (atom.py)."""
        return f"{self.base}/feed/{_q(reader)}.atom?s={self.sign('feed', reader)}"

    def view(self, reader: str, day: str) -> str:
        """The digest in a browser. With link_days, the link carries its last day (signed),
        counted from the digest's own date, so the same digest always gets the same link."""
        url = f"{self.base}/digest/{_q(reader)}/{day}"
        if not self.link_days:
            return f"{url}?s={self.sign('view', reader, day)}"
        until = (date.fromisoformat(day) + timedelta(days=self.link_days)).isoformat()
        return f"{url}?e={until}&s={self.sign('view', reader, day, until)}"

    def verify_view(self, signature: str, reader: str, day: str, until: str, today: date) -> bool:
        """A view link's signature, and its last day not passed. A link without one stays
        valid: it was sent before link_days was set."""
        if not until:
            return self.verify(signature, "view", reader, day)
        return self.verify(signature, "view", reader, day, until) and until >= today.isoformat()


def _q(part: str) -> str:
    return quote(part, safe="")
