"""Ranking properties on a real SQLite store, and the `digest rank` contract."""

import base64
import gc
import json
import struct
import weakref
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import time_machine
from conftest import FIXTURES

from digest import highlight, lexical, sentences
from digest.dates import digest_window
from digest.lexical import TOKENIZER_VERSION, decode_analysis
from digest.models import SURPRISE, iso_utc
from digest.normalize import make_entry
from digest.rank import Ranker, Selection
from digest.rank.scoring import POPULARITY_POINTS
from digest.rank.seeds import LIBRARY_CACHE_FORMAT, Seeds

NOW = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)

PAPERS = {
    "st-phrase": ("Fast style transfer for video", "We make style transfer run in real time on video."),
    "st-scatter": ("Transfer learning of painting style", "A study of style and of transfer in art history."),
    "flood": ("Graph networks for flood forecasting", "River gauges and rainfall predict floods."),
    "med": ("Style transfer for medical imaging", "Harmonizing scanners with style transfer in medical imaging."),
    "bees": ("Bees prefer blue flowers", "Field study of bumblebee foraging in gardens."),
    "sparse": ("Sparse attention for long documents", "Block-sparse attention scales to long context windows."),
}


def add(store, key, *, authors=("Ann Author",), categories=("cs.LG",), popularity=0,
        published=NOW - timedelta(hours=2), feed="papers", title=None, abstract="An abstract."):
    t, abstract = PAPERS.get(key, (title or key, abstract))
    e = make_entry(guid=f"urn:{key}", link=f"https://papers.example.org/{key}", title=title or t,
                   summary=abstract, summary_is_html=False, authors=list(authors),
                   categories=list(categories), published=published, fetched=NOW - timedelta(hours=1),
                   popularity=popularity)
    store.add_entries(feed, [e], NOW - timedelta(hours=1))
    return e


def ranked(project, user="u", **kw):
    config = project.config()
    with project.store() as store:
        ranker = Ranker(config, store, store.entries_for_ranking(), NOW, **kw)
        return ranker.rank(config.users[user]), ranker


def titles(results):
    return [r.title for r in results]


def setup(project, user_toml: str, ranking: str = ""):
    project.write(f'{ranking}\n[feeds.papers]\npath = "f.xml"\n[users.u]\nemail = "u@example.org"\n'
                  + user_toml)


def test_phrase_beats_scattered_words(project):
    setup(project, '[users.u.interests]\n"style transfer" = 1\n')
    with project.store() as s:
        add(s, "st-scatter")
        add(s, "st-phrase")
        add(s, "flood")
    results, _ = ranked(project)
    assert titles(results)[0] == "Fast style transfer for video"
    by_title = {r.title: r for r in results}
    assert by_title["Fast style transfer for video"].reasons == ['matches "style transfer" in the title']
    scattered = by_title["Transfer learning of painting style"]
    assert 0 < scattered.score < by_title["Fast style transfer for video"].score
    assert scattered.score > by_title["Graph networks for flood forecasting"].score
    assert scattered.reasons == []


def test_interest_weights_order_topics(project):
    setup(project, '[users.u.interests]\n"flood forecasting" = 3\n"sparse attention" = 1\n')
    with project.store() as s:
        add(s, "sparse")
        add(s, "flood")
    assert titles(ranked(project)[0])[:2] == ["Graph networks for flood forecasting",
                                             "Sparse attention for long documents"]


def test_exclude_demotes_below_everything(project):
    setup(project, 'exclude = ["medical imaging"]\n[users.u.interests]\n"style transfer" = 2\n')
    with project.store() as s:
        add(s, "med")
        add(s, "st-phrase")
        add(s, "bees")
    results, _ = ranked(project)
    assert titles(results)[-1] == "Style transfer for medical imaging"
    assert results[-1].score < 0
    assert 'demoted: mentions "medical imaging"' in results[-1].reasons


def test_followed_author_boosts_in_any_spelling(project):
    setup(project, 'authors = ["LeCun, Yann"]\n[users.u.interests]\n"flood" = 1\n')
    with project.store() as s:
        add(s, "bees", authors=["Y. LeCun", "Ann Other"])
        add(s, "sparse")
    results, _ = ranked(project)
    assert results[0].title == "Bees prefer blue flowers" and results[0].reasons == ["by Y. LeCun"]


def test_category_boost(project):
    setup(project, 'categories = ["q-bio.PE"]\n')
    with project.store() as s:
        add(s, "bees", categories=["q-bio.PE"])
        add(s, "flood")
    results, _ = ranked(project)
    assert results[0].title == "Bees prefer blue flowers" and results[0].reasons == ["in q-bio.PE"]


def test_popularity_weight_and_reason(project):
    setup(project, '[users.u.interests]\n"flood" = 1\n', ranking="[ranking]\npopularity = 0.5\n")
    with project.store() as s:
        add(s, "bees", popularity=90)
        add(s, "sparse", popularity=0)
    results, _ = ranked(project)
    pop = {r.title: r for r in results}["Bees prefer blue flowers"]
    assert pop.reasons == ["trending: 90 upvotes"]
    # popularity · POPULARITY_POINTS · log(1 + upvotes) / log(101), with no decay at age ~0
    assert pop.score == pytest.approx(POPULARITY_POINTS * 0.5 * 0.975, abs=0.2)
    setup(project, 'popularity = 0\n[users.u.interests]\n"flood" = 1\n',
          ranking="[ranking]\npopularity = 0.5\n")  # the reader's override wins
    assert {r.title: r for r in ranked(project)[0]}["Bees prefer blue flowers"].score == 0


def test_recency_halves_relevance_per_half_life(project):
    setup(project, 'half_life = "2d"\n[users.u.interests]\n"style transfer" = 1\n')
    with project.store() as s:
        add(s, "st-phrase", published=NOW)
        add(s, "old", title="Old style transfer work on stills", published=NOW - timedelta(days=2))
    fresh, old = ranked(project)[0]
    assert fresh.title == "Fast style transfer for video"
    assert old.score == pytest.approx(fresh.score / 2, rel=0.01)


def test_no_profile_falls_back_to_popularity(project):
    setup(project, "")
    with project.store() as s:
        add(s, "bees", popularity=5)
        add(s, "flood", popularity=50)
        add(s, "sparse", popularity=0)
    assert titles(ranked(project)[0]) == ["Graph networks for flood forecasting",
                                          "Bees prefer blue flowers",
                                          "Sparse attention for long documents"]


def test_seed_library_similarity_and_reason(project):
    (project.root / "lib.bib").write_text(
        "@article{a, title={Flood forecasting with river gauge networks},"
        " abstract={Rainfall and river gauges predict floods with graph networks.}}\n"
        "@article{b, title={Pollination ecology}, abstract={Bumblebee foraging.}}\n")
    setup(project, 'papers = "lib.bib"\n')
    with project.store() as s:
        add(s, "sparse")
        add(s, "flood")
    results, _ = ranked(project)
    assert results[0].title == "Graph networks for flood forecasting"
    assert results[0].reasons == ['similar to your paper "Flood forecasting with river gauge networks"']
    assert results[1].score < results[0].score / 2


def test_votes_act_as_seed_papers(project):
    setup(project, "")
    with project.store() as s:
        flood = add(s, "flood")
        add(s, "rain", title="Rainfall nowcasting for river floods")
        add(s, "sparse")
        add(s, "bees")
        ids = {e.title: e.id for e in s.entries_for_ranking()}
        s.set_vote("u", ids[flood.title], +1, NOW)
        s.set_vote("u", ids["Bees prefer blue flowers"], -1, NOW)
    results = {r.title: r for r in ranked(project)[0]}
    rain = results["Rainfall nowcasting for river floods"]
    assert rain.score > results["Sparse attention for long documents"].score
    assert rain.reasons == ['like "Graph networks for flood forecasting", which you liked']
    assert results["Bees prefer blue flowers"].score < 0


def test_a_liked_entrys_words_mark_the_highlight(project):
    """A 👍 entry is a seed paper for the highlight too: an item named for it has the liked
    entry's words marked (worked out at each ranking, as its terms are, not cached)."""
    setup(project, "")
    with project.store() as s:
        flood = add(s, "flood")
        add(s, "rain", title="Rainfall nowcasting for river floods",
            abstract="We nowcast it from radar. River gauges and radar predict floods.")
        add(s, "sparse")
        s.set_vote("u", {e.title: e.id for e in s.entries_for_ranking()}[flood.title], +1, NOW)
    rain = {r.title: r for r in ranked(project)[0]}["Rainfall nowcasting for river floods"]
    assert rain.reasons == ['like "Graph networks for flood forecasting", which you liked']
    assert [rain.highlight.text[a:b] for a, b in rain.highlight.marks] == [
        "River gauges", "predict floods"]


def test_ranking_is_deterministic(project):
    setup(project, '[users.u.interests]\n"style" = 1\n')
    with project.store() as s:
        for key in PAPERS:
            add(s, key)
        for i in range(5):
            add(s, f"tie{i}", title=f"Unrelated note number {i} on gardening")
    first = [(r.id, r.score) for r in ranked(project)[0]]
    again = [(r.id, r.score) for r in ranked(project)[0]]
    assert first == again
    ties = [r for r in ranked(project)[0] if r.score == 0]
    assert [r.id for r in ties] == sorted(r.id for r in ties)


def test_select_floor_limit_duplicates_and_trending(project):
    setup(project, '[users.u.interests]\n"style transfer" = 1\n')
    with project.store() as s:
        add(s, "st-phrase")
        add(s, "dup", title="Fast style transfer for video!", feed="mirror")  # joins by title
        add(s, "dup2", title="Fast style transfer for video (v2)")  # near-duplicate
        add(s, "med")
        add(s, "bees", popularity=30)
        add(s, "flood")
    _, ranker = ranked(project)
    user = project.config().users["u"]

    def select(limit, min_score, trending):
        return ranker.digest(user, None, Selection(limit, min_score, trending))

    picked = select(limit=5, min_score=3.0, trending=1)
    # Equal scores (both have the phrase in the title); the "(v2)" near-duplicate is dropped.
    assert {r.title for r in picked[:2]} == {"Fast style transfer for video",
                                             "Style transfer for medical imaging"}
    assert [r.title for r in picked[2:]] == ["Bees prefer blue flowers"]
    assert picked[-1].trending and picked[-1].reasons == ["trending: 30 upvotes"]
    assert {r.title: r for r in picked}["Fast style transfer for video"].sources == ["mirror", "papers"]
    assert [r.id for r in select(limit=1, min_score=3.0, trending=0)] == [picked[0].id]
    assert select(limit=5, min_score=100.0, trending=0) == []
    assert len(select(limit=5, min_score=100.0, trending=3)) == 1  # only one item is popular


def test_trending_and_the_surprise_come_only_from_the_readers_own_rows(project):
    """A reader's rows (their feeds, their window) bound the popular extras too: the most
    popular entry of the pool is in a feed they do not follow, so neither the trending item
    nor the surprise is it."""
    setup(project, 'feeds = ["papers"]\nserendipity = 1\n[users.u.interests]\n"style transfer" = 1\n')
    with project.store() as s:
        add(s, "st-phrase")
        add(s, "bees", popularity=90, feed="elsewhere")
        add(s, "flood", popularity=40)
        add(s, "sparse", popularity=20)
    _, ranker = ranked(project)
    user = project.config().users["u"]
    rows = ranker.rows_for(user)
    assert len(rows) == 3 and len(ranker.entries) == 4
    picked = ranker.digest(user, rows, Selection(5, 3.0, 1))
    assert [(r.title, r.trending, r.section) for r in picked] == [
        ("Fast style transfer for video", False, ""),
        ("Graph networks for flood forecasting", False, SURPRISE),
        ("Sparse attention for long documents", True, "")]
    everything = ranker.digest(user, None, Selection(5, 3.0, 1))  # all rows: bees first
    assert [r.title for r in everything[1:]] == ["Bees prefer blue flowers",
                                                 "Graph networks for flood forecasting"]


def test_digest_window_uses_the_readers_local_send_time(project):
    setup(project, 'timezone = "America/New_York"\nsend_time = "07:30"\n')
    config = project.config()
    lookback = config.ranking.lookback
    since, until = digest_window(lookback, config.users["u"], date(2026, 7, 1), NOW)
    assert until == datetime(2026, 7, 1, 11, 30, tzinfo=UTC)  # EDT is UTC−4
    assert until - since == timedelta(days=1)
    since, until = digest_window(lookback, config.users["u"], None, NOW,
                                 last_sent=NOW - timedelta(hours=30))
    assert (since, until) == (NOW - timedelta(hours=30), NOW)


@time_machine.travel(NOW, tick=False)  # scores decay with age: two runs must see one clock
def test_rank_json_contract_and_empty_window(project):
    (project.root / "f.xml").write_bytes((FIXTURES / "rss20.xml").read_bytes())
    setup(project, '[users.u.interests]\n"bees" = 1\n')
    assert project.run("poll").exit_code == 0
    r = project.run("rank", "u", "--all", "--json")
    assert r.exit_code == 0, r.output
    items = json.loads(r.stdout)
    assert len(items) == 2
    for item in items:
        assert {"id", "title", "link", "score", "reasons", "sources"} <= set(item)
        assert isinstance(item["score"], float) and item["sources"] == ["papers"]
    assert items[0]["title"].startswith("Bees") and items[0]["score"] > items[1]["score"]
    assert items[0]["reasons"] == ['matches "bees" in the title']
    assert [i["id"] for i in json.loads(project.run("rank", "u", "--all", "--json", "--limit", "1").stdout)] \
        == [items[0]["id"]]
    table = project.run("rank", "u", "--all").stdout  # the human view: title, score, reasons
    assert "Bees prefer blue flowers in the morning" in table
    assert 'matches "bees" in the title' in table and f"{items[0]['score']:.3f}" in table
    # The fixture's entries were fetched now; a digest dated long ago has nothing in its window.
    r = project.run("rank", "u", "--date", "2020-01-01", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == []
    assert "Nothing new" in project.run("rank", "u", "--date", "2020-01-01").stdout


def test_rank_errors_are_sentences(project):
    setup(project, "")
    r = project.run("rank", "uu")
    assert r.exit_code == 1 and "no reader named 'uu' (did you mean 'u'?)" in r.stderr
    r = project.run("rank", "u", "--date", "yesterday")
    assert r.exit_code == 1 and "is not a date from 1970 on; write it as YYYY-MM-DD" in r.stderr
    assert project.run("rank", "u", "--all", "--date", "2026-01-01").exit_code == 1


def test_broken_bibtex_warns_with_line_numbers_and_still_ranks(project):
    (project.root / "lib.bib").write_bytes((FIXTURES / "library" / "messy.bib").read_bytes())
    (project.root / "f.xml").write_bytes((FIXTURES / "rss20.xml").read_bytes())
    setup(project, 'papers = "lib.bib"\n')
    project.run("poll")
    r = project.run("rank", "u", "--all", "--json")
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 2
    assert "lib.bib line 15: @inproceedings entry has unbalanced braces" in r.stderr
    check = project.run("check")
    assert "Library of u: 3 papers from lib.bib" in check.stdout
    assert "line 27" in check.stderr


def test_check_reports_ranking_mode_and_readers_without_profile(project):
    setup(project, "", ranking='[ranking]\nsemantic_mode = "off"\n')
    r = project.run("check")
    assert "Ranking: lexical (TF-IDF); semantic_mode = off" in r.stdout
    assert "[users.u] has no interests, papers, authors or categories" in r.stderr


def test_library_cache_follows_the_file(project):
    lib = project.root / "lib.bib"
    lib.write_text("@article{a, title={Flood forecasting with river gauge networks}}\n")
    setup(project, 'papers = "lib.bib"\n')
    with project.store() as s:
        add(s, "flood")
        add(s, "bees")
    assert ranked(project)[0][0].reasons == ['similar to your paper "Flood forecasting with river gauge networks"']
    with project.store() as s:
        assert s.db.execute("SELECT count(*) FROM libraries").fetchone()[0] == 1
    lib.write_text("@article{a, title={Bumblebee foraging and blue flowers in gardens}}\n")
    top = ranked(project)[0][0]
    assert top.title == "Bees prefer blue flowers"
    assert top.reasons == ['similar to your paper "Bumblebee foraging and blue flowers in gardens"']


def test_story_grouping_finds_every_near_duplicate_pair():
    """The prefix-filtered grouping agrees with comparing every pair of titles."""
    import random

    from digest.rank.stories import NEAR_DUPLICATE
    from digest.rank.stories import stories as _stories

    rnd = random.Random(3)
    vocab = [f"w{k}" for k in range(40)]
    titles = []
    for _ in range(300):
        base = rnd.sample(vocab, rnd.randint(1, 15))
        if titles and rnd.random() < 0.5:  # an edit of an earlier title: drop or add a word
            base = list(rnd.choice(titles)) + ([rnd.choice(vocab)] if rnd.random() < 0.5 else [])
            base = base[1:] if len(base) > 2 and rnd.random() < 0.5 else base
        titles.append(frozenset(base))
    titles.append(frozenset())
    story = _stories(titles)
    pairs = 0
    for i, a in enumerate(titles):
        for j in range(i):
            b = titles[j]
            if a and b and len(a & b) >= NEAR_DUPLICATE * len(a | b):
                pairs += 1
                assert story[i] == story[j], (sorted(a), sorted(b))
    assert pairs > 50  # the data has plenty of near-duplicates to find
    assert len(set(story)) > 100  # and unrelated titles stay apart


_RANK_BOTH_WAYS = """
import gc, json, sys
from datetime import datetime
from digest.config import load_config
from digest.rank import Ranker, Selection
from digest.store import Store
config = load_config(sys.argv[1])
store = Store(config.digest.database)
out = []
settings = gc.get_threshold()
for workers in (2, 1):  # forked workers first: they store the sentences one process reads
    ranker = Ranker(config, store, store.entries_for_ranking(), datetime.fromisoformat(sys.argv[2]))
    assert ranker._can_fork()  # else workers=2 would quietly run in this process
    users = [(u, None) for u in config.users.values()]
    out.append({"ranked": [(u.name, [r.as_json() | {"saved": r.saved()} for r in items]) for u, items in
                           ranker.rank_many(users, selection=Selection(3, 0.01, 1), workers=workers)],
                "warnings": {str(k): v for k, v in ranker.library_warnings.items()},
                "stored": sorted(e.id for e in store.entries_for_ranking() if e.sentences)})
    # Ranking changes how often the collector runs, and freezes the model: only while it ranks.
    assert gc.get_threshold() == settings and gc.get_freeze_count() == 0 and gc.isenabled()
print(json.dumps(out))
"""


def _seventy_readers(project) -> None:
    """70 readers (more than one batch of 64), each with a one-paper library (the last one's
    with a broken entry too) and a phrase; the papers as entries."""
    readers = []
    for r in range(70):
        topic = list(PAPERS)[r % len(PAPERS)]
        (project.root / f"lib{r}.bib").write_text(
            f"@article{{a{r}, title={{{PAPERS[topic][0]}}}, abstract={{{PAPERS[topic][1]}}}}}\n"
            + ("@article{broken, title={no closing brace\n" if r == 69 else ""))
        readers.append(f'[users.r{r}]\nemail = "r{r}@example.org"\npapers = "lib{r}.bib"\n'
                       f'[users.r{r}.interests]\n"{PAPERS[topic][0].split()[-1].lower()}" = 1\n')
    project.write('[feeds.papers]\npath = "f.xml"\n' + "".join(readers))
    with project.store() as s:
        for key in PAPERS:
            add(s, key)


def test_worker_processes_rank_exactly_like_one_process(project):
    """Forked workers: same digests in the same order, library warnings brought back, the
    garbage collector's settings as they were. Run in a fresh interpreter: ranking forks only
    when single-threaded, and the test session is not."""
    import subprocess
    import sys

    _seventy_readers(project)
    done = subprocess.run([sys.executable, "-c", _RANK_BOTH_WAYS, str(project.path), NOW.isoformat()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    two, one = json.loads(done.stdout)
    assert [name for name, _ in two["ranked"]] == [f"r{r}" for r in range(70)]
    assert two == one
    assert any(items for _, items in two["ranked"])
    assert any(two["warnings"].values())
    assert all(item["highlight"] for _, items in two["ranked"] for item in items)
    # The workers saved the sentences of the abstracts they showed, before one process ran.
    shown = {item["id"] for _, items in two["ranked"] for item in items}
    assert shown and shown <= set(two["stored"])
    with project.store() as s:
        assert all(sentences.decode(e.sentences) is not None
                   for e in s.entries_for_ranking() if e.id in shown)


_WORKER_THREADS = """
import json, os, sys
from datetime import datetime
from threadpoolctl import threadpool_info
import digest.rank.ranker as ranker_module
from digest.config import load_config
from digest.rank import Ranker, Selection
from digest.store import Store

batch = ranker_module.worker_batch
def counted(b):  # in the worker: its threads and BLAS threads as it ranks, after its first batch
    out = batch(b)
    with open(sys.argv[3], "a") as seen:
        seen.write(json.dumps([os.getpid(), len(os.listdir("/proc/self/task")),
                               [i["num_threads"] for i in threadpool_info()]]) + "\\n")
    return out
ranker_module.worker_batch = counted
config = load_config(sys.argv[1])
store = Store(config.digest.database)
ranker = Ranker(config, store, store.entries_for_ranking(), datetime.fromisoformat(sys.argv[2]))
assert ranker._can_fork()
before = [i["num_threads"] for i in threadpool_info()]
users = [(u, None) for u in config.users.values()]
assert len(list(ranker.rank_many(users, selection=Selection(3, 0.01, 1), workers=2))) == 70
print(json.dumps({"before": before, "after": [i["num_threads"] for i in threadpool_info()]}))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_forked_workers_rank_on_one_blas_thread_and_start_no_others(project, tmp_path):
    """Each worker ranks on one BLAS thread, inherited: set in the worker, OpenBLAS started a
    thread per BLAS library there, which spun beside the ranking before sleeping. The
    parent's own setting is back once the ranking ends."""
    import subprocess
    import sys

    _seventy_readers(project)
    seen = tmp_path / "workers.jsonl"
    done = subprocess.run([sys.executable, "-c", _WORKER_THREADS, str(project.path), NOW.isoformat(),
                           str(seen)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    parent = json.loads(done.stdout)
    assert parent["after"] == parent["before"]
    workers = [json.loads(line) for line in seen.read_text().splitlines()]
    assert len(workers) == 2  # two batches
    for _pid, threads, blas in workers:
        assert threads == 1, "a worker started threads it never uses"
        assert all(n == 1 for n in blas), blas


def test_the_collector_runs_less_only_while_readers_are_ranked(project):
    """Fewer garbage collections while readers are ranked (a quarter of ranking's time went to
    them), the model frozen, and only then: rankings open at once, ending in either order, or
    running in two threads, leave the process's settings as they were, and one ending does not
    unfreeze the model of another still ranking."""
    import gc
    import threading

    from digest.rank import collector

    setup(project, '[users.u.interests]\n"style" = 1\n')
    config = project.config()
    before = gc.get_threshold()
    seen = []

    class Watched(Ranker):
        def _rank_group(self, *args):
            seen.append(gc.get_threshold())
            return super()._rank_group(*args)

    with project.store() as s:
        for key in PAPERS:
            add(s, key)
        ranker = Watched(config, s, s.entries_for_ranking(), NOW)
        jobs = [(config.users["u"], None)]
        first = ranker.rank_many(jobs, selection=Selection(3, 0.01, 0))
        (_, items), = [next(first)]
        assert items and gc.get_threshold() == collector.GC_THRESHOLD  # until the ranking ends
        assert gc.get_freeze_count() > 0  # the model is frozen while it ranks
        second = ranker.rank_many(jobs, selection=Selection(3, 0.01, 0))
        next(second)
        assert list(first) == []  # the first ends while the second is open: still frozen
        assert gc.get_freeze_count() > 0 and gc.get_threshold() == collector.GC_THRESHOLD
        assert list(second) == []
    assert seen == [collector.GC_THRESHOLD] * 2
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0

    inside, leave = threading.Event(), threading.Event()

    def other():
        with collector.fewer_collections():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(10)
    with collector.fewer_collections():
        leave.set()
        thread.join(10)  # the other thread's block ended first
        assert gc.get_threshold() == collector.GC_THRESHOLD and gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_config_error_survives_pickling():
    """Worker processes send exceptions back pickled; every problem must arrive intact."""
    import pickle

    from digest.errors import ConfigError

    err = pickle.loads(pickle.dumps(ConfigError(["first problem.", "second problem."])))
    assert err.problems == ["first problem.", "second problem."]


def test_entries_are_tokenized_once_and_rank_the_same_either_way(project):
    """The first ranking stores each entry's tokens; rows without them (or from another
    tokenizer version) are tokenized again, with the same result."""
    setup(project, '[users.u.interests]\n"style transfer" = 1\n"flood" = 2\n')
    with project.store() as s:
        for key in PAPERS:
            add(s, key)
        assert all(e.analysis == "" for e in s.entries_for_ranking())
        before = [(r.id, r.score, r.reasons) for r in ranked(project)[0]]
        stored = [decode_analysis(e.analysis) for e in s.entries_for_ranking()]
        assert all(a is not None and len(a[0]) for a in stored)
        assert [(r.id, r.score, r.reasons) for r in ranked(project)[0]] == before
        # Not stored, stored as text (schema 3), or by another tokenizer version: redone.
        other = struct.pack("<3i", int(TOKENIZER_VERSION) + 1, 0, 0)
        s.db.execute("UPDATE entries SET analysis = ''")
        s.db.execute("UPDATE entries SET analysis = '1\x1ebee flower' WHERE rowid % 3 = 0")
        s.db.execute("UPDATE entries SET analysis = ? WHERE rowid % 3 = 1", [other])
        s.db.conn.commit()
        assert all(decode_analysis(e.analysis) is None for e in s.entries_for_ranking())
    assert [(r.id, r.score, r.reasons) for r in ranked(project)[0]] == before


def test_sentences_are_stored_when_first_shown_and_highlight_the_same_either_way(project):
    """An abstract's sentences are split and stemmed the first time it is shown, and stored;
    later rankings read them back and highlight exactly as before. Stored in another form,
    or not at all, they are worked out again."""
    (project.root / "lib.bib").write_text(
        "@article{a, title={Wing patterns of bees}, abstract={How bees see flowers.}}\n")
    setup(project, 'papers = "lib.bib"\n[users.u.interests]\n"style transfer" = 1\n')
    with project.store() as s:
        for key in PAPERS:
            add(s, key)
        assert all(e.sentences == "" for e in s.entries_for_ranking())
    first = [(r.id, r.highlight) for r in ranked(project)[0]]
    assert any(h.marks for _, h in first) and all(h.text for _, h in first)
    with project.store() as s:
        stored = {e.id: sentences.decode(e.sentences) for e in s.entries_for_ranking()}
        assert all(a is not None and len(a.bounds) >= 1 for a in stored.values())
        s.db.execute("UPDATE entries SET sentences = 'x' WHERE rowid % 4 = 0")
        s.db.execute("UPDATE entries SET sentences = ? WHERE rowid % 4 = 1",
                     [struct.pack("<3i", sentences.FORM + 1, 1, 0)])
        # The right form cut short (the words' places missing): worked out again, not misread.
        s.db.execute("UPDATE entries SET sentences = substr(sentences, 1, length(sentences) - 4)"
                     " WHERE rowid % 4 = 2")
        # The right form and length, its sentences' distinct-word counts off: worked out again.
        for rowid, blob in s.db.execute("SELECT rowid, sentences FROM entries WHERE rowid % 4 = 3"
                                        ).fetchall():
            a = bytearray(blob)
            n = struct.unpack_from("<i", a, 4)[0]
            counts_at = 4 * (4 + 2 * n + struct.unpack_from("<i", a, 8)[0])
            struct.pack_into("<i", a, counts_at, struct.unpack_from("<i", a, counts_at)[0] + 1)
            s.db.execute("UPDATE entries SET sentences = ? WHERE rowid = ?", [bytes(a), rowid])
        s.db.conn.commit()
    assert [(r.id, r.highlight) for r in ranked(project)[0]] == first
    def arrays(a):
        return [x.tolist() for x in a]
    with project.store() as s:
        assert {e.id: arrays(sentences.decode(e.sentences)) for e in s.entries_for_ranking()} == {
            i: arrays(a) for i, a in stored.items()}


def test_the_model_built_beside_a_second_core_ranks_as_the_one_built_alone(project):
    """With `[ranking] workers` above 1 the concept space is built in a thread, and the
    readers' phrases and their words are looked up before any reader is ranked; with 1, all of
    it in turn. Whatever this machine's cores, both give the same scores, reasons, sections and
    highlights, for readers with a library, phrases, an excluded phrase and a section."""
    import dataclasses

    (project.root / "lib.bib").write_text(
        "@article{a, title={Graph networks for rivers},"
        " abstract={Rainfall and river gauges forecast floods with graph networks.}}\n")
    setup(project, 'papers = "lib.bib"\n[users.u.interests]\n"style transfer" = 1\n'
                   '"graph networks" = 0.5\n'
                   '[users.v]\nemail = "v@example.org"\nexclude = ["flood"]\n'
                   '[users.v.sections]\n"Styles" = {match = ["style transfer"]}\n'
                   '[users.v.interests]\n"graph" = 1\n"transfer" = 2\n')
    with project.store() as s:
        for key in PAPERS:
            add(s, key)
    config = project.config()
    out = []
    for workers in (1, 2):
        one = dataclasses.replace(config, ranking=dataclasses.replace(config.ranking, workers=workers))
        with project.store() as store:
            ranker = Ranker(one, store, store.entries_for_ranking(), NOW)
            out.append([[(r.id, r.score, r.reasons, r.section, r.highlight) for r in items]
                        for _, items in ranker.rank_many([(u, None) for u in one.users.values()],
                                                         selection=Selection(5, 0.01, 1))])
    assert out[0] == out[1]
    assert all(out[0]) and any(r[3] == "Styles" for r in out[0][1])


def _ranked_with_a_river_library(project) -> list:
    """(title, reasons, highlight) of a reader whose one library paper is about river floods:
    the flood entry is named for it, with the paper's own words marked."""
    (project.root / "lib.bib").write_text(
        "@article{a, title={Graph networks for rivers},"
        " abstract={Rainfall and river gauges forecast floods with graph networks.}}\n")
    setup(project, 'papers = "lib.bib"\n')
    with project.store() as s:
        for key in PAPERS:
            add(s, key)
    got = [(r.title, r.reasons, r.highlight) for r in ranked(project)[0]]
    flood = next(h for t, _, h in got if t == "Graph networks for flood forecasting")
    assert [flood.text[a:b] for a, b in flood.marks] == ["River gauges", "rainfall", "floods"]
    return got


def _forbid_stemming(monkeypatch, why: str) -> None:
    """From here on, any stemming fails the test with `why`; the per-process caches of words
    already stemmed emptied, as in the next process."""
    def stemmed(*_):
        raise AssertionError(why)
    highlight.seed_words.cache_clear()
    highlight._title_words.cache_clear()
    monkeypatch.setattr(lexical, "stems", stemmed)
    monkeypatch.setattr(lexical, "stem", stemmed)


def test_a_ranking_from_stored_data_stems_nothing(project, monkeypatch):
    """A seed paper's words, as its highlights mark them, are worked out once, when its
    library is read, and stored with it (like the entries' words and sentences): a later
    ranking stems no text at all, and highlights exactly as the first one did."""
    first = _ranked_with_a_river_library(project)
    _forbid_stemming(monkeypatch, "a ranking from stored data stemmed a text")
    assert [(r.title, r.reasons, r.highlight) for r in ranked(project)[0]] == first


def test_a_library_reads_back_from_its_cache_as_it_was_written():
    """The cache (format 7: a JSON head, then the arrays' bytes) gives back every list and
    array, for a library with accents and emoji in it and for an empty one; the JSON of
    formats up to 6 still reads (`digest prune` reads every cached library)."""
    def fields(s):
        return [s.titles, s.texts, s.warnings, s.ids.tolist(), s.counts.tolist(), s.sizes,
                s.keys, s.words.tolist(), s.word_sizes, s.title_words.tolist(), s.title_keys]

    full = Seeds(["Café physics 🐝", "Second"], ["Über alles. Text 🐝", "More"], ["a warning"],
                 np.asarray([5, 9, 2, 2_000_000_000], np.int64), np.asarray([1, 3, 2, 7], np.float32),
                 [3, 1], ["arxiv:2411.01234"], np.asarray([4, 8, 1], np.int32), [2, 1],
                 np.asarray([8], np.int32), ["cafe physics", "second"])
    empty = Seeds([], [], [], np.zeros(0, np.int64), np.zeros(0, np.float32), [])
    for seeds in (full, empty):
        back = Seeds.decode(seeds.to_bytes())
        assert fields(back) == fields(seeds)
        assert back.ids.dtype == np.int64 and back.counts.dtype == np.float32
        assert fields(Seeds.decode(_format_6(seeds))) == fields(seeds)


def test_a_damaged_library_cache_is_read_again_from_the_file(project):
    """The cache is derived data: a row that no longer decodes (cut short, not this
    format's, or with lengths that disagree with its bytes or with each other, which would
    read as wrong arrays) is parsed again from the library file, with the same ranking, and
    rewritten."""
    first = _ranked_with_a_river_library(project)
    with project.store() as s:
        good = s.db.execute("SELECT data FROM libraries").fetchone()[0]
    size = int.from_bytes(good[:4], "little")
    head = json.loads(good[4:4 + size])

    def with_head(**changed) -> bytes:
        new = json.dumps(head | changed).encode()
        return len(new).to_bytes(4, "little") + new + good[4 + size:]

    lengths = head["lengths"]
    wrong = [with_head(lengths=[-1, *lengths[1:]]), with_head(lengths=[*lengths[:3], -1]),
             with_head(lengths=[lengths[0] - 1, lengths[1] - 1, lengths[2], lengths[3] + 2]),
             with_head(sizes=[*head["sizes"][:-1], head["sizes"][-1] + 1]),
             with_head(word_sizes=[*head["word_sizes"][:-1], head["word_sizes"][-1] - 1]),
             with_head(titles=head["titles"] + ["one more"]), good + b"\x00\x00\x00\x00"]
    for damaged in wrong:
        assert Seeds.decode(damaged) is None
    for damaged in (b"\x05\x00\x00\x00{bad", b"\xff" * 3, b"\x02\x00\x00\x00{}", *wrong):
        with project.store() as s:
            s.db.execute("UPDATE libraries SET data = ?", [damaged])
            s.db.conn.commit()
        assert [(r.title, r.reasons, r.highlight) for r in ranked(project)[0]] == first
        with project.store() as s:
            assert len(Seeds.decode(s.db.execute("SELECT data FROM libraries").fetchone()[0]).titles)


def _format_6(seeds: Seeds) -> str:
    """A library as the cache held it up to format 6: JSON, its arrays base64 int32."""
    def pack(a):
        return base64.b64encode(np.asarray(a, dtype="<i4").tobytes()).decode()
    return json.dumps({"titles": seeds.titles, "texts": seeds.texts, "warnings": seeds.warnings,
                       "ids": pack(seeds.ids), "counts": pack(seeds.counts), "sizes": seeds.sizes,
                       "keys": seeds.keys, "words": pack(seeds.words),
                       "word_sizes": seeds.word_sizes, "title_words": pack(seeds.title_words),
                       "title_keys": seeds.title_keys})


def test_a_library_cached_without_its_words_is_read_again(project):
    """An installation upgraded from a version whose library cache held no highlight words
    (format 5): the library is parsed again rather than read without them, so the seed
    paper's words are still marked, and the cache then holds them."""
    first = _ranked_with_a_river_library(project)
    with project.store() as s:
        path, stamp, data = s.db.execute("SELECT path, stamp, data FROM libraries").fetchone()
        old = {k: v for k, v in json.loads(_format_6(Seeds.decode(data))).items()
               if k not in ("words", "word_sizes", "title_words", "title_keys")}
        s.save_library(path, stamp.rsplit(":", 1)[0] + f":{LIBRARY_CACHE_FORMAT - 1}",
                       json.dumps(old))
    assert [(r.title, r.reasons, r.highlight) for r in ranked(project)[0]] == first
    with project.store() as s:
        assert len(Seeds.decode(s.db.execute("SELECT data FROM libraries").fetchone()[0]).words)


def test_a_finished_ranking_is_freed_without_the_collector(project):
    """Nothing in a Ranker points back at it: a preview server ranks on every request, and with
    collections made rare while ranking (collector.py), a cycle would keep each request's
    model in memory."""
    setup(project, '[users.u.interests]\n"style transfer" = 1\n')
    with project.store() as s:
        for key in PAPERS:
            add(s, key)
    gc.disable()
    try:
        results, ranker = ranked(project)
        assert any(r.highlight.marks for r in results)
        gone = weakref.ref(ranker)
        del ranker
        assert gone() is None
    finally:
        gc.enable()


def test_readers_with_and_without_a_library_in_one_batch(project):
    """A batch mixes readers with seed papers and readers without; both get their reasons."""
    (project.root / "lib.bib").write_text(
        "@article{a, title={Fast style transfer for video}, abstract={Style transfer on video.}}\n")
    project.write('[feeds.papers]\npath = "f.xml"\n'
                  '[users.lib]\nemail = "l@example.org"\npapers = "lib.bib"\n'
                  '[users.plain]\nemail = "p@example.org"\n[users.plain.interests]\n"flood" = 1\n')
    config = project.config()
    with project.store() as s:
        for key in PAPERS:
            add(s, key)
        ranker = Ranker(config, s, s.entries_for_ranking(), NOW)
        out = list(ranker.rank_many([(u, None) for u in config.users.values()],
                                    selection=Selection(3, 0.01, 0)))
    (_, lib_items), (_, plain_items) = out
    assert lib_items[0].reasons[0].startswith('similar to your paper "Fast style transfer')
    assert plain_items[0].title == "Graph networks for flood forecasting"
    assert plain_items[0].reasons == ['matches "flood" in the title']


def test_phrase_index_agrees_with_a_plain_scan():
    """The postings-based phrase matcher against a direct scan of every entry, on random
    entries over a tiny vocabulary (so phrases of 1-3 words, repeats included, occur in every
    way: together, apart, across the title/abstract boundary, absent)."""
    import random

    import numpy as np

    from digest.rank.phrases import APART, IN_ABSTRACT, IN_TITLE
    from digest.rank.phrases import PhraseIndex as _PhraseIndex

    def together(ws, p):
        return any(ws[i:i + len(p)] == list(p) for i in range(len(ws) - len(p) + 1))

    rnd = random.Random(3)
    titles = [[rnd.randrange(1, 7) for _ in range(rnd.randrange(0, 6))] for _ in range(300)]
    bodies = [[rnd.randrange(1, 7) for _ in range(rnd.randrange(0, 25))] for _ in range(300)]
    index = _PhraseIndex([np.asarray(t, np.int32) for t in titles],
                         [np.asarray(b, np.int32) for b in bodies])
    phrases = {tuple(rnd.randrange(1, 8) for _ in range(rnd.randrange(1, 4))) for _ in range(60)}
    index.index(set(list(phrases)[:30]) | {(2, -1)})  # some up front, the rest on demand
    for p in sorted(phrases):
        want = [IN_TITLE if together(t, p) else IN_ABSTRACT if together(b, p)
                else APART if set(p) <= set(t) | set(b) else 0
                for t, b in zip(titles, bodies, strict=True)]
        assert index.match(p).tolist() == want, p
    assert index.match((1, -1)).tolist() == [0] * 300  # a word no entry has


def test_ordered_blocks_continue_each_other_exactly_through_ties():
    """The digest reads the pool best-first in growing blocks; joined, they are exactly the
    full order (score, then id), even with ties at every block's cut."""
    from types import SimpleNamespace

    import numpy as np

    from digest.rank.select import ordered

    rnd = np.random.default_rng(5)
    scores = rnd.integers(0, 6, 500).astype(np.float32)  # a handful of values: many ties
    ranker = SimpleNamespace(id_order=rnd.permutation(500))
    rows = np.sort(rnd.choice(500, 300, replace=False))
    blocks = list(ordered(ranker, rows, scores, 7))
    assert len(blocks) > 2
    joined = np.concatenate(blocks)
    assert joined.tolist() == rows[np.lexsort((ranker.id_order[rows], -scores[rows]))].tolist()


def test_the_compiled_stemmer_gives_the_pure_python_stems():
    """PyStemmer (C) is what stems: the stems stored with entries and cached libraries must be
    the ones snowballstemmer's pure-Python English stemmer gives, word for word."""
    from pathlib import Path

    from snowballstemmer.english_stemmer import EnglishStemmer

    from digest import lexical

    text = " ".join(p.read_text(errors="ignore") for p in Path(__file__).parent.glob("fixtures/*.*"))
    found = set(lexical.WORD_RE.findall(text.lower()))
    # Each word also with the endings English stemming is about.
    words = sorted(found | {w + end for w in found if w.isalpha()
                            for end in ("s", "es", "ing", "ed", "ly", "ation", "ness", "ize")})
    assert len(found) > 300 and len(words) > 2000
    assert type(lexical._stemmer).__module__ == "Stemmer"  # the compiled one is installed
    slow = EnglishStemmer()
    assert [lexical._stemmer.stemWord(w) for w in words] == [slow.stemWord(w) for w in words]


def test_a_digest_never_offers_a_paper_already_in_the_library(project):
    """A library paper that turns up in a feed (a new arXiv version, a paper just saved) is the
    closest match there is, and the one entry the reader needs no news of: it is left out of
    the digest, matched on its title as feeds join titles (case and punctuation aside).
    `digest rank --all` still lists it, with its score."""
    (project.root / "lib.bib").write_text(
        "@article{a, title={Graph Networks for Flood Forecasting},"
        " abstract={River gauges and rainfall predict floods with graph networks.}}\n")
    setup(project, 'papers = "lib.bib"\n')
    with project.store() as s:
        add(s, "mine", title="Graph networks for flood forecasting.")
        add(s, "flood2", title="Flood forecasting from river gauges with graph networks")
        for k in ("bees", "sparse", "st-phrase"):
            add(s, k)
    config = project.config()
    with project.store() as store:
        ranker = Ranker(config, store, store.entries_for_ranking(), NOW)
        everything = titles(ranker.rank(config.users["u"]))
        picked = titles(ranker.digest(config.users["u"], None, Selection(5, -100.0, 0)))
    assert "Graph networks for flood forecasting." in everything[:2]  # --all: it is there
    assert "Graph networks for flood forecasting." not in picked
    assert picked[0] == "Flood forecasting from river gauges with graph networks"
    assert len(picked) == 4  # only that one went


def test_a_retitled_version_of_a_library_paper_is_known_by_its_arxiv_id_or_doi(project):
    """A paper's new arXiv version may carry a new title; the library's eprint or DOI still
    names it, as the entry's link does. It stays out of digests, from the parsed library and
    from its cache alike; another paper with the same words is still offered."""
    (project.root / "lib.bib").write_text(
        "@article{a, title={Graph Networks for Flood Forecasting}, eprint={2411.01234},"
        " archivePrefix={arXiv}, abstract={River gauges and rainfall predict floods.}}\n"
        "@article{b, title={Pollinator Counts}, doi={10.1000/BEES.7},"
        " abstract={Bumblebees visit meadow flowers.}}\n")
    setup(project, 'papers = "lib.bib"\n')
    new_title = "Flood forecasting from river gauges with message-passing networks"
    with project.store() as s:
        for guid, link, title in (
                ("oai:arXiv.org:2411.01234v2", "https://arxiv.org/abs/2411.01234v2", new_title),
                ("doi:10.1000/bees.7", "https://journal.example.org/bees-7", "Counting pollinators"),
                ("urn:other", "https://papers.example.org/other",
                 "Flood forecasting from river gauges with graph networks")):
            s.add_entries("papers", [make_entry(
                guid=guid, link=link, title=title, summary="River gauges and rainfall floods.",
                summary_is_html=False, authors=["Ann Author"], categories=[],
                published=NOW - timedelta(hours=2), fetched=NOW - timedelta(hours=1))],
                NOW - timedelta(hours=1))
        add(s, "bees")
    config = project.config()
    for _ in range(2):  # parsed, then read back from the library cache
        with project.store() as store:
            ranker = Ranker(config, store, store.entries_for_ranking(), NOW)
            ranked = ranker.rank(config.users["u"])
            picked = titles(ranker.digest(config.users["u"], None, Selection(10, -100.0, 0)))
        everything = titles(ranked)
        assert new_title in everything and "Counting pollinators" in everything
        mine = [r.reasons for r in ranked if r.title in (new_title, "Counting pollinators")]
        assert mine == [["in your library"]] * 2, mine
        assert new_title not in picked and "Counting pollinators" not in picked
        assert "Flood forecasting from river gauges with graph networks" in picked


def test_votes_outlive_the_pruning_of_what_they_were_on(project):
    """`digest prune` (and `digest run`'s daily prune) deletes old entry content, but not an
    entry a reader voted on: a 👍 from last year is still a seed of their profile, a 👎 still
    counts against, and the liked paper is still named in the reasons."""
    setup(project, "")
    long_ago = NOW - timedelta(days=400)
    with project.store() as s:
        flood = add(s, "flood", published=long_ago)
        bees = add(s, "bees", published=long_ago)
        add(s, "old", title="An unvoted paper on glaciers from last year", published=long_ago)
        s.db.execute("UPDATE entries SET fetched = ?", [iso_utc(long_ago)])
        ids = {e.title: e.id for e in s.entries_for_ranking()}
        s.set_vote("u", ids[flood.title], +1, long_ago)
        s.set_vote("u", ids[bees.title], -1, long_ago)
        assert s.prune(NOW - timedelta(days=180)) == 1  # the unvoted one only
        assert {e.title for e in s.entries_for_ranking()} == {flood.title, bees.title}
        add(s, "rain", title="Rainfall nowcasting for river floods")
        add(s, "pollinators", title="Bumblebee foraging on blue flowers in gardens")
        add(s, "sparse")
    config = project.config()
    with project.store() as s:
        ranker = Ranker(config, s, s.entries_for_ranking(since=NOW - timedelta(days=1)), NOW)
        results = {r.title: r for r in ranker.rank(config.users["u"])}
    rain = results["Rainfall nowcasting for river floods"]
    assert rain.reasons == ['like "Graph networks for flood forecasting", which you liked']
    assert rain.score > results["Sparse attention for long documents"].score
    assert results["Bumblebee foraging on blue flowers in gardens"].score < 0


def _ranked_then_forgotten(project, profile: str) -> tuple[list, dict]:
    """A reader with `profile` ranked over PAPERS (no semantic extra), each item's (id, score,
    reasons, highlight), and what that ranking stored per entry (words, sentences); then the
    entries' stored work and the libraries' caches emptied, as for entries just polled."""
    setup(project, profile, '[ranking]\nsemantic_mode = "off"')
    with project.store() as s:
        for key in PAPERS:
            add(s, key)
    itself = [(r.id, r.score, r.reasons, r.highlight) for r in ranked(project)[0]]
    with project.store() as s:
        worked_out = {e.id: (e.analysis, e.sentences) for e in s.entries_for_ranking()}
        s.db.execute("UPDATE entries SET analysis = '', sentences = ''")
        s.db.execute("DELETE FROM libraries")
        s.db.conn.commit()
    return itself, worked_out


def test_the_step_after_a_poll_leaves_the_send_nothing_to_work_out(project, monkeypatch):
    """After a poll, warm.py tokenizes the new entries, splits their abstracts into sentences
    and reads the libraries, with or without the semantic extra: the send then stems no text
    at all and ranks, explains and highlights exactly as a send that worked it all out itself.
    A second run finds nothing left to do."""
    from digest.warm import Warmed, warm

    (project.root / "lib.bib").write_text(
        "@article{a, title={Graph networks for rivers},"
        " abstract={Rainfall and river gauges forecast floods with graph networks.}}\n")
    itself, worked_out = _ranked_then_forgotten(project, 'papers = "lib.bib"\n')
    with project.store() as s:
        assert s.db.execute("SELECT count(*) FROM libraries").fetchone()[0] == 0
        assert warm(project.config(), s, NOW) == Warmed(len(PAPERS), len(PAPERS), 0)
        assert {e.id: (e.analysis, e.sentences) for e in s.entries_for_ranking()} == worked_out
        assert s.db.execute("SELECT count(*) FROM libraries").fetchone()[0] == 1
        again = warm(project.config(), s, NOW)
        assert again == Warmed() and not again and str(again) == "nothing to do"
    _forbid_stemming(monkeypatch, "the send stemmed a text the step after the poll could have")
    assert [(r.id, r.score, r.reasons, r.highlight) for r in ranked(project)[0]] == itself


def test_digest_poll_says_what_it_did_ahead_of_the_send(project):
    """`digest poll` ends with one line of what it worked out for the next send, and says
    nothing of it when a poll brings nothing new."""
    (project.root / "feed.xml").write_bytes((FIXTURES / "atom.xml").read_bytes())
    project.write('[ranking]\nsemantic_mode = "off"\n[feeds.local]\npath = "feed.xml"\n'
                  '[users.u]\nemail = "u@example.org"\n[users.u.interests]\n"feed" = 1\n')
    r = project.run("poll")
    assert r.exit_code == 0, r.output
    assert ("Ahead of the next send: 2 entries tokenized, 2 abstracts split into sentences."
            in r.stdout)
    r = project.run("poll", "--force")
    assert r.exit_code == 0, r.output
    assert "Ahead of the next send" not in r.stdout


def test_a_step_after_the_poll_stopped_halfway_keeps_what_it_did(project, monkeypatch):
    """warm.py stores its work a chunk of entries at a time: stopped by an error after the
    first chunk, what that chunk worked out stays stored, the next run does only the rest, and
    the send ranks as if nothing had gone wrong."""
    from digest.rank import prepare
    from digest.store import Store
    from digest.warm import Warmed, warm

    itself, _ = _ranked_then_forgotten(project, '[users.u.interests]\n"style transfer" = 1\n')
    monkeypatch.setattr(prepare, "CHUNK", 2)
    saves = Store.save_sentences

    def full_disk_on_the_second_chunk(self, items, calls=[]):  # noqa: B006 - counts the calls
        calls.append(1)
        if len(calls) == 2:
            raise OSError("database or disk is full")
        saves(self, items)
    monkeypatch.setattr(Store, "save_sentences", full_disk_on_the_second_chunk)
    with project.store() as s, pytest.raises(OSError):
        warm(project.config(), s, NOW)
    monkeypatch.setattr(Store, "save_sentences", saves)
    with project.store() as s:
        kept = [e for e in s.entries_for_ranking() if sentences.decode(e.sentences) is not None]
        assert len(kept) == 2  # the first chunk; the second's words are stored, not its sentences
        assert warm(project.config(), s, NOW) == Warmed(len(PAPERS) - 4, len(PAPERS) - 2, 0)
    assert [(r.id, r.score, r.reasons, r.highlight) for r in ranked(project)[0]] == itself
