"""The archive's full-text index (SQLite FTS5, search.py's engine): title, authors and text,
stemmed. Indexing is deferred, as in the `reader` library: polling does not pay for
tokenizing; a search first indexes the rows above the watermark. The index is a cache: a
read-only command may bring it up to date."""

from __future__ import annotations

from datetime import datetime

from digest.models import iso_utc
from digest.store.base import Database


class FullTextStore(Database):
    def index_search(self) -> int:
        """Bring the full-text index up to date; returns the number of rows indexed."""
        if self._fts_behind() is None:  # the common case, read without the write lock
            return 0
        # Read again and written in one transaction: two processes searching at once (the
        # preview and `digest search`) would both index the same rows, and an error between
        # the two writes would leave rows indexed that the next call indexed again.
        with self.writing():
            behind = self._fts_behind()
            if behind is None:
                return 0
            upto, top = behind
            cur = self.db.execute(
                "INSERT INTO entries_fts(rowid, title, authors, summary_text) SELECT seq, title,"
                " authors, summary_text FROM entries WHERE seq > ? AND seq <= ?", [upto, top])
            self.db.execute("UPDATE fts_state SET indexed_upto = ?", [top])
        return cur.rowcount

    def _fts_behind(self) -> tuple[int, int] | None:
        """(indexed up to, newest entry's seq) when the index is behind, else None."""
        upto = self.db.execute("SELECT indexed_upto FROM fts_state").fetchone()[0]
        top = self.db.execute("SELECT coalesce(max(seq), 0) FROM entries").fetchone()[0]
        return (upto, top) if top > upto else None

    def search(self, query: str, limit: int = 20, feeds: list[str] | None = None,
               since: datetime | None = None) -> list[str]:
        """Entry ids matching an FTS5 query, best first by BM25 (a title match counts most,
        then the authors, then the text); only entries some of `feeds` carried, published
        from `since` on."""
        self.index_search()
        where, params = ["entries_fts MATCH ?"], [query]
        if feeds is not None:
            where.append(f"EXISTS (SELECT 1 FROM sightings s WHERE s.entry_id = entries.id AND "
                         f"s.feed IN ({','.join('?' * len(feeds))}))")
            params += feeds
        if since is not None:
            where.append("entries.published >= ?")
            params.append(iso_utc(since))
        return [r[0] for r in self.db.execute(
            "SELECT entries.id FROM entries_fts JOIN entries ON entries.seq = entries_fts.rowid"
            f" WHERE {' AND '.join(where)} ORDER BY bm25(entries_fts, 10.0, 5.0, 1.0) LIMIT ?",
            [*params, limit])]
