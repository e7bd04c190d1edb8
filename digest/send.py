"""Send each reader's digest for a day exactly once, through the delivery ledger.

The rules (states, owners, leases) are in ledger.py; this is the sequence. A run claims the
rows it will send in one transaction, keeps their leases alive from a heartbeat thread, and
for each reader commits 'sending' before the message goes out and 'sent' right after the
server accepts. What may not have arrived becomes 'unconfirmed' and is never retried:
- the connection broke after the whole message went out (deliver.Unconfirmed);
- a row is found in 'sending' whose owner's lease lapsed (the run died mid-send). With the
  outbox the file (written whole or not at all) tells which: sent, or pending again.
A temporary refusal before the message went out (4xx, a refused or broken connection) is retried
`[smtp] retries` times with doubling waits, the row still owned, so an overlapping run leaves
it alone; a permanent one (5xx) is not, and marks the reader failing until a send succeeds.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path

from digest.daily import render_digests
from digest.dates import digest_day
from digest.deliver import Aborted, DeliveryError, Outbox, Outgoing, Smtp, Unconfirmed
from digest.errors import DigestError
from digest.ledger import (
    EMAIL,
    FAILED,
    HEARTBEAT,
    PENDING,
    RETRY_FAILED,
    RETRY_REFUSED,
    SENDING,
    SENT,
    SETTLED,
    SKIPPED,
    UNCONFIRMED,
    Delivery,
    resend_hint,
)
from digest.message import build_message
from digest.models import ReaderState, iso_utc
from digest.owners import gone, new_owner, owner_pid
from digest.render import EMAIL_BUDGET
from digest.settings import Config, UserConfig
from digest.store import Store

log = logging.getLogger("digest.send")


class Outcome(StrEnum):
    """What became of one digest in one run (the ledger row's state is another thing)."""

    SENT = "sent"
    UNCONFIRMED = "unconfirmed"
    SKIPPED = "skipped"
    FAILED = "failed"
    ALREADY = "already"  # settled before: nothing sent
    BUSY = "busy"  # another run holds it
    WOULD_SEND = "would-send"  # a dry run


@dataclass
class SendResult:
    reader: str
    day: str
    state: Outcome
    items: int = 0
    detail: str = ""


def _clock() -> datetime:
    """Ledger times are the wall clock of the moment (leases are compared across processes),
    not the run's nominal `now`."""
    return datetime.now(UTC)


class Heartbeat:
    """Renews every lease `owner` holds, every HEARTBEAT seconds, from its own connection, for
    as long as the run works (SMTP waits and backoffs included). A killed process stops
    beating, and its leases lapse.

    Started by `beat()`, not on entry: the ranker forks its workers only in a single-threaded
    process, so the thread starts once the first digest is ranked, renewing at once."""

    def __init__(self, database: Path, owner: str, every: float = HEARTBEAT):
        self.database, self.owner, self.every = database, owner, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="digest-lease", daemon=True)

    def __enter__(self) -> Heartbeat:
        return self

    def beat(self) -> None:
        if not self.thread.is_alive() and not self.stop.is_set():
            self._renew()
            self.thread.start()

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()

    def _beat(self) -> None:
        while not self.stop.wait(self.every):
            self._renew()

    def _renew(self) -> None:
        try:
            with Store(self.database) as store:
                store.renew_leases(self.owner, _clock())
        except (sqlite3.Error, DigestError) as e:  # a locked or busy disk: try next beat
            log.warning("lease renewal failed (%s); retrying in %.0f s", e, self.every)


def reap_dead_owners(store: Store, now: datetime) -> list[str]:
    """Lapse the leases of runs on this host whose process is gone (killed, crashed), so a
    rerun need not wait out LEASE. Safe even if wrong: every step of a run is conditional on
    its ownership, so a live run that lost a row can no longer send it."""
    dead = [owner for owner in store.owners() if gone(owner)]
    for owner in dead:
        store.lapse(owner, now)
    return dead


def settle(store: Store, backend: Outbox | Smtp) -> list[Delivery]:
    """What every send run and every scheduler tick does first: find the runs that died and
    resolve what they left in 'sending'."""
    reap_dead_owners(store, _clock())
    return settle_orphans(store, backend, _clock())


def settle_orphans(store: Store, backend: Outbox | Smtp, now: datetime) -> list[Delivery]:
    """Resolve rows left in 'sending' by runs that are gone (lease lapsed), without sending."""
    settled = []
    for row in store.deliveries_in((SENDING,)):
        if not row.orphaned(now):
            continue  # a live run is sending it right now
        who = owner_pid(row.owner)
        if row.channel != EMAIL:  # a chat service keeps no outbox to look in
            state, detail = UNCONFIRMED, (f"the run ({who}) stopped while handing it to "
                                          f"{row.channel}, so it may have arrived")
        elif isinstance(backend, Outbox):
            done = backend.delivered(row.reader, row.day)
            state, detail = ((SENT, f"the run ({who}) stopped after writing the outbox file")
                             if done else
                             (PENDING, f"the run ({who}) stopped before writing the outbox "
                                       "file; sent again"))
        else:
            state, detail = UNCONFIRMED, (f"the run ({who}) stopped while handing it to the SMTP "
                                          "server, so it may have been delivered")
        if store.settle_orphan(row, state, now, detail):
            settled.append(row)
            if state == UNCONFIRMED:
                log.error("send %s %s: UNCONFIRMED: %s; %s", row.reader, row.day, detail,
                          resend_hint(row.reader, row.day))
    return settled


def send_digests(config: Config, store: Store, users: list[UserConfig], day: date | None,
                 now: datetime, backend: Outbox | Smtp, dry_run: bool = False,
                 sleep: Callable[[float], None] = time.sleep,
                 resend: bool = False) -> list[SendResult]:
    """Rank, render and deliver each reader's digest of `day` (default: their local today).
    `resend`: only the unconfirmed digests, sent again on purpose (of `day`, or of every date
    when it is None), as they were composed the first time."""
    if not dry_run:
        settle(store, backend)
    owner = new_owner()
    if resend:
        wanted = [(u, date.fromisoformat(r.day))
                  for r in store.deliveries_in((UNCONFIRMED,), day and day.isoformat())
                  for u in users if u.name == r.reader]
    else:
        wanted = [(u, digest_day(u, day, now)) for u in users if u.email]
    readers = store.reader_states()
    results, candidates, attempts = _triage(store, readers, wanted, owner, resend)
    if not dry_run:
        taken = store.claim_deliveries([(u.name, d.isoformat()) for u, d in candidates], owner,
                                       _clock(), states=(UNCONFIRMED,) if resend else (PENDING, FAILED))
        for u, d in candidates:
            if (u.name, d.isoformat()) not in taken:  # another run claimed it since we looked
                row = store.delivery(u.name, d.isoformat())  # it exists: the claim inserts it
                assert row is not None
                results.append(_busy(row) if row.held(_clock()) else _settled(row))
        candidates = [(u, d) for u, d in candidates if (u.name, d.isoformat()) in taken]
    by_day: dict[date, list[UserConfig]] = {}
    for u, d in candidates:
        by_day.setdefault(d, []).append(u)
    failing = {n for n, r in readers.items() if r.failing_since}
    try:
        with Heartbeat(store.path, owner) as heartbeat:
            for d, group in sorted(by_day.items()):
                # A digest sent (or perhaps sent) before is recalled as it was composed.
                for done in render_digests(config, store, group, d if resend else day, now,
                                           last_sent=store.last_delivered(), budget=EMAIL_BUDGET):
                    user = done.digest.user
                    if dry_run:
                        results.append(SendResult(user.name, d.isoformat(), Outcome.WOULD_SEND,
                                                  _items(done), done.view.subject))
                        continue
                    heartbeat.beat()
                    results.append(_deliver(config, store, owner, done, backend, sleep,
                                            user.name in failing, attempts[user.name, d], resend))
    finally:
        backend.close()
        if not dry_run:
            store.release(owner)  # rows claimed and not reached (a stop) are free at once
    return results


def _triage(store: Store, readers: dict[str, ReaderState], wanted: list[tuple[UserConfig, date]],
            owner: str, resend: bool):
    """(results for the digests that are not to be sent now, the (reader, date) that are, and
    the attempts each had). Not to be sent: unsubscribed readers, days that are not their
    send days, digests settled before and rows another live run holds."""
    unsubscribed = {n for n, r in readers.items() if r.unsubscribed_at}
    results: list[SendResult] = []
    candidates: list[tuple[UserConfig, date]] = []
    attempts: dict[tuple[str, date], int] = {}
    for u, d in wanted:
        row = store.delivery(u.name, d.isoformat())
        attempts[u.name, d] = row.attempts if row else 0
        if u.name in unsubscribed:
            results.append(SendResult(u.name, d.isoformat(), Outcome.SKIPPED, detail="unsubscribed"))
        elif not resend and not u.sends_on(d):
            results.append(SendResult(u.name, d.isoformat(), Outcome.SKIPPED, detail="not one of "
                                      "their send days: " + ", ".join(u.send_days)))
        elif row and not resend and row.state in SETTLED:
            results.append(_settled(row))
        elif row and row.held(_clock()) and row.owner != owner:
            results.append(_busy(row))
        else:
            candidates.append((u, d))
    return results, candidates, attempts


def _items(done) -> int:
    """What makes a digest worth sending: items for the reader and new versions, not the
    trending or surprise extras."""
    return done.digest.news


def _settled(row: Delivery) -> SendResult:
    if row.state != UNCONFIRMED:
        return SendResult(row.reader, row.day, Outcome.ALREADY, row.items, row.state)
    return SendResult(row.reader, row.day, Outcome.UNCONFIRMED, row.items,
                      f"{row.detail}; not sent again; {resend_hint(row.reader, row.day)}")


def _busy(row: Delivery) -> SendResult:
    return SendResult(row.reader, row.day, Outcome.BUSY, row.items,
                      f"another run ({owner_pid(row.owner)}) holds it until {row.lease_until}")


def _deliver(config, store: Store, owner: str, done, backend, sleep, was_failing: bool,
             tried: int, resend: bool) -> SendResult:
    user, d = done.digest.user, done.view.date
    items = _items(done)
    window_end = iso_utc(done.digest.until)
    if items == 0 and config.digest.empty_day == "skip" and not resend:
        store.advance(user.name, d, owner, SKIPPED, _clock(), window_end=window_end,
                      detail="nothing above the threshold (empty_day = \"skip\")")
        return SendResult(user.name, d, Outcome.SKIPPED, 0, "nothing new above the threshold")
    msg = build_message(config, user, done.view, done.html, done.text, _clock())
    out = Outgoing.of(msg, user.name, d)
    retries = config.smtp.retries if config.smtp else 1
    wait = config.smtp.retry_wait if config.smtp else 0
    content, message_id = done.digest.to_json(), msg["Message-ID"]
    for attempt in range(1, retries + 1):
        def sending(attempt=attempt) -> bool:  # committed just before the message goes out
            return store.advance(user.name, d, owner, SENDING, _clock(), attempts=tried + attempt,
                                 items=items, message_id=message_id, window_end=window_end,
                                 content=content)

        try:
            backend.send(out, sending)
        except Aborted:
            return SendResult(user.name, d, Outcome.BUSY, items, "this run lost its hold on it (its "
                              "lease lapsed while it was stopped); not sent by this run")
        except Unconfirmed as e:
            store.advance(user.name, d, owner, UNCONFIRMED, _clock(), detail=str(e))
            log.error("send %s %s: UNCONFIRMED: %s %s", user.name, d, e, resend_hint(user.name, d))
            return SendResult(user.name, d, Outcome.UNCONFIRMED, items,
                              f"{e} {resend_hint(user.name, d)}.")
        except DeliveryError as e:
            if e.permanent or attempt == retries:
                detail = str(e) if e.permanent else f"{e} Gave up after {attempt} attempts."
                retry = _clock() + (RETRY_REFUSED if e.permanent else RETRY_FAILED)
                store.advance(user.name, d, owner, FAILED, _clock(), detail=detail,
                              retry_at=iso_utc(retry), attempts=tried + attempt)
                if e.permanent:
                    store.set_reader(user.name, failing_since=iso_utc(_clock()),
                                     last_error=str(e))
                return SendResult(user.name, d, Outcome.FAILED, items, detail)
            # Still owned while it waits: an overlapping run must not send it meanwhile.
            store.advance(user.name, d, owner, PENDING, _clock(), detail=str(e),
                          attempts=tried + attempt)
            sleep(wait * 2 ** (attempt - 1))
            continue
        store.advance(user.name, d, owner, SENT, _clock(), detail="resent on request"
                      if resend else "")
        if was_failing:  # a success clears the mark (and costs no write otherwise)
            store.set_reader(user.name, failing_since="", last_error="")
        return SendResult(user.name, d, Outcome.SENT, items)
    raise AssertionError("unreachable: the loop always returns")
