"""What is kept per entry: its content (`entries`), every identity it was seen under per
feed (`sightings`) and every key that joins it across feeds (`keys`). See migrations.py for
why three tables."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from digest.models import Entry, StoredEntry, iso_utc
from digest.normalize import content_hash
from digest.store.base import Database

_ENTRY_COLUMNS = ("id", "title", "link", "summary_text", "authors", "categories", "published",
                  "fetched", "popularity", "analysis", "sentences", "version", "revised", "tldr",
                  "code", "data")  # what ranking and the digest read
_FULL_COLUMNS = (*_ENTRY_COLUMNS, "canonical", "summary_html")
_SOURCES = ("(SELECT group_concat(DISTINCT s.feed) FROM sightings s WHERE s.entry_id = e.id)")
STRONG_KEYS = ("arxiv:", "doi:")
_INSERT_ENTRY = ("INSERT INTO entries (id, canonical, title, link, summary_html, summary_text, authors,"
                 " categories, published, fetched, popularity, version, tldr, code, data)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
# A copy joining an entry lends it what it lacked (HF's summary and code link to the arXiv
# entry), and a newer arXiv version is recorded with when it was first seen. SET reads the
# old row throughout, so `revised` compares against the version before this update.
_LEND = ("UPDATE entries SET revised = CASE WHEN version > 0 AND :version > version THEN :at"
         " ELSE revised END, version = max(version, :version),"
         " tldr = CASE WHEN tldr = '' THEN :tldr ELSE tldr END,"
         " code = CASE WHEN code = '' THEN :code ELSE code END,"
         " data = CASE WHEN data = '' THEN :data ELSE data END WHERE id = :id AND"
         " (:version > version OR (tldr = '' AND :tldr != '') OR (code = '' AND :code != '')"
         " OR (data = '' AND :data != ''))")


class EntryStore(Database):
    def add_entries(self, feed: str, entries: Iterable[Entry], fetched: datetime) -> tuple[int, int]:
        """Store one feed's entries in one transaction. Returns (new, already known).

        An identity seen before in this feed is a no-op (popularity may rise). An unseen item
        sharing any key (arXiv id, DOI, normalized title) with an entry joins it: it gains this
        feed as a source, lends the entry the keys it lacked, and keeps the higher popularity.
        A title alone never joins two items whose arXiv ids or DOIs differ. Anything else is a
        new entry.
        """
        entries = list(entries)
        if not entries:
            return 0, 0
        fetched_s = iso_utc(fetched)
        with self.db.conn:
            idents = [e.ident for e in entries]
            known = dict(self.in_query(
                "SELECT ident, entry_id FROM sightings WHERE feed = ? AND ident IN ({})",
                [feed], idents))
            keys = {e.ident: e.keys or (f"feed:{feed}:{e.ident}",) for e in entries}
            key_ids = dict(self.in_query("SELECT key, entry_id FROM keys WHERE key IN ({})", [],
                                          list({k for ks in keys.values() for k in ks})))
            # The strong keys (arXiv id, DOI) of every entry a title might join.
            strong: dict[str, set[str]] = {}
            for key, entry_id in self.strong_keys(list(set(key_ids.values()))):
                strong.setdefault(entry_id, set()).add(key)
            new_rows, sightings, new_keys, lent = [], [], [], []
            bumps: dict[str, int] = {}
            for e in entries:
                if e.ident in known:
                    if e.popularity:
                        bumps[known[e.ident]] = max(bumps.get(known[e.ident], 0), e.popularity)
                    if e.tldr or e.code or e.data:
                        lent.append(_lent(known[e.ident], e, fetched_s))
                    continue
                own = keys[e.ident]
                mine = {k for k in own if k.startswith(STRONG_KEYS)}
                # A shared arXiv id or DOI is the same paper; a shared title only when no
                # strong key tells the two apart.
                entry_id = next((key_ids[k] for k in own if k in key_ids and (
                    k in mine or not _conflict(mine, strong.get(key_ids[k], set())))), None)
                if entry_id is None:
                    entry_id = content_hash(own[0])[:16]
                    new_rows.append(_entry_row(entry_id, e, fetched_s))
                else:
                    if e.popularity:
                        bumps[entry_id] = max(bumps.get(entry_id, 0), e.popularity)
                    lent.append(_lent(entry_id, e, fetched_s))
                for k in own:
                    if k not in key_ids:
                        key_ids[k] = entry_id
                        new_keys.append((k, entry_id))
                strong.setdefault(entry_id, set()).update(mine)
                known[e.ident] = entry_id
                sightings.append((feed, e.ident, entry_id, fetched_s))
            self._write_entries(new_rows, new_keys, sightings, bumps, lent)
        return len(new_rows), len(entries) - len(new_rows)

    def _write_entries(self, new_rows: list, new_keys: list, sightings: list,
                       bumps: dict[str, int], lent: list[dict]) -> None:
        """add_entries' writes, inside its transaction."""
        run = self.db.conn.executemany
        run(_INSERT_ENTRY, new_rows)
        run("INSERT INTO keys VALUES (?, ?) ON CONFLICT DO NOTHING", new_keys)
        run("INSERT INTO sightings VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", sightings)
        run("UPDATE entries SET popularity = ? WHERE id = ? AND popularity < ?",
            [(p, i, p) for i, p in bumps.items()])
        run(_LEND, lent)

    def count_entries(self) -> int:
        return self.db.execute("SELECT count(*) FROM entries").fetchone()[0]

    def entry(self, entry_id: str) -> StoredEntry | None:
        row = self.db.execute(f"SELECT {', '.join(f'e.{c}' for c in _FULL_COLUMNS)}, {_SOURCES}"
                              " FROM entries e WHERE e.id = ?", [entry_id]).fetchone()
        return _stored([row], _FULL_COLUMNS)[0] if row else None

    def entry_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM entries ORDER BY published, id")]

    def sources(self, entry_id: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT feed FROM sightings WHERE entry_id = ? ORDER BY first_seen, feed",
            [entry_id])]

    def entries_for_ranking(self, since: datetime | None = None,
                            ids: list[str] | None = None) -> list[StoredEntry]:
        """Entries first fetched after `since` (all when None), or those with the given ids, with
        their feeds as `sources`."""
        sql = f"SELECT {', '.join(f'e.{c}' for c in _ENTRY_COLUMNS)}, {_SOURCES} FROM entries e"
        if ids is not None:
            rows = self.in_query(sql + " WHERE e.id IN ({})", [], ids)
        elif since is not None:
            rows = self.db.execute(sql + " WHERE e.fetched > ? ORDER BY e.seq",
                                   [iso_utc(since)]).fetchall()
        else:
            rows = self.db.execute(sql + " ORDER BY e.seq").fetchall()
        return _stored(rows, _ENTRY_COLUMNS)

    def strong_keys(self, entry_ids: list[str]) -> list[tuple[str, str]]:
        """(key, entry id) of the arXiv ids and DOIs (STRONG_KEYS) the given entries hold."""
        return self.in_query("SELECT key, entry_id FROM keys WHERE entry_id IN ({}) AND "
                             "(key LIKE 'arxiv:%' OR key LIKE 'doi:%')", [], entry_ids)

    def revised(self, since: datetime | None, until: datetime) -> list[tuple[str, str]]:
        """(id, when) of the entries a newer version of which was first seen in (since, until]."""
        return [tuple(r) for r in self.db.execute(
            "SELECT id, revised FROM entries WHERE revised != '' AND revised > ? AND revised <= ?",
            [iso_utc(since) if since else "", iso_utc(until)])]

    def save_analysis(self, items: list[tuple[str, bytes]]) -> None:
        """Store (entry id, lexical.encode_analysis) pairs computed by the ranker: a cache."""
        self._save_derived("analysis", items)

    def save_sentences(self, items: list[tuple[str, bytes]]) -> None:
        """Store (entry id, sentences.encode) pairs worked out by the highlight: a cache."""
        self._save_derived("sentences", items)

    def _save_derived(self, column: str, items: list[tuple[str, bytes]]) -> None:
        """`column` one of the entries' caches (analysis, sentences), from (id, value) pairs."""
        if items:
            with self.db.conn:
                self.db.conn.executemany(f"UPDATE entries SET {column} = ? WHERE id = ?",
                                         [(a, i) for i, a in items])

    def prune(self, before: datetime) -> int:
        """Delete entry content published and fetched before `before`, except what a reader
        voted on: a 👍 item is one of their seed papers and a 👎 one counts against, for as long
        as the vote stands. Identities (sightings, keys) stay, so a pruned item that reappears
        in a feed is still recognised as old."""
        cutoff = iso_utc(before)
        with self.db.conn:
            cur = self.db.execute(
                "DELETE FROM entries WHERE published < ? AND fetched < ? "
                "AND id NOT IN (SELECT entry_id FROM feedback)", [cutoff, cutoff])
        return cur.rowcount


def _stored(rows: list[tuple], columns: tuple[str, ...]) -> list[StoredEntry]:
    """Rows of `columns` then the sources, as entries. Every row's authors and categories
    (JSON lists) are parsed in one call, not one call per list (5,000 entries: 57 → 39 ms)."""
    a, c = columns.index("authors"), columns.index("categories")
    lists = iter(json.loads("[" + ",".join(x for r in rows for x in (r[a], r[c])) + "]"))
    out = []
    for r in rows:
        d = dict(zip(columns, r, strict=False))
        d["authors"], d["categories"] = next(lists), next(lists)
        out.append(StoredEntry(**d, sources=sorted(r[-1].split(",")) if r[-1] else []))
    return out


def _conflict(mine: set[str], theirs: set[str]) -> bool:
    """Two entries name different papers when they hold different keys of one strong kind."""
    return any(k.split(":", 1)[0] == t.split(":", 1)[0] and k != t for k in mine for t in theirs)


def _entry_row(entry_id: str, e: Entry, fetched: str) -> tuple:
    return (entry_id, e.canonical, e.title, e.link, e.summary_html, e.summary_text,
            json.dumps(e.authors, ensure_ascii=False), json.dumps(e.categories, ensure_ascii=False),
            iso_utc(e.published), fetched, e.popularity, e.version, e.tldr, e.code, e.data)


def _lent(entry_id: str, e: Entry, fetched: str) -> dict:
    return {"id": entry_id, "version": e.version, "at": fetched, "tldr": e.tldr,
            "code": e.code, "data": e.data}
