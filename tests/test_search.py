"""Archive search through the CLI and the preview: phrases, authors, a reader's feeds, a date
filter, the digests that held a hit, and a stranger's punctuation."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from test_render import NORMAL, NOW, entry, write_project
from test_send import run

from digest.search import fts_query
from digest.store.migrations import MIGRATIONS

EXTRA = [
    ("blog", entry("scattered", "Transfer learning notes", "On style in prose, and transfer of weights.")),
    ("blog", entry("old", "An old post on style transfer", "Long ago.", published=NOW - timedelta(days=90))),
]


def search(project, *args):
    with time_machine.travel(NOW, tick=False):
        r = project.run("search", *args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_a_phrase_finds_the_phrase_not_its_words_scattered(project):
    write_project(project, NORMAL + EXTRA)
    titles = [h["title"] for h in search(project, '"style transfer"')]
    assert "Fast style transfer for video" in titles and "What we learned about style transfer" in titles
    assert "Transfer learning notes" not in titles
    # Without quotes both words must match, anywhere: the scattered one comes in, ranked lower.
    loose = [h["title"] for h in search(project, "style", "transfer")]
    assert "Transfer learning notes" in loose and loose.index("Transfer learning notes") > 0
    # Stemmed: "transfers" finds "transfer".
    assert "Fast style transfer for video" in [h["title"] for h in search(project, "transfers", "video")]


def test_author_search_date_filter_and_a_readers_feeds(project):
    write_project(project, NORMAL + EXTRA)
    assert [h["title"] for h in search(project, "--author", "Grace Hopper")] == ["Sparse attention for long documents"]
    recent = [h["title"] for h in search(project, '"style transfer"', "--since", "30d")]
    assert "An old post on style transfer" not in recent and recent
    # A reader who follows only the arXiv feed finds only arXiv entries.
    project.path.write_text(project.path.read_text() + '[users.bo]\nemail = "bo@example.org"\nfeeds = ["arxiv"]\n')
    mine = search(project, '"style transfer"', "--reader", "bo")
    assert mine and all(h["sources"] == ["arxiv"] for h in mine)


def test_hits_name_the_digests_that_held_them(project, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    config = write_project(project, NORMAL)
    run(project, config)
    (hit,) = [h for h in search(project, '"sparse attention"') if h["title"].startswith("Sparse")]
    assert hit["digests"] == [{"reader": "ada", "day": "2026-11-22"}]
    (bees,) = search(project, "bees")
    assert bees["digests"] == [{"reader": "ada", "day": "2026-11-22"}]  # in Trending


@pytest.mark.parametrize("query", ['long-context', 'C++', '"unbalanced', "NEAR(a b)", "a OR b", "*", "-x"])
def test_a_strangers_punctuation_is_searched_for_never_parsed(project, query):
    write_project(project, NORMAL)
    with time_machine.travel(NOW, tick=False):
        r = project.run("search", "--", query)
    assert "Traceback" not in r.output
    if fts_query(query):
        assert r.exit_code == 0, r.output
    else:
        assert r.exit_code == 1 and "the search has no words to look for" in r.output


def test_search_errors_are_one_sentence(project):
    write_project(project, NORMAL)
    r = project.run("search", "x", "--reader", "adaa")
    assert r.exit_code == 1 and "there is no reader named 'adaa' (did you mean 'ada'?)" in r.output
    r = project.run("search", "x", "--since", "soon")
    assert r.exit_code == 1 and "--since 'soon' is not a duration" in r.output


def test_the_preview_search_box_finds_and_links(project, live_preview):
    import httpx

    write_project(project, NORMAL)
    base = live_preview(project, now=lambda: NOW)
    index = httpx.get(base + "/")
    assert 'action="/search"' in index.text
    page = httpx.get(base + "/search", params={"q": '"style transfer"'})
    assert page.status_code == 200
    assert "Fast style transfer for video" in page.text and 'href="https://papers.example.org/st"' in page.text
    mine = httpx.get(base + "/search", params={"q": '"style transfer"', "reader": "ada"})
    assert "in ada's feeds" in mine.text and "Fast style transfer for video" in mine.text
    empty = httpx.get(base + "/search", params={"q": "?!"})
    assert empty.status_code == 200 and "no words to look for" in empty.text


def test_an_upgraded_database_indexes_its_old_entries_with_authors(project):
    """Migration 8 rebuilds the index over a database that already holds indexed entries."""
    write_project(project, NORMAL)
    with project.store() as s:
        s.index_search()
        for sql in ("DROP TABLE embedding_claims",  # undo migration 11
                    "ALTER TABLE entries DROP COLUMN sentences",  # and 10
                    "DROP INDEX entries_revised", "DROP INDEX sightings_feed_seen", "DROP TABLE mutes",
                    "ALTER TABLE feedback DROP COLUMN version",
                    *(f"ALTER TABLE entries DROP COLUMN {c}" for c in ("version", "revised", "tldr", "code", "data"))):
            s.db.execute(sql)  # and 9, then say 8 never ran: a database from before it
        s.db.execute("PRAGMA user_version = 7")
    with project.store() as s:
        assert s.schema_version == len(MIGRATIONS)
    assert [h["title"] for h in search(project, "--author", "Alan Turing")] == ["Sparse attention for long documents"]
    with project.store() as s:
        assert s.prune(NOW + timedelta(days=1000)) == 4  # the delete trigger on the new index
    assert search(project, "--author", "Alan Turing") == []


def test_indexing_that_fails_between_its_writes_leaves_nothing_half_done(project):
    """The index's rows and its high-water mark are written in one transaction: a failure
    after the rows (injected here as a trigger refusing the mark) takes the rows back, so
    the next search indexes them once, not twice."""
    import sqlite3

    write_project(project, NORMAL)
    with project.store() as s:
        s.db.conn.execute("CREATE TRIGGER refuse BEFORE UPDATE ON fts_state "
                          "BEGIN SELECT RAISE(ABORT, 'disk went away'); END")
        with pytest.raises(sqlite3.IntegrityError):
            s.index_search()
        def indexed(word):  # the index's own postings (its text is read from `entries`)
            return s.db.execute("SELECT count(*) FROM entries_fts WHERE entries_fts MATCH ?",
                                [word]).fetchone()[0]
        assert indexed("attention") == 0
        s.db.conn.execute("DROP TRIGGER refuse")
        assert s.index_search() == s.db.execute("SELECT count(*) FROM entries").fetchone()[0]
        assert indexed("attention") == 1
        s.db.execute("INSERT INTO entries_fts(entries_fts) VALUES ('integrity-check')")
    hits = search(project, "--author", "Alan Turing")
    assert [h["title"] for h in hits] == ["Sparse attention for long documents"]
