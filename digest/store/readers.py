"""What is kept per reader: their subscription and mail-server state, and their votes."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from digest.models import ReaderState, iso_utc
from digest.store.base import Database

_READER_COLUMNS = ", ".join(f.name for f in fields(ReaderState))


class ReaderStore(Database):
    def reader_states(self) -> dict[str, ReaderState]:
        cur = self.db.execute(f"SELECT {_READER_COLUMNS} FROM readers")
        return {r[0]: ReaderState(*r) for r in cur.fetchall()}

    def reader_state(self, name: str) -> ReaderState:
        row = self.db.execute(f"SELECT {_READER_COLUMNS} FROM readers WHERE name = ?",
                              [name]).fetchone()
        return ReaderState(*row) if row else ReaderState(name)

    def set_reader(self, name: str, **fields) -> None:
        with self.db.conn:
            self.db.execute("INSERT INTO readers (name) VALUES (?) ON CONFLICT DO NOTHING", [name])
            sets = ", ".join(f"{k} = :{k}" for k in fields)
            self.db.execute(f"UPDATE readers SET {sets} WHERE name = :name", {**fields, "name": name})

    def set_vote(self, reader: str, entry_id: str, vote: int, at: datetime) -> None:
        """Record a reader's 👍 (+1) or 👎 (-1); the latest vote on an entry wins."""
        with self.db.conn:
            self.db.execute("INSERT INTO feedback VALUES (?, ?, ?, ?) ON CONFLICT (reader, entry_id) "
                            "DO UPDATE SET vote = excluded.vote, at = excluded.at",
                            [reader, entry_id, vote, iso_utc(at)])

    def vote(self, reader: str, entry_id: str) -> tuple[int, str] | None:
        """(vote, when) of one reader on one entry, or None."""
        row = self.db.execute("SELECT vote, at FROM feedback WHERE reader = ? AND entry_id = ?",
                              [reader, entry_id]).fetchone()
        return (row[0], row[1]) if row else None

    def remove_vote(self, reader: str, entry_id: str) -> None:
        with self.db.conn:
            self.db.execute("DELETE FROM feedback WHERE reader = ? AND entry_id = ?",
                            [reader, entry_id])

    def has_votes(self) -> bool:
        return self.db.execute("SELECT 1 FROM feedback LIMIT 1").fetchone() is not None

    def votes(self, reader: str) -> dict[str, int]:
        return dict(self.db.execute("SELECT entry_id, vote FROM feedback WHERE reader = ?",
                                    [reader]))
