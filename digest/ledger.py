"""The delivery ledger's rules: its states, its typed row, and who may touch a row. Pure: no
I/O here; the SQL is in store/ledger.py and the sending in send.py.

One row per (reader, local date, channel). Its life:

    pending ──claim──▶ pending, owned ──▶ sending ──▶ sent | unconfirmed | failed | skipped
       ▲                   │   ▲              (owned)
       └── lease lapses ───┘   └── 4xx before the message went out: waits, still owned

- **Owner and lease.** A run takes a row only in one write transaction, and only if no live run
  holds it: the row names its owner (host, pid and a random id) and a lease that the owner
  renews every HEARTBEAT while it works, waits included. A crashed owner's lease lapses after
  LEASE; a slow one's never does. Every later step is conditional on the owner, so a run that
  lost its row (its lease lapsed while it was stopped) can no longer send it.
- **sending** is committed before the first byte of the message leaves, so at most one run
  ever hands a given row to the server.
- **unconfirmed**: the server may have the message (the connection broke after the whole
  message went out, or the owner died in 'sending'), so it is never sent again by itself:
  `digest check` names it, and `digest send --resend-unconfirmed` is the deliberate resend.
- **failed**: the server said no, or temporary failures outlasted the retries. `digest run`
  tries again after RETRY_FAILED (permanent refusals after RETRY_REFUSED), within catch_up;
  `digest send` tries again at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from digest.models import iso_utc
from digest.owners import owner_pid


class State(StrEnum):
    """A row's state; stored as its value (the table's CHECK lists the same six)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    UNCONFIRMED = "unconfirmed"
    FAILED = "failed"
    SKIPPED = "skipped"


PENDING, SENDING, SENT, UNCONFIRMED, FAILED, SKIPPED = State
SETTLED = (SENT, UNCONFIRMED, SKIPPED)  # never sent again without an operator asking
EMAIL = "email"

LEASE = timedelta(minutes=2)
HEARTBEAT = 20.0  # seconds between lease renewals: a sixth of LEASE, so a busy disk is no risk
RETRY_FAILED = timedelta(minutes=15)
RETRY_REFUSED = timedelta(hours=1)


@dataclass(frozen=True)
class Delivery:
    reader: str
    day: str  # the reader's local date, YYYY-MM-DD
    channel: str
    state: State
    owner: str  # the run holding the row, '' for none
    lease_until: str  # ISO UTC; the owner's hold lapses then
    retry_at: str  # failed rows: when `digest run` tries again
    message_id: str
    window_end: str  # the next digest starts here
    attempts: int  # hand-overs tried, over all runs
    items: int
    detail: str  # last error, or why skipped / unconfirmed
    updated_at: str
    content: str  # models.Digest.to_json, written before the send

    @classmethod
    def of(cls, row: tuple) -> Delivery:
        """From a row of the deliveries table, columns in field order."""
        return cls(row[0], row[1], row[2], State(row[3]), *row[4:])

    def held(self, now: datetime) -> bool:
        """A live run holds it (its lease has not lapsed). Store.claim_deliveries asks the same
        inside its transaction."""
        return bool(self.owner) and self.lease_until > iso_utc(now)

    def orphaned(self, now: datetime) -> bool:
        """Left in 'sending' by a run that is gone: the server may or may not have it."""
        return self.state == SENDING and not self.held(now)

    def lost(self, now: datetime) -> bool:
        """A digest that may never have arrived and that nothing will send by itself."""
        return self.state == UNCONFIRMED or self.orphaned(now)


def resend_hint(reader: str, day: str) -> str:
    return f"`digest send {reader} --date {day} --resend-unconfirmed` sends it again"


def lost_report(row: Delivery) -> str:
    """One sentence for `digest check`, `digest feeds`, /health and the run log."""
    why = (row.detail if row.state == UNCONFIRMED else
           f"left in 'sending' by a run that stopped ({owner_pid(row.owner)}) at "
           f"{row.updated_at}")
    return (f"the digest of {row.reader} for {row.day} is unconfirmed ({why}); ask the reader "
            f"whether it arrived, and if not, {resend_hint(row.reader, row.day)}.")
