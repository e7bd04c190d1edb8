"""All disk access and all SQL. One SQLite file in WAL mode, schema versioned by migrations.

Identity model (why three tables):
- `sightings` (feed, ident) records every item identity ever seen in a feed. It is never pruned,
  so an old item can never look new again.
- `keys` maps every key an item carries (arXiv id, DOI, normalized title; feed+ident when it
  has none) to an entry id. Also never pruned: the same paper arriving later from another feed,
  under any of its keys, still joins the old entry.
- `entries` holds the content, one row per paper/post however many feeds carry it. This is
  the only table pruning deletes from.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path

import sqlite_utils

from digest.errors import StoreError
from digest.ledger import EMAIL, FAILED, LEASE, PENDING, SENDING, UNCONFIRMED, Delivery
from digest.models import Entry, FeedState, PollResult, iso_utc
from digest.normalize import content_hash

MIGRATIONS: list[str] = [
    # 1: the foundation
    """
    CREATE TABLE feeds (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        config_url TEXT NOT NULL DEFAULT '',
        title TEXT NOT NULL DEFAULT '',
        etag TEXT NOT NULL DEFAULT '',
        last_modified TEXT NOT NULL DEFAULT '',
        active INTEGER NOT NULL DEFAULT 1,
        error_count INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        last_success_at TEXT NOT NULL DEFAULT '',
        failing_since TEXT NOT NULL DEFAULT '',
        next_poll_at TEXT NOT NULL DEFAULT '',
        redirect_to TEXT NOT NULL DEFAULT '',
        redirect_seen INTEGER NOT NULL DEFAULT 0,
        url_changes TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE entries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so the FTS watermark holds
        id TEXT NOT NULL UNIQUE,
        canonical TEXT NOT NULL,
        title TEXT NOT NULL,
        link TEXT NOT NULL,
        summary_html TEXT NOT NULL,
        summary_text TEXT NOT NULL,
        authors TEXT NOT NULL,       -- JSON list
        categories TEXT NOT NULL,    -- JSON list
        published TEXT NOT NULL,     -- ISO 8601 UTC
        fetched TEXT NOT NULL,
        popularity INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX entries_published ON entries(published);
    CREATE INDEX entries_fetched ON entries(fetched);
    CREATE TABLE keys (
        key TEXT PRIMARY KEY,
        entry_id TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE sightings (
        feed TEXT NOT NULL,
        ident TEXT NOT NULL,
        entry_id TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        PRIMARY KEY (feed, ident)
    ) WITHOUT ROWID;
    CREATE INDEX sightings_entry ON sightings(entry_id);
    CREATE TABLE poll_log (
        id INTEGER PRIMARY KEY,
        feed TEXT NOT NULL,
        started TEXT NOT NULL,
        seconds REAL NOT NULL,
        status TEXT NOT NULL,
        http_status INTEGER NOT NULL,
        new INTEGER NOT NULL,
        seen INTEGER NOT NULL,
        error TEXT NOT NULL,
        warning TEXT NOT NULL
    );
    CREATE INDEX poll_log_feed ON poll_log(feed, started);
    CREATE VIRTUAL TABLE entries_fts USING fts5(
        title, summary_text, content='entries', content_rowid='seq'
    );
    -- Full-text indexing is deferred, as in the `reader` library: polling does not pay for
    -- tokenizing; search() first indexes the rows above the watermark in one INSERT ... SELECT.
    CREATE TABLE fts_state (indexed_upto INTEGER NOT NULL);
    INSERT INTO fts_state VALUES (0);
    CREATE TRIGGER entries_ad AFTER DELETE ON entries
    WHEN old.seq <= (SELECT indexed_upto FROM fts_state) BEGIN
        INSERT INTO entries_fts(entries_fts, rowid, title, summary_text)
        VALUES ('delete', old.seq, old.title, old.summary_text);
    END;
    CREATE TRIGGER entries_au AFTER UPDATE OF title, summary_text ON entries
    WHEN old.seq <= (SELECT indexed_upto FROM fts_state) BEGIN
        INSERT INTO entries_fts(entries_fts, rowid, title, summary_text)
        VALUES ('delete', old.seq, old.title, old.summary_text);
        INSERT INTO entries_fts(rowid, title, summary_text)
        VALUES (new.seq, new.title, new.summary_text);
    END;
    """,
    # 2: ranking — reader feedback and cached sentence embeddings
    """
    CREATE TABLE feedback (
        reader TEXT NOT NULL,
        entry_id TEXT NOT NULL,
        vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
        at TEXT NOT NULL,
        PRIMARY KEY (reader, entry_id)
    ) WITHOUT ROWID;
    CREATE TABLE libraries (
        path TEXT PRIMARY KEY,
        stamp TEXT NOT NULL,         -- file mtime and size, and the tokenizer's version
        data TEXT NOT NULL           -- JSON: papers' titles and texts, warnings, term counts
    ) WITHOUT ROWID;
    CREATE TABLE embeddings (
        key TEXT PRIMARY KEY,        -- sha1 of model name and text: entries and seed papers alike
        vector BLOB NOT NULL         -- float32, L2-normalized
    ) WITHOUT ROWID;
    """,
    # 3: an entry's tokens, computed the first time it is ranked (lexical.encode_analysis)
    """
    ALTER TABLE entries ADD COLUMN analysis TEXT NOT NULL DEFAULT '';
    """,
    # 4: delivery — one row per reader and local date: the ledger that makes sends exactly-once
    """
    CREATE TABLE deliveries (
        reader TEXT NOT NULL,
        day TEXT NOT NULL,               -- the reader's local date, YYYY-MM-DD
        state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
        message_id TEXT NOT NULL DEFAULT '',
        window_end TEXT NOT NULL DEFAULT '',   -- the next digest starts here
        attempts INTEGER NOT NULL DEFAULT 0,
        items INTEGER NOT NULL DEFAULT 0,
        detail TEXT NOT NULL DEFAULT '',       -- last error, or why skipped / unconfirmed
        updated_at TEXT NOT NULL,
        PRIMARY KEY (reader, day)
    ) WITHOUT ROWID;
    CREATE TABLE readers (
        name TEXT PRIMARY KEY,
        unsubscribed_at TEXT NOT NULL DEFAULT '',
        failing_since TEXT NOT NULL DEFAULT '',  -- a permanent (5xx) refusal of their address
        last_error TEXT NOT NULL DEFAULT ''
    ) WITHOUT ROWID;
    """,
    # 5: the term dictionary. Every token and word the ranker has seen gets a small integer
    # once, for good (ids never change or get reused), so an entry's analysis and a library's
    # term counts are stored as int32 arrays and a pool's TF-IDF matrix is built by numpy
    # alone, without a dict lookup per token. Older text analyses are recomputed.
    """
    CREATE TABLE terms (id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE);
    UPDATE entries SET analysis = '';
    DELETE FROM libraries;
    """,
    # 6: what each digest held (compose.Digest.to_json), written before it is sent, so the
    # archive and `render --date` show a past digest exactly as emailed, not re-ranked today.
    """
    ALTER TABLE deliveries ADD COLUMN content TEXT NOT NULL DEFAULT '';
    """,
    # 7: exactly once under concurrency (ledger.py): a row is keyed by channel too, names its
    # owner and lease, has the state 'unconfirmed' (was 'sent' with an "unconfirmed" detail) and
    # a retry time for failed rows. SQLite cannot change a CHECK, so the table is rebuilt.
    """
    CREATE TABLE deliveries_v7 (
        reader TEXT NOT NULL,
        day TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT 'email',
        state TEXT NOT NULL CHECK (state IN
            ('pending', 'sending', 'sent', 'unconfirmed', 'failed', 'skipped')),
        owner TEXT NOT NULL DEFAULT '',
        lease_until TEXT NOT NULL DEFAULT '',
        retry_at TEXT NOT NULL DEFAULT '',
        message_id TEXT NOT NULL DEFAULT '',
        window_end TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        items INTEGER NOT NULL DEFAULT 0,
        detail TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL,
        content TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (reader, day, channel)
    ) WITHOUT ROWID;
    INSERT INTO deliveries_v7 (reader, day, state, message_id, window_end, attempts, items,
                               detail, updated_at, content)
        SELECT reader, day, CASE WHEN state = 'sent' AND detail LIKE 'unconfirmed%'
                                 THEN 'unconfirmed' ELSE state END,
               message_id, window_end, attempts, items, detail, updated_at, content
        FROM deliveries;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_v7 RENAME TO deliveries;
    CREATE INDEX deliveries_state ON deliveries(state);
    CREATE INDEX deliveries_owner ON deliveries(owner) WHERE owner != '';
    """,
    # 8: archive search (search.py) over authors too, and stemmed ("transfers" finds
    # "transfer"). The index is rebuilt lazily: the watermark goes back to 0.
    """
    DROP TRIGGER entries_ad;
    DROP TRIGGER entries_au;
    DROP TABLE entries_fts;
    CREATE VIRTUAL TABLE entries_fts USING fts5(
        title, authors, summary_text, content='entries', content_rowid='seq',
        tokenize='porter unicode61 remove_diacritics 2'
    );
    UPDATE fts_state SET indexed_upto = 0;
    CREATE TRIGGER entries_ad AFTER DELETE ON entries
    WHEN old.seq <= (SELECT indexed_upto FROM fts_state) BEGIN
        INSERT INTO entries_fts(entries_fts, rowid, title, authors, summary_text)
        VALUES ('delete', old.seq, old.title, old.authors, old.summary_text);
    END;
    CREATE TRIGGER entries_au AFTER UPDATE OF title, authors, summary_text ON entries
    WHEN old.seq <= (SELECT indexed_upto FROM fts_state) BEGIN
        INSERT INTO entries_fts(entries_fts, rowid, title, authors, summary_text)
        VALUES ('delete', old.seq, old.title, old.authors, old.summary_text);
        INSERT INTO entries_fts(rowid, title, authors, summary_text)
        VALUES (new.seq, new.title, new.authors, new.summary_text);
    END;
    """,
]

_ENTRY_COLUMNS = ("id", "title", "link", "summary_text", "authors", "categories", "published",
                  "fetched", "popularity", "analysis")

_FEED_FIELDS = [f.name for f in fields(FeedState)]
_DELIVERY_COLUMNS = ", ".join(f.name for f in fields(Delivery))


class Store:
    """The database. Construct with a path; `:memory:` is not supported (WAL needs a file)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():  # the operator's alone; SQLite gives -wal and -shm the
                with contextlib.suppress(FileExistsError):  # same mode as the database file
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self.db = sqlite_utils.Database(self.path)
            conn = self.db.conn
            conn.execute("PRAGMA busy_timeout = 10000")  # another process may be writing
            _wal(conn)
            # Write transactions take the write lock when they begin, waiting for it under the
            # busy timeout. A deferred one that read first cannot upgrade once another
            # connection has written, and fails at once with "database is locked" (seen with
            # `digest run` polling and sending at the same time).
            conn.isolation_level = "IMMEDIATE"
            conn.execute("PRAGMA synchronous = NORMAL")  # durable enough under WAL, much faster
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot use the database {str(self.path)!r} ({e}); point "
                             "[digest] database at a digest database or a new file.") from None
        except OSError as e:
            raise StoreError(f"cannot create the database {str(self.path)!r} ({e.strerror}); "
                             "check the directory and its permissions.") from None

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema -----------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        if self.schema_version == len(MIGRATIONS):
            return
        # Under the write lock, and the version read again inside it: two processes opening a
        # new database at once must not both run a migration. Statement by statement, since
        # executescript would commit the transaction first.
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = self.schema_version
            if current > len(MIGRATIONS):
                raise StoreError(f"the database {str(self.path)!r} has schema version {current},"
                                 f" newer than this digest understands ({len(MIGRATIONS)}); "
                                 "upgrade digest.")
            for version in range(current + 1, len(MIGRATIONS) + 1):
                for statement in _statements(MIGRATIONS[version - 1]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version}")
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

    # -- feeds ------------------------------------------------------------------------------

    def sync_feeds(self, configured: dict[str, str]) -> None:
        """Make the feeds table match the config: {name: configured url or path}. A changed
        configured URL resets the feed's state, since it is a different feed now."""
        with self.db.conn:
            for name, url in configured.items():
                row = self.db.execute("SELECT config_url FROM feeds WHERE name = ?",
                                      [name]).fetchone()
                if row is None:
                    self.db.execute("INSERT INTO feeds (name, url, config_url) VALUES (?, ?, ?)",
                                    [name, url, url])
                elif row[0] != url:
                    self.db.execute(
                        "UPDATE feeds SET url = ?, config_url = ?, etag = '', last_modified = '',"
                        " active = 1, error_count = 0, last_error = '', failing_since = '',"
                        " next_poll_at = '', redirect_to = '', redirect_seen = 0 WHERE name = ?",
                        [url, url, name])

    def feed_state(self, name: str) -> FeedState:
        row = self.db.execute(f"SELECT {', '.join(_FEED_FIELDS)} FROM feeds WHERE name = ?",
                              [name]).fetchone()
        if row is None:
            raise StoreError(f"feed {name!r} is not in the database; run `digest poll` first.")
        state = FeedState(**dict(zip(_FEED_FIELDS, row, strict=True)))
        state.active = bool(state.active)
        return state

    def feed_states(self) -> list[FeedState]:
        names = [r[0] for r in self.db.execute("SELECT name FROM feeds ORDER BY name")]
        return [self.feed_state(n) for n in names]

    def _save_feed_state(self, state: FeedState) -> None:
        values = asdict(state)
        values["active"] = int(state.active)
        sets = ", ".join(f"{k} = :{k}" for k in _FEED_FIELDS if k != "name")
        self.db.execute(f"UPDATE feeds SET {sets} WHERE name = :name", values)

    def feed_totals(self) -> dict[str, int]:
        """Entries ever seen per feed."""
        return dict(self.db.execute("SELECT feed, count(*) FROM sightings GROUP BY feed"))

    # -- entries ----------------------------------------------------------------------------

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
            known = dict(self._in_query(
                "SELECT ident, entry_id FROM sightings WHERE feed = ? AND ident IN ({})",
                [feed], idents))
            keys = {e.ident: e.keys or (f"feed:{feed}:{e.ident}",) for e in entries}
            key_ids = dict(self._in_query("SELECT key, entry_id FROM keys WHERE key IN ({})", [],
                                          list({k for ks in keys.values() for k in ks})))
            # The strong keys (arXiv id, DOI) of every entry a title might join.
            strong: dict[str, set[str]] = {}
            for key, entry_id in self._in_query(
                    "SELECT key, entry_id FROM keys WHERE entry_id IN ({}) AND "
                    "(key LIKE 'arxiv:%' OR key LIKE 'doi:%')", [], list(set(key_ids.values()))):
                strong.setdefault(entry_id, set()).add(key)
            new_rows, sightings, new_keys = [], [], []
            bumps: dict[str, int] = {}
            for e in entries:
                if e.ident in known:
                    if e.popularity:
                        bumps[known[e.ident]] = max(bumps.get(known[e.ident], 0), e.popularity)
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
                elif e.popularity:
                    bumps[entry_id] = max(bumps.get(entry_id, 0), e.popularity)
                for k in own:
                    if k not in key_ids:
                        key_ids[k] = entry_id
                        new_keys.append((k, entry_id))
                strong.setdefault(entry_id, set()).update(mine)
                known[e.ident] = entry_id
                sightings.append((feed, e.ident, entry_id, fetched_s))
            self.db.conn.executemany(_INSERT_ENTRY, new_rows)
            self.db.conn.executemany("INSERT OR IGNORE INTO keys VALUES (?, ?)", new_keys)
            self.db.conn.executemany("INSERT OR IGNORE INTO sightings VALUES (?, ?, ?, ?)",
                                     sightings)
            self.db.conn.executemany(
                "UPDATE entries SET popularity = ? WHERE id = ? AND popularity < ?",
                [(p, i, p) for i, p in bumps.items()])
        return len(new_rows), len(entries) - len(new_rows)

    def _in_query(self, sql: str, params: list, values: list[str]) -> list[tuple]:
        out: list[tuple] = []
        for i in range(0, len(values), 900):  # stay under SQLite's bound-variable limit
            chunk = values[i:i + 900]
            out.extend(self.db.execute(sql.format(",".join("?" * len(chunk))), params + chunk))
        return out

    def count_entries(self) -> int:
        return self.db.execute("SELECT count(*) FROM entries").fetchone()[0]

    def entry(self, entry_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM entries WHERE id = ?", [entry_id]).fetchone()
        if row is None:
            return None
        cols = [c[0] for c in self.db.execute("SELECT * FROM entries LIMIT 0").description]
        out = dict(zip(cols, row, strict=True))
        out["authors"] = json.loads(out["authors"])
        out["categories"] = json.loads(out["categories"])
        out["sources"] = self.sources(entry_id)
        return out

    def entry_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM entries ORDER BY published, id")]

    def sources(self, entry_id: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT feed FROM sightings WHERE entry_id = ? ORDER BY first_seen, feed",
            [entry_id])]

    def index_search(self) -> int:
        """Bring the full-text index up to date; returns the number of rows indexed."""
        with self.db.conn:
            upto = self.db.execute("SELECT indexed_upto FROM fts_state").fetchone()[0]
            top = self.db.execute("SELECT coalesce(max(seq), 0) FROM entries").fetchone()[0]
            if top <= upto:
                return 0
            cur = self.db.execute(
                "INSERT INTO entries_fts(rowid, title, authors, summary_text) SELECT seq, title,"
                " authors, summary_text FROM entries WHERE seq > ? AND seq <= ?", [upto, top])
            self.db.execute("UPDATE fts_state SET indexed_upto = ?", [top])
        return cur.rowcount

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

    def digests_holding(self, entry_ids: list[str], reader: str | None = None
                        ) -> dict[str, list[tuple[str, str]]]:
        """For each entry, the (reader, day) of the delivered digests that held it."""
        out: dict[str, list[tuple[str, str]]] = {i: [] for i in entry_ids}
        if not entry_ids:
            return out
        sql = ("SELECT reader, day, content FROM deliveries WHERE state IN ('sent', "
               "'unconfirmed') AND content != ''" + (" AND reader = ?" if reader else "") +
               " AND (" + " OR ".join("instr(content, ?) > 0" for _ in entry_ids) + ")"
               " ORDER BY day DESC, reader")
        for who, day, content in self.db.execute(
                sql, ([reader] if reader else []) + [json.dumps(i) for i in entry_ids]):
            for i in entry_ids:
                if json.dumps(i) in content and (who, day) not in out[i]:
                    out[i].append((who, day))
        return out

    def entries_for_ranking(self, since: datetime | None = None,
                            ids: list[str] | None = None) -> list[dict]:
        """Entries first fetched after `since` (all when None), or those with the given ids, with
        their feeds as `sources`."""
        cols = ", ".join(f"e.{c}" for c in _ENTRY_COLUMNS)
        sql = (f"SELECT {cols}, (SELECT group_concat(DISTINCT s.feed) FROM sightings s"
               " WHERE s.entry_id = e.id) FROM entries e")
        if ids is not None:
            rows = self._in_query(sql + " WHERE e.id IN ({})", [], ids)
        elif since is not None:
            rows = self.db.execute(sql + " WHERE e.fetched > ? ORDER BY e.seq", [iso_utc(since)])
        else:
            rows = self.db.execute(sql + " ORDER BY e.seq")
        out = []
        for r in rows:
            d = dict(zip(_ENTRY_COLUMNS, r, strict=False))
            d["authors"] = json.loads(d["authors"])
            d["categories"] = json.loads(d["categories"])
            d["sources"] = sorted((r[-1] or "").split(",")) if r[-1] else []
            out.append(d)
        return out

    def term_ids(self, strings: Iterable[str], add: bool = True) -> dict[str, int]:
        """Ids of `strings` in the term dictionary; with `add`, the missing ones are added
        (without, they are left out: a phrase word never seen cannot match anything)."""
        wanted = sorted(set(strings))
        sql = "SELECT term, id FROM terms WHERE term IN ({})"
        ids = dict(self._in_query(sql, [], wanted))
        missing = [t for t in wanted if t not in ids]
        if add and missing:
            with self.db.conn:  # OR IGNORE: another process may have added some meanwhile
                self.db.conn.executemany("INSERT OR IGNORE INTO terms (term) VALUES (?)",
                                         [(t,) for t in missing])
            ids.update(self._in_query(sql, [], missing))
        return ids

    def save_analysis(self, items: list[tuple[str, bytes]]) -> None:
        """Store (entry id, lexical.encode_analysis) pairs computed by the ranker."""
        with self.db.conn:
            self.db.conn.executemany("UPDATE entries SET analysis = ? WHERE id = ?",
                                     [(a, i) for i, a in items])

    # -- delivery ledger (rules in ledger.py) ------------------------------------------------

    def delivery(self, reader: str, day: str, channel: str = EMAIL) -> Delivery | None:
        rows = self._deliveries("WHERE reader = ? AND day = ? AND channel = ?",
                                [reader, day, channel])
        return rows[0] if rows else None

    def deliveries(self, reader: str | None = None, limit: int = 200) -> list[Delivery]:
        return self._deliveries(("WHERE reader = ? " if reader else "")
                                + "ORDER BY day DESC, reader LIMIT ?",
                                ([reader] if reader else []) + [limit])

    def delivered(self, reader: str, limit: int = 30) -> list[tuple[str, str]]:
        """(day, when) of the reader's emailed digests, newest first."""
        return [tuple(r) for r in self.db.execute(
            "SELECT day, updated_at FROM deliveries WHERE reader = ? AND channel = 'email' AND "
            "state IN ('sent', 'unconfirmed') AND content != '' ORDER BY day DESC LIMIT ?",
            [reader, limit])]

    def deliveries_in(self, states: tuple[str, ...], day: str | None = None) -> list[Delivery]:
        """Every row in these states (of `day`, or of any date), however old: a capped
        recent-first scan could miss one."""
        where = f"WHERE state IN ({','.join('?' * len(states))})"
        return self._deliveries(where + (" AND day = ?" if day else "") + " ORDER BY day, reader",
                                list(states) + ([day] if day else []))

    def lost_deliveries(self, now: datetime) -> list[Delivery]:
        """Digests that may never have arrived and that nothing sends by itself (ledger:
        Delivery.lost), of any age."""
        return [r for r in self.deliveries_in((UNCONFIRMED, SENDING)) if r.lost(now)]

    def _deliveries(self, tail: str, params: list) -> list[Delivery]:
        cur = self.db.execute(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries {tail}", params)
        return [Delivery(*r) for r in cur.fetchall()]

    def sent_contents(self, days: list[str]) -> dict[tuple[str, str], str]:
        """(reader, day) → what the digest held, for the digests of `days` that went out (or
        may have: unconfirmed)."""
        return {(r, d): c for r, d, c in self._in_query(
            "SELECT reader, day, content FROM deliveries WHERE state IN ('sent', 'unconfirmed')"
            " AND content != '' AND channel = 'email' AND day IN ({})", [], sorted(set(days)))}

    def claim_deliveries(self, keys: list[tuple[str, str]], owner: str, now: datetime,
                         states: tuple[str, ...] = (PENDING, FAILED),
                         channel: str = EMAIL) -> set[tuple[str, str]]:
        """Take the (reader, day) rows that are in `states` and held by no live run (a row
        not there yet is created 'pending'), for `owner` until now + LEASE. One write
        transaction: of two runs claiming at once, each row goes to exactly one. Returns the
        keys taken."""
        at, until = iso_utc(now), iso_utc(now + LEASE)
        taken = set()
        marks = ",".join("?" * len(states))
        with self.db.conn:
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO deliveries (reader, day, channel, state, updated_at) "
                "VALUES (?, ?, ?, 'pending', ?)", [(r, d, channel, at) for r, d in keys])
            for reader, day in keys:
                cur = self.db.execute(
                    "UPDATE deliveries SET owner = ?, lease_until = ?, updated_at = ? "
                    "WHERE reader = ? AND day = ? AND channel = ? "
                    f"AND state IN ({marks}) AND (owner = '' OR owner = ? OR lease_until <= ?)",
                    [owner, until, at, reader, day, channel, *states, owner, at])
                if cur.rowcount == 1:
                    taken.add((reader, day))
        return taken

    def advance(self, reader: str, day: str, owner: str, state: str, now: datetime,
                channel: str = EMAIL, **fields) -> bool:
        """Move an owned row to `state` and commit at once ('sending' must be on disk before
        the message goes out, 'sent' right after the server accepts). A settled state lets
        go of the row. False, and nothing written, when `owner` no longer holds it."""
        cols = {"state": state, "updated_at": iso_utc(now), **fields}
        if state not in (PENDING, SENDING):
            cols |= {"owner": "", "lease_until": ""}
        sets = ", ".join(f"{k} = :{k}" for k in cols)
        with self.db.conn:
            cur = self.db.execute(
                f"UPDATE deliveries SET {sets} WHERE reader = :reader AND day = :day "
                "AND channel = :channel AND owner = :me",
                {**cols, "reader": reader, "day": day, "channel": channel, "me": owner})
        return cur.rowcount == 1

    def settle_orphan(self, row: Delivery, state: str, now: datetime, detail: str) -> bool:
        """Resolve a row left in 'sending' by a run that is gone, if nobody did meanwhile."""
        with self.db.conn:
            cur = self.db.execute(
                "UPDATE deliveries SET state = ?, detail = ?, owner = '', lease_until = '', "
                "updated_at = ? WHERE reader = ? AND day = ? AND channel = ? AND state = 'sending'"
                " AND owner = ? AND lease_until <= ?",
                [state, detail, iso_utc(now), row.reader, row.day, row.channel, row.owner,
                 iso_utc(now)])
        return cur.rowcount == 1

    def renew_leases(self, owner: str, now: datetime) -> int:
        """Extend every lease `owner` holds to now + LEASE (its heartbeat)."""
        with self.db.conn:
            cur = self.db.execute(
                "UPDATE deliveries SET lease_until = ? WHERE owner = ? AND state IN "
                "('pending', 'sending')", [iso_utc(now + LEASE), owner])
        return cur.rowcount

    def owners(self) -> list[str]:
        """The runs holding rows now (or that did, their leases not yet lapsed)."""
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT owner FROM deliveries WHERE owner != ''")]

    def lapse(self, owner: str, now: datetime) -> int:
        """End `owner`'s leases now: it is known to be dead (see send.reap_dead_owners)."""
        with self.db.conn:
            cur = self.db.execute("UPDATE deliveries SET lease_until = ? WHERE owner = ? AND "
                                  "lease_until > ?", [iso_utc(now), owner, iso_utc(now)])
        return cur.rowcount

    def release(self, owner: str) -> int:
        """Let go of the rows `owner` claimed and did not get to, so the next run may take them
        at once rather than after the lease. Rows in 'sending' stay held: they lapse."""
        with self.db.conn:
            cur = self.db.execute("UPDATE deliveries SET owner = '', lease_until = '' WHERE "
                                  "owner = ? AND state IN ('pending', 'failed')", [owner])
        return cur.rowcount

    def record_delivery(self, reader: str, day: str, state: str, now: datetime,
                        channel: str = EMAIL, **fields) -> bool:
        """Settle an unowned row that no run holds (the scheduler's "missed" mark). False when
        another run holds or settled it."""
        cols = {"state": state, "updated_at": iso_utc(now), **fields}
        sets = ", ".join(f"{k} = :{k}" for k in cols)
        with self.db.conn:
            self.db.execute("INSERT OR IGNORE INTO deliveries (reader, day, channel, state, "
                            "updated_at) VALUES (?, ?, ?, 'pending', ?)",
                            [reader, day, channel, iso_utc(now)])
            cur = self.db.execute(
                f"UPDATE deliveries SET {sets} WHERE reader = :reader AND day = :day AND "
                "channel = :channel AND state IN ('pending', 'failed') AND "
                "(owner = '' OR lease_until <= :at)",
                {**cols, "reader": reader, "day": day, "channel": channel, "at": iso_utc(now)})
        return cur.rowcount == 1

    def last_delivered(self) -> dict[str, datetime]:
        """Reader → end of the window of their last digest sent (or maybe sent) or skipped:
        the next one starts there."""
        rows = self.db.execute("SELECT reader, max(window_end) FROM deliveries WHERE state IN "
                               "('sent', 'unconfirmed', 'skipped') AND window_end != '' "
                               "AND channel = 'email' GROUP BY reader")
        return {r: datetime.fromisoformat(t) for r, t in rows}

    def reader_states(self) -> dict[str, dict]:
        cur = self.db.execute("SELECT * FROM readers")
        cols = [c[0] for c in cur.description]
        return {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}

    def set_reader(self, name: str, **fields) -> None:
        with self.db.conn:
            self.db.execute("INSERT OR IGNORE INTO readers (name) VALUES (?)", [name])
            sets = ", ".join(f"{k} = :{k}" for k in fields)
            self.db.execute(f"UPDATE readers SET {sets} WHERE name = :name", {**fields, "name": name})

    # -- feedback ---------------------------------------------------------------------------

    def set_vote(self, reader: str, entry_id: str, vote: int, at: datetime) -> None:
        """Record a reader's 👍 (+1) or 👎 (-1); the latest vote on an entry wins."""
        with self.db.conn:
            self.db.execute("INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?)",
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

    # -- seed-library cache -----------------------------------------------------------------

    def cached_library(self, path: str, stamp: str) -> str | None:
        row = self.db.execute("SELECT data FROM libraries WHERE path = ? AND stamp = ?",
                              [path, stamp]).fetchone()
        return row[0] if row else None

    def save_library(self, path: str, stamp: str, data: str) -> None:
        with self.db.conn:
            self.db.execute("INSERT OR REPLACE INTO libraries VALUES (?, ?, ?)", [path, stamp, data])

    # -- embeddings cache -------------------------------------------------------------------

    def embeddings(self, keys: list[str]) -> dict[str, bytes]:
        return dict(self._in_query("SELECT key, vector FROM embeddings WHERE key IN ({})", [],
                                   keys))

    def save_embeddings(self, items: dict[str, bytes]) -> None:
        with self.db.conn:
            self.db.conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?)",
                                     list(items.items()))

    def prune(self, before: datetime) -> int:
        """Delete entry content published and fetched before `before`. Identities (sightings,
        keys) stay, so a pruned item that reappears in a feed is still recognised as old."""
        cutoff = iso_utc(before)
        with self.db.conn:
            cur = self.db.execute(
                "DELETE FROM entries WHERE published < ? AND fetched < ?", [cutoff, cutoff])
        return cur.rowcount

    # -- poll log ---------------------------------------------------------------------------

    def record_poll(self, state: FeedState, result: PollResult, started: datetime) -> None:
        """Save a feed's new state and its poll-log row in one transaction."""
        with self.db.conn:
            self._save_feed_state(state)
            self.db.execute(
                "INSERT INTO poll_log (feed, started, seconds, status, http_status, new, seen,"
                " error, warning) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [result.feed, iso_utc(started), round(result.seconds, 4), result.status,
                 result.http_status, result.new, result.seen, result.error, result.warning])

    def poll_log(self, feed: str | None = None, limit: int = 50) -> list[dict]:
        sql = "SELECT * FROM poll_log" + (" WHERE feed = ?" if feed else "")
        cur = self.db.execute(sql + " ORDER BY id DESC LIMIT ?", ([feed] if feed else []) + [limit])
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _wal(conn: sqlite3.Connection, seconds: float = 10) -> None:
    """Switch to WAL (persistent: once is enough for every later connection). On a new file
    that another connection is switching at the same moment, SQLite answers "database is
    locked" at once instead of waiting under the busy timeout; so wait here, briefly."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (a trigger body holds semicolons of its own)."""
    out, buf = [], ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                out.append(buf.strip())
            buf = ""
    return out


_INSERT_ENTRY = ("INSERT INTO entries (id, canonical, title, link, summary_html, summary_text, authors,"
                 " categories, published, fetched, popularity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


STRONG_KEYS = ("arxiv:", "doi:")


def _conflict(mine: set[str], theirs: set[str]) -> bool:
    """Two entries name different papers when they hold different keys of one strong kind."""
    return any(k.split(":", 1)[0] == t.split(":", 1)[0] and k != t for k in mine for t in theirs)


def _entry_row(entry_id: str, e: Entry, fetched: str) -> tuple:
    return (entry_id, e.canonical, e.title, e.link, e.summary_html, e.summary_text,
            json.dumps(e.authors, ensure_ascii=False), json.dumps(e.categories, ensure_ascii=False),
            iso_utc(e.published), fetched, e.popularity)
