"""Read-only means read-only: every page of the preview (GET and HEAD) and every read-only
command (rank, render, check, feeds, search) leave what a user can see in the database exactly
as it was. Only caches of derived data (terms, parsed libraries, embeddings, token analyses,
abstracts' sentences, the search index) may be filled. Feed rows, the ledger and votes change only by poll, send,
run and the POST endpoints."""

from __future__ import annotations

import sqlite3

import httpx
import time_machine
from test_render import NORMAL, NOW, write_project

from digest.links import Links

# and entries.analysis, entries.sentences, entries_fts*
CACHES = {"terms", "libraries", "embeddings", "embedding_claims", "fts_state"}


def snapshot(path) -> dict[str, list]:
    """Every row of every table a user can see, and the schema, exactly."""
    conn = sqlite3.connect(path)
    try:
        out = {"schema": sorted(conn.execute("SELECT type, name, sql FROM sqlite_master"))}
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            if table in CACHES or table.startswith(("entries_fts", "sqlite_")):
                continue
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] not in ("analysis", "sentences")]
            out[table] = sorted(conn.execute(f"SELECT {', '.join(cols)} FROM {table}"), key=repr)
        return out
    finally:
        conn.close()


def prepared(project, monkeypatch):
    """A database with feed rows, a delivered digest and a vote, then a config that moved one
    feed and added another: a view that followed the config would write the feeds table."""
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    write_project(project, NORMAL)
    with time_machine.travel(NOW, tick=False):
        assert project.run("poll").exit_code == 1  # the local files are empty: failing feeds
        assert project.run("send", "ada", "--date", "2026-11-21").exit_code == 0
    with project.store() as s:
        some = s.entry_ids()[0]
        s.set_vote("ada", some, 1, NOW)
    (project.root / "blog2.xml").write_text("")
    project.path.write_text(project.path.read_text().replace('"blog.xml"', '"blog2.xml"')
                            + '\n[feeds.new]\npath = "new.xml"\n')
    return project.root / "digest.db", some


def test_every_preview_page_leaves_the_database_as_it_was(project, live_preview, monkeypatch):
    db, entry_id = prepared(project, monkeypatch)
    before = snapshot(db)
    base = live_preview(project, now=lambda: NOW)
    links = Links("https://digest.example.org", b"test-secret")
    signed = [links.feed("ada"), links.feedback("ada", entry_id, "up"),
              links.feedback("ada", entry_id, "down"), links.unsubscribe("ada"),
              links.view("ada", "2026-11-22"), links.reader("ada")]
    pages = ["/", "/health", "/archive", "/search?q=style", "/search?q=style&reader=ada",
             "/search?q=%22unclosed", "/digest/ada/2026-11-22", "/digest/ada/2026-11-22.txt",
             "/digest/ada/2026-11-21", "/digest/ada/2026-13-45", "/digest/grace/2026-11-22",
             "/feed/ada.atom?s=wrong", "/reader/ada?s=wrong"] + [u.removeprefix("https://digest.example.org") for u in signed]
    seen = set()
    for page in pages:
        for method in ("GET", "HEAD"):
            r = httpx.request(method, base + page, timeout=60)
            assert r.status_code < 500, (method, page, r.status_code)
            seen.add(r.status_code)
    assert {200, 400, 404} <= seen  # real pages, and refusals, were both exercised
    assert snapshot(db) == before


def test_read_only_commands_leave_the_database_as_it_was(project, monkeypatch):
    db, _ = prepared(project, monkeypatch)
    before = snapshot(db)
    with time_machine.travel(NOW, tick=False):
        for args in (["rank", "ada"], ["rank", "ada", "--all"], ["rank", "ada", "--json"],
                     ["render", "ada"], ["render", "ada", "--format", "text"],
                     ["render", "ada", "--format", "eml"], ["render", "ada", "--format", "atom"],
                     ["render", "ada", "--date", "2026-11-21"], ["check"], ["feeds"],
                     ["search", "style"], ["send", "ada", "--dry-run"]):
            r = project.run(*args)
            assert r.exit_code == 0, (args, r.output)
    assert snapshot(db) == before
    # The snapshot does see writes: polling makes the feeds table follow the moved config.
    with time_machine.travel(NOW, tick=False):
        project.run("poll")
    after = snapshot(db)
    assert after["feeds"] != before["feeds"] and after["poll_log"] != before["poll_log"]
