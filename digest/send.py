"""Send each reader's digest for a day exactly once, through the delivery ledger.

The ledger row (reader, local date) moves pending → sending → sent | failed | skipped.
'sending' is committed before the message is handed over (SMTP DATA, or the outbox write) and
'sent' right after it is accepted. A row found in 'sending' for more than STALE belongs to a run that
died in between (a younger one may be another run at work), and is resolved without sending
again:
- outbox: the file is written whole or not at all, so its presence says which: sent, or
  failed (and then sent by the next run);
- SMTP: the server may have accepted the message, so it is never resent; the row becomes
  'sent' with the detail "unconfirmed", which `digest check` and the footer health show. A
  duplicate email is the failure readers hate most; an unconfirmed one is reported.
A temporary refusal (4xx, dropped connection) is retried `[smtp] retries` times with doubling
waits; a permanent one (5xx) is not, and marks the reader failing until a send succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.compose import local_day
from digest.config import Config, UserConfig
from digest.deliver import DeliveryError, Outbox, Outgoing, Smtp
from digest.message import build_message
from digest.models import iso_utc
from digest.render import render_digests
from digest.store import Store

DONE = ("sending", "sent", "skipped")
STALE = timedelta(minutes=15)  # longer than a send with all its SMTP timeouts and retries
UNCONFIRMED = ("unconfirmed: the run stopped while the server was receiving it; not resent, "
               "so that it cannot arrive twice")


@dataclass
class SendResult:
    reader: str
    day: str
    state: str  # sent | skipped | failed | already | would-send (dry run)
    items: int = 0
    detail: str = ""


def resolve_interrupted(store: Store, backend: Outbox | Smtp, now: datetime) -> list[dict]:
    """Settle rows left in 'sending' for longer than any live send takes (STALE): younger ones
    may belong to another run that is sending right now (overlapping cron jobs)."""
    cutoff = iso_utc(now - STALE)
    rows = [r for r in store.interrupted_deliveries() if r["updated_at"] < cutoff]
    for row in rows:
        if isinstance(backend, Outbox) and not backend.delivered(row["reader"], row["day"]):
            store.set_delivery(row["reader"], row["day"], "failed", now,
                               detail="interrupted before the outbox file was written")
        else:
            store.set_delivery(row["reader"], row["day"], "sent", now, detail=UNCONFIRMED)
    return rows


def send_digests(config: Config, store: Store, users: list[UserConfig], day: str | None,
                 now: datetime, backend: Outbox | Smtp, dry_run: bool = False,
                 sleep: Callable[[float], None] = time.sleep) -> list[SendResult]:
    """Rank, render and deliver each reader's digest of `day` (default: their local today)."""
    results: list[SendResult] = []
    if not dry_run:
        resolve_interrupted(store, backend, now)
    readers = store.reader_states()
    unsubscribed = {n for n, r in readers.items() if r["unsubscribed_at"]}
    failing = {n for n, r in readers.items() if r["failing_since"]}
    todo = []
    for u in users:
        d = local_day(u, day, now).isoformat()
        row = store.delivery(u.name, d)
        if u.name in unsubscribed:
            results.append(SendResult(u.name, d, "skipped", detail="unsubscribed"))
        elif row and row["state"] in DONE:
            results.append(SendResult(u.name, d, "already", row["items"], row["state"]))
        else:
            todo.append(u)
    try:
        for done in render_digests(config, store, todo, day, now,
                                   last_sent=store.last_delivered()):
            results.append(_deliver(config, store, done, now, backend, dry_run, sleep,
                                    done.digest.user.name in failing))
    finally:
        backend.close()
    return results


def _deliver(config, store, done, now, backend, dry_run, sleep, was_failing) -> SendResult:
    user, d = done.digest.user, done.view.date
    items = sum(len(s.items) for s in done.view.sections[:1])
    if dry_run:
        return SendResult(user.name, d, "would-send", items, done.view.subject)
    if store.claim_delivery(user.name, d, now) is None:  # another run got here first
        return SendResult(user.name, d, "already", items)
    window_end = iso_utc(done.digest.until)
    if items == 0 and config.digest.empty_day == "skip":
        store.set_delivery(user.name, d, "skipped", now, window_end=window_end,
                           detail="nothing above the threshold (empty_day = \"skip\")")
        return SendResult(user.name, d, "skipped", 0, "nothing new above the threshold")
    msg = build_message(config, user, done.view, done.html, done.text, now)
    content = done.digest.to_json()
    out = Outgoing.of(msg, user.name, d)
    retries = config.smtp.retries if config.smtp else 1
    wait = config.smtp.retry_wait if config.smtp else 0
    for attempt in range(1, retries + 1):
        store.set_delivery(user.name, d, "sending", now, attempts=attempt, items=items,
                           message_id=msg["Message-ID"], window_end=window_end,
                           content=content)
        try:
            backend.send(out)
        except DeliveryError as e:
            if e.permanent or attempt == retries:
                detail = str(e) if e.permanent else f"{e} Gave up after {attempt} attempts."
                store.set_delivery(user.name, d, "failed", now, detail=detail)
                if e.permanent:
                    store.set_reader(user.name, failing_since=iso_utc(now), last_error=str(e))
                return SendResult(user.name, d, "failed", items, detail)
            store.set_delivery(user.name, d, "pending", now, detail=str(e))
            sleep(wait * 2 ** (attempt - 1))
            continue
        store.set_delivery(user.name, d, "sent", now, detail="")
        if was_failing:  # a success clears the mark (and costs no write otherwise)
            store.set_reader(user.name, failing_since="", last_error="")
        return SendResult(user.name, d, "sent", items)
    raise AssertionError("unreachable: the loop always returns")
