"""Derived data, kept to save work: parsed seed libraries, sentence embeddings and the term
dictionary. Each can be rebuilt from the rest, so read-only commands and pages may fill them."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from digest.store.base import Database

MMAP_BYTES = 1 << 30  # address space only; past it, SQLite reads as before


class CacheStore(Database):
    def cached_library(self, path: str, stamp: str) -> bytes | str | None:
        row = self.db.execute("SELECT data FROM libraries WHERE path = ? AND stamp = ?",
                              [path, stamp]).fetchone()
        return row[0] if row else None

    def save_library(self, path: str, stamp: str, data: bytes | str) -> None:
        with self.db.conn:
            self.db.execute("INSERT INTO libraries VALUES (?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
                            "stamp = excluded.stamp, data = excluded.data", [path, stamp, data])

    # -- embeddings cache -------------------------------------------------------------------

    def embeddings(self, keys: list[str]) -> dict[str, bytes]:
        # From the first on, this connection reads through a memory map, not a read() call per
        # page: a ranking with the semantic extra reads 90 MB of vectors, and the 5,000
        # entries' sentences took 0.20 s, not 0.27 s (docs/benchmarks.md). Only here: the
        # pages mapped count in the process's RSS, which the benchmarks report.
        self.db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        return dict(self.in_query("SELECT key, vector FROM embeddings WHERE key IN ({})", [],
                                   keys))

    def embedded(self, keys: list[str]) -> set[str]:
        """Those of `keys` that have a cached embedding."""
        return {k for (k,) in self.in_query("SELECT key FROM embeddings WHERE key IN ({})", [],
                                             keys)}

    def save_embeddings(self, items: dict[str, bytes], owner: str = "") -> None:
        """Vectors by key; with `owner`, in the same transaction, its claims on them end."""
        with self.db.conn:
            self.db.conn.executemany("INSERT INTO embeddings VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                                     "SET vector = excluded.vector",
                                     list(items.items()))
            if owner:
                self.db.conn.executemany("DELETE FROM embedding_claims WHERE key = ? AND owner = ?",
                                         [(k, owner) for k in items])

    def claim_embeddings(self, keys: list[str], owner: str, now: str, until: str,
                         limit: int) -> list[str]:
        """Up to `limit` of `keys` (in order) that have no vector and that no other run holds
        (its claim lasting past `now`), claimed for `owner` until `until` in one write
        transaction: two runs never claim one key."""
        with self.writing():
            self.db.execute("DELETE FROM embedding_claims WHERE until <= ?", [now])
            taken = {k for (k,) in self.in_query("SELECT key FROM embeddings WHERE key IN ({})",
                                                 [], keys)}
            taken |= {k for (k,) in self.in_query("SELECT key FROM embedding_claims WHERE "
                                                  "owner != ? AND key IN ({})", [owner], keys)}
            mine = [k for k in keys if k not in taken][:limit]
            self.db.conn.executemany("INSERT INTO embedding_claims VALUES (?, ?, ?) ON CONFLICT "
                                     "(key) DO UPDATE SET owner = excluded.owner, until = "
                                     "excluded.until", [(k, owner, until) for k in mine])
        return mine

    def embedding_claimants(self) -> list[str]:
        """The runs holding claims on texts to embed (or that did: their leases not yet over)."""
        return [o for (o,) in self.db.execute("SELECT DISTINCT owner FROM embedding_claims")]

    def release_embeddings(self, owner: str) -> int:
        """End `owner`'s claims: it stopped (done, failed or killed) without embedding them."""
        with self.db.conn:
            return self.db.execute("DELETE FROM embedding_claims WHERE owner = ?", [owner]).rowcount

    def cached_libraries(self) -> list[bytes | str]:
        """Every cached seed library's data, as save_library was given it (Seeds.decode)."""
        return [data for (data,) in self.db.execute("SELECT data FROM libraries")]

    def keep_embeddings(self, wanted: Callable[[], set[str]]) -> int:
        """Delete the cached embeddings whose keys `wanted()` does not name; how many went.
        Only those listed before it is called can go: one saved while it works out what is
        needed (by a poll or a send in another thread or process) is not in its answer, and
        stays."""
        with self.db.conn:
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS listed (key TEXT PRIMARY KEY)")
            self.db.execute("DELETE FROM listed")
            self.db.execute("INSERT INTO listed SELECT key FROM embeddings")
        keys = wanted()
        with self.db.conn:
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (key TEXT PRIMARY KEY)")
            self.db.execute("DELETE FROM wanted")
            self.db.conn.executemany("INSERT OR IGNORE INTO wanted VALUES (?)",
                                     [(k,) for k in keys])
            gone = self.db.execute(
                "DELETE FROM embeddings WHERE key IN (SELECT key FROM listed) "
                "AND key NOT IN (SELECT key FROM wanted)").rowcount
            self.db.execute("DELETE FROM wanted")
            self.db.execute("DELETE FROM listed")
        return gone

    def term_words(self, ids: list[int]) -> dict[int, str]:
        """The words of term ids, as term_ids gave them out."""
        return dict(self.in_query("SELECT id, term FROM terms WHERE id IN ({})", [], ids))

    def term_ids(self, strings: Iterable[str], add: bool = True) -> dict[str, int]:
        """Ids of `strings` in the term dictionary; with `add`, the missing ones are added
        (without, they are left out: a phrase word never seen cannot match anything)."""
        wanted = sorted(set(strings))
        sql = "SELECT term, id FROM terms WHERE term IN ({})"
        ids = dict(self.in_query(sql, [], wanted))
        missing = [t for t in wanted if t not in ids]
        if add and missing:
            with self.db.conn:  # another process may have added some meanwhile
                self.db.conn.executemany("INSERT INTO terms (term) VALUES (?) ON CONFLICT DO NOTHING",
                                         [(t,) for t in missing])
            ids.update(self.in_query(sql, [], missing))
        return ids
