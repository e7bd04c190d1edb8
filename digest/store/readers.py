"""What is kept per reader: their subscription and mail-server state, their votes and mutes."""

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
            # The version voted on: a later one is news to them (compose: Updated).
            self.db.execute("INSERT INTO feedback (reader, entry_id, vote, at, version) VALUES "
                            "(?, ?, ?, ?, coalesce((SELECT version FROM entries WHERE id = ?), 0)) "
                            "ON CONFLICT (reader, entry_id) DO UPDATE SET vote = excluded.vote, "
                            "at = excluded.at, version = excluded.version",
                            [reader, entry_id, vote, iso_utc(at), entry_id])

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

    def liked(self) -> list[str]:
        """The entries some reader gave a 👍: seeds of theirs (`digest prune` keeps what they
        need)."""
        return [i for (i,) in self.db.execute("SELECT DISTINCT entry_id FROM feedback WHERE vote > 0")]

    def votes(self, reader: str) -> dict[str, int]:
        return dict(self.db.execute("SELECT entry_id, vote FROM feedback WHERE reader = ?",
                                    [reader]))

    def reset_votes(self, reader: str) -> int:
        """Forget every vote of a reader. Returns how many there were."""
        with self.db.conn:
            return self.db.execute("DELETE FROM feedback WHERE reader = ?", [reader]).rowcount

    def liked_versions(self, reader: str, ids: list[str]) -> dict[str, tuple[str, int]]:
        """entry id → (when liked, the version liked; 0 if unknown), for those of `ids` the
        reader gave a 👍."""
        return {i: (at, v) for i, at, v in self.in_query(
            "SELECT entry_id, at, version FROM feedback WHERE reader = ? AND vote = 1 AND "
            "entry_id IN ({})", [reader], ids)}

    def mute(self, reader: str, kind: str, value: str, at: datetime) -> None:
        """Hide an author's or a phrase's items from a reader's digests (kind: author|phrase)."""
        with self.db.conn:
            self.db.execute("INSERT INTO mutes VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                            [reader, kind, value, iso_utc(at)])

    def unmute(self, reader: str, kind: str, value: str) -> None:
        with self.db.conn:
            self.db.execute("DELETE FROM mutes WHERE reader = ? AND kind = ? AND value = ?",
                            [reader, kind, value])

    def has_mutes(self) -> bool:
        return self.db.execute("SELECT 1 FROM mutes LIMIT 1").fetchone() is not None

    def mutes(self, reader: str | None = None) -> list[tuple[str, str, str]]:
        """(kind, value, when) of a reader's mutes, or (reader, kind, value) of everyone's."""
        if reader is None:
            return [tuple(r) for r in self.db.execute(
                "SELECT reader, kind, value FROM mutes ORDER BY reader, kind, value")]
        return [tuple(r) for r in self.db.execute(
            "SELECT kind, value, at FROM mutes WHERE reader = ? ORDER BY kind, value", [reader])]
