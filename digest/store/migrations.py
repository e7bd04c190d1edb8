"""The schema, as numbered migrations: a database at version N has run the first N, in
one transaction each (base.Database._migrate). Never edit one that has shipped; add one.

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

import sqlite3

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
    # 6: what each digest held (models.Digest.to_json), written before it is sent, so the
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
    # 9: richer items. An entry's arXiv version and when a newer one was first seen
    # (`revised`: the reader who was sent or liked it hears of it once); Hugging Face's AI
    # summary and links to code and data; the version a vote was cast on; a reader's mutes;
    # and the index a feed's calendar reads (the newest identity it carried, per day).
    """
    ALTER TABLE entries ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE entries ADD COLUMN revised TEXT NOT NULL DEFAULT '';
    ALTER TABLE entries ADD COLUMN tldr TEXT NOT NULL DEFAULT '';
    ALTER TABLE entries ADD COLUMN code TEXT NOT NULL DEFAULT '';
    ALTER TABLE entries ADD COLUMN data TEXT NOT NULL DEFAULT '';
    CREATE INDEX entries_revised ON entries(revised) WHERE revised != '';
    ALTER TABLE feedback ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE mutes (
        reader TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('author', 'phrase')),
        value TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (reader, kind, value)
    ) WITHOUT ROWID;
    CREATE INDEX sightings_feed_seen ON sightings(feed, first_seen);
    """,
    # 10: an abstract's sentences as the highlight reads them (sentences.encode), stored the
    # first time the entry is shown to a reader: a cache, like `analysis`.
    """
    ALTER TABLE entries ADD COLUMN sentences TEXT NOT NULL DEFAULT '';
    """,
    # 11: texts a run is embedding now (semantic.Embedder): another run (a send beside
    # `digest warm`) waits for them instead of embedding them a second time. A row lives
    # from its claim to its vector's save, or to its lease's end if the run died.
    """
    CREATE TABLE embedding_claims (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        until TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
]


def statements(script: str) -> list[str]:
    """Split a migration into statements (a trigger body holds semicolons of its own)."""
    out, buf = [], ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                out.append(buf.strip())
            buf = ""
    return out

