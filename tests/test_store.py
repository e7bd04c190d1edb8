import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from digest.errors import StoreError
from digest.normalize import make_entry
from digest.store import Store
from digest.store.migrations import MIGRATIONS

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def entry(guid="", link="", title="A reasonably long title about soil carbon", summary="text",
          popularity=0, published=T0):
    return make_entry(guid=guid, link=link, title=title, summary=summary, summary_is_html=False,
                      authors=["Ann Author"], categories=["c"], published=published, fetched=T0,
                      popularity=popularity)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "d.db") as s:
        yield s


def test_wal_busy_timeout_and_schema_version(store):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert store.schema_version == len(MIGRATIONS)


def test_vectors_are_read_through_a_memory_map_and_nothing_else_is(store):
    """The embeddings' reads map the file (fewer system calls for 90 MB of vectors); the other
    reads do not, so the RSS the benchmarks report is not the database's size."""
    def mapped():
        return store.db.execute("PRAGMA mmap_size").fetchone()[0]

    store.save_embeddings({"k": b"\0" * 8})
    assert mapped() == 0
    assert store.embeddings(["k", "other"]) == {"k": b"\0" * 8}
    assert mapped() > 0


def test_reopening_does_not_migrate_again(tmp_path):
    Store(tmp_path / "d.db").close()
    with Store(tmp_path / "d.db") as s:
        assert s.schema_version == len(MIGRATIONS)


def test_newer_schema_is_refused(tmp_path):
    conn = sqlite3.connect(tmp_path / "d.db")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this digest understands"):
        Store(tmp_path / "d.db")


def test_not_a_database_is_a_clear_error(tmp_path):
    (tmp_path / "d.db").write_text("this is a text file, not SQLite" * 100)
    with pytest.raises(StoreError, match="cannot use the database"):
        Store(tmp_path / "d.db")


def test_reinserting_a_seen_entry_is_a_noop(store):
    e = entry(guid="https://blog.example/1", link="https://blog.example/1")
    assert store.add_entries("blog", [e], T0) == (1, 0)
    assert store.add_entries("blog", [e], T0 + timedelta(hours=1)) == (0, 1)
    assert store.count_entries() == 1


def test_repeated_guid_with_distinct_links_are_distinct_entries(store):
    a = entry(guid="same-guid", link="https://blog.example/a", title="Post number one about rivers")
    b = entry(guid="same-guid", link="https://blog.example/b", title="Post number two about lakes")
    assert store.add_entries("blog", [a, b], T0) == (2, 0)


def test_guid_flipping_http_to_https_and_tracking_params_is_not_new(store):
    a = entry(guid="http://blog.example/p/1", link="http://blog.example/p/1")
    b = entry(guid="https://blog.example/p/1", link="https://blog.example/p/1?utm_source=rss")
    assert store.add_entries("blog", [a], T0) == (1, 0)
    assert store.add_entries("blog", [b], T0) == (0, 1)


def test_identity_falls_back_to_link_then_content_hash(store):
    by_link = entry(link="https://blog.example/only-link")
    by_hash = entry(title="No guid and no link but a body", summary="body")
    assert by_link.ident.startswith("link:") and by_hash.ident.startswith("hash:")
    assert store.add_entries("blog", [by_link, by_hash], T0) == (2, 0)
    assert store.add_entries("blog", [entry(link="https://blog.example/only-link"),
                                      entry(title="No guid and no link but a body",
                                            summary="body")], T0) == (0, 2)


def test_same_arxiv_paper_from_two_feeds_is_one_item(store):
    arxiv = entry(guid="oai:arXiv.org:2611.01234v1", link="https://arxiv.org/abs/2611.01234",
                  title="Tiny experts")
    hf = entry(guid="https://huggingface.co/papers/2611.01234",
               link="https://huggingface.co/papers/2611.01234", title="Tiny experts", popularity=57)
    assert store.add_entries("arxiv", [arxiv], T0) == (1, 0)
    assert store.add_entries("hf", [hf], T0) == (0, 1)
    (entry_id,) = store.entry_ids()
    stored = store.entry(entry_id)
    assert stored.sources == ["arxiv", "hf"]
    assert stored.popularity == 57
    # A later, lower count never lowers it; a higher one raises it.
    store.add_entries("hf", [entry(guid=hf.link, link=hf.link, popularity=12)], T0)
    assert store.entry(entry_id).popularity == 57
    hf_again = entry(guid="https://huggingface.co/papers/2611.01234",
                     link="https://huggingface.co/papers/2611.01234", popularity=80)
    store.add_entries("hf", [hf_again], T0)
    assert store.entry(entry_id).popularity == 80


def test_same_title_across_feeds_joins_but_short_titles_do_not(store):
    long_a = entry(link="https://a.example/x", title="Graph Neural Surrogates for Flood Forecasting")
    long_b = entry(link="https://b.example/y", title="Graph neural surrogates for flood forecasting!")
    short_a = entry(link="https://a.example/w", title="Weekly update")
    short_b = entry(link="https://b.example/w", title="Weekly update")
    assert store.add_entries("a", [long_a, short_a], T0) == (2, 0)
    assert store.add_entries("b", [long_b, short_b], T0) == (1, 1)


def test_prune_keeps_identities_so_old_entries_never_look_new(store):
    old = entry(guid="https://blog.example/old", link="https://blog.example/old",
                published=T0 - timedelta(days=400))
    store.add_entries("blog", [old], T0 - timedelta(days=400))
    assert store.prune(T0 - timedelta(days=180)) == 1
    assert store.count_entries() == 0
    assert store.add_entries("blog", [old], T0) == (0, 1)  # same feed: still known
    # The same paper title arriving from another feed still joins the pruned identity.
    assert store.add_entries("mirror", [entry(link="https://mirror.example/o",
                                              title=old.title)], T0) == (0, 1)
    assert store.count_entries() == 0


def test_full_text_search(store):
    store.add_entries("blog", [
        entry(link="https://b.example/1", title="Instance normalization for style transfer"),
        entry(link="https://b.example/2", title="Bees and flowers in a long garden study",
              summary="pollination of blue flowers")], T0)
    (hit,) = store.search('"style transfer"')
    assert store.entry(hit).title.startswith("Instance normalization")
    assert len(store.search("pollination")) == 1


def test_search_index_stays_consistent_through_prune(store):
    old = entry(link="https://b.example/old", title="Ancient glacier postcards revisited again",
                published=T0 - timedelta(days=400))
    store.add_entries("blog", [old], T0 - timedelta(days=400))
    assert len(store.search("glacier")) == 1  # indexes on demand
    store.prune(T0 - timedelta(days=180))
    store.add_entries("blog", [entry(link="https://b.example/new",
                                     title="Fresh glacier measurements from drones today")], T0)
    hits = store.search("glacier")
    assert [store.entry(h).link for h in hits] == ["https://b.example/new"]
    store.db.execute("INSERT INTO entries_fts(entries_fts) VALUES ('integrity-check')")


def test_prune_cli(project):
    project.write('[feeds.a]\npath = "a.xml"\n')
    with project.store() as s:
        s.add_entries("a", [entry(link="https://b.example/x", published=T0 - timedelta(days=900))],
                      T0 - timedelta(days=900))
    r = project.run("prune", "--older-than", "365d")
    assert r.exit_code == 0 and "Pruned 1 entries" in r.stdout
    assert project.run("prune", "--older-than", "soon").exit_code == 1


def test_prune_drops_the_cached_embeddings_nothing_uses(project):
    """Embeddings are cached per text, forever unless pruned: `digest prune` keeps what the
    remaining entries and the seeds (cached libraries' papers, 👍 entries) need
    (semantic.needed) and deletes the rest, keys no version writes any more among them."""
    from digest.rank.seeds import entry_text, library_seeds
    from digest.semantic import key, needed, sentences

    project.write('[feeds.a]\npath = "a.xml"\n')
    (project.root / "lib.bib").write_text(
        "@article{a, title={Soil carbon under grass}, abstract={We measured it. Twice a year.}}\n")
    old = T0 - timedelta(days=900)
    with project.store() as s:
        s.add_entries("a", [entry(link="https://b.example/old", title="An old paper on moss",
                                  summary="Moss grows. Slowly.", published=old),
                            entry(link="https://b.example/liked", title="An old paper on lichen",
                                  summary="Lichen persists. For centuries.", published=old)], old)
        s.add_entries("a", [entry(link="https://b.example/new", title="A new paper on ferns",
                                  summary="Ferns spread. By spores.")], datetime.now(UTC))
        library = library_seeds(s, project.root / "lib.bib")  # cached in the database
        by_link = {e.link: e for e in s.entries_for_ranking()}
        s.set_vote("u", by_link["https://b.example/liked"].id, +1, datetime.now(UTC))
        new, liked, gone = (entry_text(by_link[f"https://b.example/{k}"])
                            for k in ("new", "liked", "old"))
        keep = needed([new, liked], [*library.texts, liked],
                      [*library.titles, "An old paper on lichen"])
        # An entry's title and its sentences one by one were embedded by versions before.
        drop = needed([gone], [gone], ["An old paper on moss"]) | {
            key("a text nobody has"), key("A new paper on ferns"), *map(key, sentences(new))}
        assert not keep & drop
        s.save_embeddings({k: bytes(16) for k in keep | drop})
    r = project.run("prune", "--older-than", "365d")
    assert r.exit_code == 0, r.output
    assert f"Pruned 1 entries older than 365d, and {len(drop)} cached embeddings" in r.stdout
    with project.store() as s:
        left = {k for (k,) in s.db.execute("SELECT key FROM embeddings")}
    # Each entry's text and its sentences together; the liked one's and the library paper's
    # text, each of its sentences and its title.
    assert left == keep and len(keep) == 2 + 2 + (1 + 3 + 1) + (1 + 3 + 1) - 1


def test_term_dictionary_ids_are_stable_and_lookups_do_not_add(tmp_path, store):
    first = store.term_ids(["bee", "flower", "bee"])
    assert set(first) == {"bee", "flower"} and len(set(first.values())) == 2
    assert store.term_ids(["nectar"], add=False) == {}  # looked up only: not added
    more = store.term_ids(["flower", "nectar"])
    assert more["flower"] == first["flower"] and more["nectar"] not in first.values()
    # Another connection (a second process) sees the same ids, and adds after them.
    with Store(tmp_path / "d.db") as other:
        assert other.term_ids(["bee", "pollen"])["bee"] == first["bee"]
    assert store.term_ids(["pollen"], add=False)["pollen"] not in (*first.values(), more["nectar"])


def test_ledger_migration_keeps_every_row_and_names_unconfirmed_ones(tmp_path):
    """A database from before owners and leases (schema 6): an unconfirmed digest recorded as
    'sent' becomes 'unconfirmed'; a row left in 'sending' has no lease, so it counts as lost."""
    from digest.store.migrations import statements as _statements

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for version, script in enumerate(MIGRATIONS[:6], 1):
        for statement in _statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
    conn.executemany(
        "INSERT INTO deliveries (reader, day, state, detail, updated_at, content) VALUES (?, ?, ?, ?, ?, '')",
        [("ada", "2026-11-01", "sent", "", "2026-11-01T07:00:00Z"),
         ("ada", "2026-11-02", "sent", "unconfirmed: the run stopped", "2026-11-02T07:00:00Z"),
         ("bob", "2026-11-02", "sending", "", "2026-11-02T07:00:00Z")])
    conn.commit()
    conn.close()
    with Store(path) as s:
        assert s.schema_version == len(MIGRATIONS)
        rows = {(r.reader, r.day): r for r in s.deliveries()}
        lost = {(r.reader, r.day) for r in s.lost_deliveries(datetime(2026, 12, 1, tzinfo=UTC))}
    assert rows["ada", "2026-11-01"].state == "sent" and rows["ada", "2026-11-01"].channel == "email"
    assert rows["ada", "2026-11-02"].state == "unconfirmed"
    assert lost == {("ada", "2026-11-02"), ("bob", "2026-11-02")}


def test_connections_creating_one_database_at_once(tmp_path):
    """All migrate under the write lock, reading the version inside it (no "table exists"),
    and all switch the new file to WAL without "database is locked"."""
    import threading

    for i in range(30):  # the race showed in about 1 round of 20
        path, errors = tmp_path / f"new{i}.db", []
        start = threading.Barrier(4)

        def open_it(path=path, start=start, errors=errors):
            start.wait()
            try:
                Store(path).close()
            except StoreError as e:
                errors.append(str(e))

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        with Store(path) as s:
            assert s.schema_version == len(MIGRATIONS)


@pytest.mark.parametrize("arxiv_first", [True, False])
def test_arxiv_api_and_a_third_party_rss_copy_are_one_item(store, arxiv_first):
    title = "Scaling Sparse Attention to Million-Token Contexts"
    api = entry(guid="http://arxiv.org/abs/2604.26932v1", link="https://arxiv.org/abs/2604.26932v1",
                title=title)
    rss = entry(guid="https://dailypapers.example.net/p/8812", link="https://dailypapers.example.net/p/8812",
                title=title)
    order = [("arxiv", api), ("daily", rss)]
    (feed1, e1), (feed2, e2) = order if arxiv_first else order[::-1]
    assert store.add_entries(feed1, [e1], T0) == (1, 0)
    assert store.add_entries(feed2, [e2], T0) == (0, 1)
    (entry_id,) = store.entry_ids()
    assert store.entry(entry_id).sources == sorted(["arxiv", "daily"])
    # The arXiv id it gained through the join joins a third copy that has only the id.
    hf = entry(guid="https://huggingface.co/papers/2604.26932", link="https://huggingface.co/papers/2604.26932",
               title="Sparse attention, million tokens")
    assert store.add_entries("hf", [hf], T0) == (0, 1)
    assert store.entry_ids() == [entry_id]


def test_a_shared_title_never_joins_two_different_arxiv_papers(store):
    title = "A Survey of Large Language Models for Code"
    a = entry(guid="http://arxiv.org/abs/2601.00001v1", link="https://arxiv.org/abs/2601.00001", title=title)
    b = entry(guid="http://arxiv.org/abs/2609.00002v1", link="https://arxiv.org/abs/2609.00002", title=title)
    assert store.add_entries("arxiv", [a], T0) == (1, 0)
    assert store.add_entries("arxiv", [b], T0) == (1, 0)
    # A copy with only the title joins the first, never both.
    c = entry(link="https://blog.example/survey", title=title)
    assert store.add_entries("blog", [c], T0) == (0, 1)
    assert len(store.entry_ids()) == 2


def test_a_doi_joins_a_publisher_page_and_a_doi_link(store):
    a = entry(link="https://dl.acm.org/doi/10.1145/3292500.3330919", title="Short one")
    b = entry(guid="doi:10.1145/3292500.3330919", link="https://doi.org/10.1145/3292500.3330919",
              title="Other words")
    assert store.add_entries("acm", [a], T0) == (1, 0)
    assert store.add_entries("crossref", [b], T0) == (0, 1)


def test_fragment_guids_of_one_feed_stay_two_entries(store):
    a = entry(guid="http://log.example.org/2002/09/29#When:12:59:01PM", title="", summary="First note.")
    b = entry(guid="http://log.example.org/2002/09/29#When:6:52:02PM", title="", summary="Second note.")
    assert store.add_entries("log", [a, b], T0) == (2, 0)


def test_prune_reads_a_library_cached_before_it_held_paper_keys(project):
    """`digest prune` reads every cached library, whatever its format; one cached before the
    arXiv ids and DOIs were kept (format 3) has no "keys", and a damaged row is passed over."""
    import json

    from test_rank import _format_6

    from digest.rank.seeds import library_seeds

    project.write('[feeds.a]\npath = "a.xml"\n')
    (project.root / "lib.bib").write_text("@article{a, title={Soil carbon}, eprint={2411.01234}}\n")
    with project.store() as s:
        seeds = library_seeds(s, project.root / "lib.bib")
        assert seeds.keys == ["arxiv:2411.01234"]
        old = json.loads(_format_6(seeds))
        del old["keys"]
        s.save_library(str(project.root / "old.bib"), "1:2:3:3", json.dumps(old))
        s.save_library(str(project.root / "damaged.bib"), "1:2:3:7", b"\x09\x00\x00\x00{cut")
    r = project.run("prune", "--older-than", "365d")
    assert r.exit_code == 0 and "Pruned 0 entries" in r.stdout, r.output


def test_prune_defaults_to_the_configured_keep_and_never_means_never(project):
    """`digest prune` without --older-than uses [digest] keep (what `digest run` prunes daily);
    with keep = "never" it prunes only when told how old, and says so."""
    old = [entry(link=f"https://b.example/{k}", title=f"A paper published {k} days ago",
                 published=T0 - timedelta(days=k)) for k in (100, 300)]
    project.write('[feeds.a]\npath = "a.xml"\n', extra_digest='keep = "200d"\n')
    with project.store() as s:
        for e in old:
            s.add_entries("a", [e], e.published)
    with time_machine.travel(T0, tick=False):
        r = project.run("prune")
    assert r.exit_code == 0 and "Pruned 1 entries older than 200d" in r.stdout
    project.write('[feeds.a]\npath = "a.xml"\n', extra_digest='keep = "never"\n')
    assert project.config().digest.keep is None
    r = project.run("prune")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert '[digest] keep is "never"' in r.output and "--older-than" in r.output
    with project.store() as s:
        assert s.count_entries() == 1


def test_prune_never_deletes_an_embedding_saved_while_it_works(tmp_path, store):
    """Working out which embeddings are needed takes a while on a large database; a poll or a
    send saving new ones meanwhile (another thread or process) must not lose them to the
    prune, which only deletes what it listed before it began."""
    store.save_embeddings({"old-needed": b"1", "old-unneeded": b"2"})

    def wanted():  # meanwhile, another process saves a vector
        subprocess.run([sys.executable, "-c", "import sys\nfrom digest.store import Store\n"
                        "with Store(sys.argv[1]) as s:\n"
                        "    s.save_embeddings({'saved-meanwhile': b'3'})",
                        str(tmp_path / "d.db")], check=True, timeout=60)
        return {"old-needed"}

    assert store.keep_embeddings(wanted) == 1
    left = {k for (k,) in store.db.execute("SELECT key FROM embeddings")}
    assert left == {"old-needed", "saved-meanwhile"}


CLAIMER = """
import sys, time
from digest.store import Store
keys = [f"k{i:03d}" for i in range(300)]
with Store(sys.argv[1]) as store:
    while not store.db.execute("SELECT count(*) FROM embedding_claims WHERE key = 'go'").fetchone()[0]:
        time.sleep(0.001)
    got = []
    while True:
        mine = store.claim_embeddings(keys, sys.argv[2], "2026-01-01T00:00:00+00:00",
                                      "2026-01-01T00:15:00+00:00", 1)
        if not mine:
            break
        got += mine
        store.save_embeddings({k: b"v" for k in mine}, sys.argv[2])
    print(" ".join(got))
"""


def test_runs_claiming_texts_to_embed_at_once_never_claim_one_twice(tmp_path):
    """Store.claim_embeddings reads what is free and claims it in one write transaction:
    three processes racing over the same 300 keys, one at a time, share them out exactly."""
    db = tmp_path / "d.db"
    Store(db).close()
    runs = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(db), f"run{n}"],
                             stdout=subprocess.PIPE, text=True) for n in range(3)]
    with Store(db) as s:  # all three start together
        s.claim_embeddings(["go"], "starter", "2026-01-01T00:00:00+00:00", "2026-01-01T00:15:00+00:00", 1)
    got = [r.communicate(timeout=120)[0].split() for r in runs]
    assert all(r.returncode == 0 for r in runs)
    every = [k for g in got for k in g]
    assert sorted(every) == [f"k{i:03d}" for i in range(300)], (len(every), [len(g) for g in got])
    with Store(db) as s:
        assert s.embedding_claimants() == ["starter"]  # each run's claims ended with its save
