"""The digest as a chat or push message through Apprise (`pip install 'digest[notify]'`): one
library for about a hundred services. Each of a reader's channels has its own row in the
delivery ledger (reader, local date, channel "notify:SCHEME:HASH"), so each gets the digest
exactly once, is retried like SMTP, and never holds up email or another channel.

The message is Markdown: the title, each item as a link with its reasons, the footer line,
cut to the service's length limit with "N more in the browser" and the link."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from digest.daily import render_digests
from digest.dates import digest_day
from digest.ledger import FAILED, PENDING, RETRY_FAILED, SENDING, SENT, SETTLED, SKIPPED
from digest.models import iso_utc
from digest.owners import new_owner
from digest.render import DigestView
from digest.send import Heartbeat, Outcome, SendResult
from digest.settings import Config, UserConfig
from digest.store import Store

RETRIES, RETRY_WAIT = 3, 30.0  # without [smtp]: attempts, and the first wait (it doubles)
MAX_BODY = 20_000  # even where a service takes more: a chat message, not a newsletter
_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")
# A path segment or password of 16+ characters mixing letters and digits: a token, by its look.
_TOKEN = re.compile(r"(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{16,}")


@dataclass(frozen=True)
class Channel:
    name: str  # the ledger's channel: notify:SCHEME:HASH (the URL itself is never stored)
    url: str  # "" when its environment variable is unset
    source: str  # "notify" or the environment variable's name


def channels(user: UserConfig) -> list[Channel]:
    out = [Channel(_name(u), u, "notify") for u in user.notify]
    for env in user.notify_env:
        url = os.environ.get(env, "").strip()
        out.append(Channel(_name(url) if url else f"notify:{env}", url, env))
    return out


def _name(url: str) -> str:
    scheme = url.partition("://")[0].lower() or "url"
    return f"notify:{scheme}:{hashlib.sha256(url.encode()).hexdigest()[:8]}"


def problems(user: UserConfig) -> list[str]:
    """`digest check`: notify URLs written in the file that look like they hold a token (named
    by scheme only: the warning must not print the secret), and unset variables."""
    unset = [f"[users.{user.name}] notify_env names {env}, which is not set in this "
             "environment; set it to the channel's Apprise URL." for env in user.notify_env
             if not os.environ.get(env, "").strip()]
    tokens = [f"[users.{user.name}] notify has a {u.partition('://')[0]}:// URL that looks "
              "like it holds a token; put the URL in an environment variable and name that in "
              "notify_env, so the secret leaves the file." for u in user.notify
              if _TOKEN.search(u.partition("://")[2])]
    return unset + _unknown(user) + tokens


def _unknown(user: UserConfig) -> list[str]:
    """Channels whose URL Apprise cannot read (when it is installed)."""
    try:
        import apprise
    except ImportError:
        return []
    out = []
    for ch in channels(user):
        if ch.url and apprise.Apprise.instantiate(ch.url) is None:
            where = "notify" if ch.source == "notify" else f"notify_env {ch.source}"
            out.append(f"[users.{user.name}] {where} has a {ch.url.partition('://')[0] or '?'}"
                       ":// URL that Apprise cannot read; check it against Apprise's list of "
                       "services.")
    return out


def markdown(view: DigestView, limit: int) -> str:
    """The digest as Markdown in at most `limit` characters: items in order while they fit,
    then "N more in the browser" with the link, then the footer line."""
    foot = (f"{view.health}. [View in browser]({_url(view.view_url)}) · "
            f"[Unsubscribe]({_url(view.unsubscribe_url)})")
    blocks = []
    for section in view.sections:
        for n, it in enumerate(section.items):
            title = f"[{_md(it.title)}]({_url(it.link)})" if it.link else _md(it.title)
            blocks.append((f"**{_md(section.title)}**\n" if n == 0 else "")
                          + f"{it.number}. {title}" + (f"\n   Why: {_md(it.why)}" if it.why else ""))
    if not blocks:
        return f"Nothing new scored above your threshold today: a quiet day.\n\n{foot}"[:limit]

    def more(n: int) -> str:
        return f"{n} more in the browser: [{_url(view.view_url)}]({_url(view.view_url)})"

    kept, used = [], len(foot) + 2
    for i, block in enumerate(blocks):
        left = len(blocks) - i - 1
        reserve = len(more(left)) + 2 if left else 0
        if kept and used + len(block) + 2 + reserve > limit:
            kept.append(more(len(blocks) - i))
            break
        kept.append(block)
        used += len(block) + 2
    out = "\n\n".join([*kept, foot])
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _md(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", text)


def _url(url: str) -> str:
    return url.replace("(", "%28").replace(")", "%29").replace(" ", "%20")


def push(channel: Channel, title: str, view: DigestView) -> tuple[bool, str]:
    """One attempt: (delivered, what went wrong). Never raises: one channel's trouble must not
    stop the other channels or readers."""
    try:
        import apprise
    except ImportError:
        return False, "Apprise is not installed; pip install 'digest[notify]'"
    if not channel.url:
        return False, f"the environment variable {channel.source} is not set"
    server = apprise.Apprise.instantiate(channel.url)
    if server is None:
        return False, f"Apprise does not understand the {channel.url.partition('://')[0]}:// URL"
    body = markdown(view, min(server.body_maxlen or MAX_BODY, MAX_BODY))
    with apprise.LogCapture(level=apprise.logging.WARNING, fmt="%(message)s") as log:
        try:
            ok = server.notify(body=body, title=title[: server.title_maxlen or 250],
                               body_format=apprise.NotifyFormat.MARKDOWN)
        except Exception as e:  # noqa: BLE001 - a service plugin's bug is that channel's failure
            return False, f"Apprise failed ({type(e).__name__}: {e})"[:300]
    lines = [line.strip() for line in log.getvalue().splitlines() if line.strip()]
    return bool(ok), (lines[-1] if lines else "the service did not accept the message")[:300]


def notify_digests(config: Config, store: Store, users: list[UserConfig], day: date | None,
                   now: datetime, sleep: Callable[[float], None] = time.sleep,
                   retry_now: bool = True) -> list[SendResult]:
    """Each reader's digest of `day` (default: their local today) to each of their channels
    that has not had it: claimed in the ledger first, so of two runs only one sends. A failed
    channel is tried again at once by `digest send`, after RETRY_FAILED by `digest run`."""
    results: list[SendResult] = []
    unsubscribed = {n for n, r in store.reader_states().items() if r.unsubscribed_at}
    owner = new_owner()
    retries = config.smtp.retries if config.smtp else RETRIES
    wait = config.smtp.retry_wait if config.smtp else RETRY_WAIT
    with Heartbeat(store.path, owner) as heartbeat:
        for user in users:
            local = digest_day(user, day, now)
            todo, d = [], local.isoformat()
            if user.name in unsubscribed or not user.sends_on(local):
                continue  # the email path says so
            for ch in channels(user):
                row = store.delivery(user.name, d, ch.name)
                waiting = row and row.state == FAILED and row.retry_at > iso_utc(_clock())
                if row and (row.state in SETTLED or (waiting and not retry_now)):
                    continue  # had it; or failed, and `digest run` tries again later
                if store.claim_deliveries([(user.name, d)], owner, _clock(), channel=ch.name):
                    todo.append(ch)
            if not todo:
                continue
            (done,) = render_digests(config, store, [user], local, now)
            heartbeat.beat()  # after ranking: its workers fork only a single-threaded process
            items = done.digest.news  # as the email counts them: trending and surprise aside
            for ch in todo:
                if items == 0 and config.digest.empty_day == "skip":
                    store.advance(user.name, d, owner, SKIPPED, _clock(), channel=ch.name,
                                  detail="nothing above the threshold (empty_day = \"skip\")")
                    continue
                results.append(_deliver(store, owner, user, d, ch, done.view, items, retries,
                                        wait, sleep))
    return results


def _deliver(store: Store, owner: str, user: UserConfig, d: str, ch: Channel, view: DigestView,
             items: int, retries: int, wait: float, sleep) -> SendResult:
    row = store.delivery(user.name, d, ch.name)
    tried = row.attempts if row else 0
    title = f"{view.title} · {view.day}"
    detail = ""
    for attempt in range(1, retries + 1):
        store.advance(user.name, d, owner, SENDING, _clock(), channel=ch.name,
                      attempts=tried + attempt, items=items)
        ok, detail = push(ch, title, view)
        if ok:
            store.advance(user.name, d, owner, SENT, _clock(), channel=ch.name, detail="")
            return SendResult(user.name, d, Outcome.SENT, items, ch.name)
        if attempt < retries and ch.url and not detail.startswith("Apprise is not installed"):
            store.advance(user.name, d, owner, PENDING, _clock(), channel=ch.name, detail=detail)
            sleep(wait * 2 ** (attempt - 1))
            continue
        break
    store.advance(user.name, d, owner, FAILED, _clock(), channel=ch.name,
                  detail=f"{detail}; gave up after {attempt} attempt{'s' * (attempt != 1)}",
                  retry_at=iso_utc(_clock() + RETRY_FAILED))
    return SendResult(user.name, d, Outcome.FAILED, items, f"{ch.name}: {detail}")


def _clock() -> datetime:
    return datetime.now(UTC)
