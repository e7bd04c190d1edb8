"""What is kept per feed: its fetch state (miniflux-style, one row per configured feed) and
its poll log."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime

from digest.errors import StoreError
from digest.models import FeedState, PollLogRow, PollResult, iso_utc
from digest.store.base import Database

_FEED_FIELDS = [f.name for f in fields(FeedState)]
_POLL_COLUMNS = ", ".join(f.name for f in fields(PollLogRow))


class FeedStore(Database):
    def save_feed_states(self, states: list[FeedState]) -> None:
        """Write these feeds' states whole, adding the feeds not yet stored (one transaction)."""
        cols = ", ".join(_FEED_FIELDS)
        sets = ", ".join(f"{k} = excluded.{k}" for k in _FEED_FIELDS if k != "name")
        with self.db.conn:
            self.db.conn.executemany(
                f"INSERT INTO feeds ({cols}) VALUES ({', '.join('?' * len(_FEED_FIELDS))}) "
                f"ON CONFLICT (name) DO UPDATE SET {sets}",
                [tuple(int(v) if k == "active" else v for k, v in asdict(s).items())
                 for s in states])

    def feed_state(self, name: str) -> FeedState:
        row = self.db.execute(f"SELECT {', '.join(_FEED_FIELDS)} FROM feeds WHERE name = ?",
                              [name]).fetchone()
        if row is None:
            raise StoreError(f"feed {name!r} is not in the database; run `digest poll` first.")
        return _state(row)

    def feed_states(self) -> list[FeedState]:
        rows = self.db.execute(f"SELECT {', '.join(_FEED_FIELDS)} FROM feeds ORDER BY name")
        return [_state(r) for r in rows]

    def _save_feed_state(self, state: FeedState) -> None:
        values = asdict(state)
        values["active"] = int(state.active)
        sets = ", ".join(f"{k} = :{k}" for k in _FEED_FIELDS if k != "name")
        self.db.execute(f"UPDATE feeds SET {sets} WHERE name = :name", values)

    def feed_totals(self) -> dict[str, int]:
        """Entries ever seen per feed."""
        return dict(self.db.execute("SELECT feed, count(*) FROM sightings GROUP BY feed"))

    def newest_sightings(self) -> dict[str, str]:
        """When each feed last carried an identity it had not carried before (ISO)."""
        return dict(self.db.execute("SELECT feed, max(first_seen) FROM sightings GROUP BY feed"))

    def sightings_per_day(self, since: datetime) -> dict[str, dict[str, int]]:
        """feed → {UTC date: identities first carried that day}, from `since` on."""
        out: dict[str, dict[str, int]] = {}
        for feed, day, n in self.db.execute(
                "SELECT feed, substr(first_seen, 1, 10) AS day, count(*) FROM sightings"
                " WHERE first_seen >= ? GROUP BY feed, day", [iso_utc(since)]):
            out.setdefault(feed, {})[day] = n
        return out

    def record_poll(self, state: FeedState, result: PollResult, started: datetime) -> None:
        """Save a feed's new state and its poll-log row in one transaction."""
        with self.db.conn:
            self._save_feed_state(state)
            self.db.execute(
                "INSERT INTO poll_log (feed, started, seconds, status, http_status, new, seen,"
                " error, warning) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [result.feed, iso_utc(started), round(result.seconds, 4), result.status,
                 result.http_status, result.new, result.seen, result.error, result.warning])

    def poll_log(self, feed: str | None = None, limit: int = 50) -> list[PollLogRow]:
        sql = f"SELECT {_POLL_COLUMNS} FROM poll_log" + (" WHERE feed = ?" if feed else "")
        return [PollLogRow(*r) for r in self.db.execute(
            sql + " ORDER BY id DESC LIMIT ?", ([feed] if feed else []) + [limit])]


def _state(row: tuple) -> FeedState:
    state = FeedState(**dict(zip(_FEED_FIELDS, row, strict=True)))
    state.active = bool(state.active)
    return state
