"""The ranking model on libraries of different shapes, on one synthetic pool: a one-paper
library, two unrelated topics, twenty related papers, votes, and one score scale for very
different readers. Texts are drawn from small topic vocabularies, so what is "related" is
known by construction."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from digest.normalize import make_entry
from digest.rank import Ranker, Selection, Tuning
from digest.rank.phrases import IN_ABSTRACT
from digest.rank.pool import BODY_HIT, SCATTERED_HIT, TITLE_HIT, Phrase
from digest.rank.prepare import prepare
from digest.rank.scoring import tf_idf_view
from digest.rank.seeds import Seeds, SeedTerms, library_seeds
from digest.rank.tuning import DEFAULT

NOW = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
TOPICS = {
    "bees": "pollination bumblebee foraging flowers nectar hive colony pollen meadow wildflower "
            "apiary queen swarm honey insect",
    "floods": "rainfall river gauge flood forecasting discharge catchment hydrology runoff levee "
              "precipitation stream basin inundation storm",
    "attention": "transformer attention sparse token context sequence encoder decoder heads "
                 "layers language pretraining embedding softmax length",
    "graphs": "graph node edge message passing neighbor molecule adjacency convolution spectral "
              "vertex subgraph link aggregation topology",
    "stars": "galaxy stellar telescope spectra redshift luminosity cosmology supernova orbit "
             "exoplanet photometry nebula quasar halo dwarf",
    "soil": "soil nitrogen tillage crop yield irrigation fertilizer microbe root compost "
            "erosion carbon farm wheat drought",
}
GENERIC = "study data analysis model measure large novel evidence field sample robust".split()  # noqa: SIM905


def text(rnd: random.Random, *topics: str, n: int = 10) -> tuple[str, str]:
    words = [w for t in topics for w in rnd.sample(TOPICS[t].split(), n // len(topics))]
    body = words + rnd.sample(GENERIC, 3)
    rnd.shuffle(body)
    return " ".join(words[:5]).capitalize(), " ".join(body) + "."


def pool(store, rnd: random.Random, per_topic: dict[str, int]) -> dict[str, list[str]]:
    """Entries per topic; returns topic → entry links."""
    links: dict[str, list[str]] = {}
    entries = []
    for topic, count in per_topic.items():
        for k in range(count):
            title, abstract = text(rnd, topic)
            link = f"https://papers.example.org/{topic}{k}"
            links.setdefault(topic, []).append(link)
            entries.append(make_entry(guid=f"urn:{topic}{k}", link=link, title=f"{title} {k}",
                                      summary=abstract, summary_is_html=False, authors=["A. B."],
                                      categories=[], published=NOW - timedelta(hours=2),
                                      fetched=NOW - timedelta(hours=1)))
    store.add_entries("papers", entries, NOW - timedelta(hours=1))
    return links


def library(path, papers: list[tuple[str, str]]) -> str:
    path.write_text("".join(f"@article{{p{k}, title={{{t}}}, abstract={{{a}}}}}\n"
                            for k, (t, a) in enumerate(papers)))
    return path.name


def configure(project, readers: dict[str, str]) -> None:
    project.write('[ranking]\nsemantic_mode = "off"\n[feeds.papers]\npath = "f.xml"\n' + "".join(
        f'[users.{name}]\nemail = "{name}@example.org"\nmax_items = 200\n{body}\n'
        for name, body in readers.items()))


def one_and_many(project, rnd: random.Random, topic: str, many: int):
    """A pool of EVEN, and two readers: "one" with a paper on `topic`, "many" with `many` on
    soil. Their config."""
    with project.store() as s:
        pool(s, rnd, EVEN)
    one_bib = library(project.root / "one.bib", [text(rnd, topic)])
    many_bib = library(project.root / "many.bib", [text(rnd, "soil") for _ in range(many)])
    configure(project, {"one": f'papers = "{one_bib}"', "many": f'papers = "{many_bib}"'})
    return project.config()


def rank(project, name: str, tuning: Tuning = DEFAULT):
    config = project.config()
    with project.store() as store:
        ranker = Ranker(config, store, store.entries_for_ranking(), NOW, tuning=tuning)
        return ranker.rank(config.users[name])


# What the adaptive aggregation must beat, each on the case it gets wrong: a max over seed
# papers (one close paper is enough), and a centroid (closeness to the library as a whole).
PURE_MAX = DEFAULT.with_(temperature=0.005, concepts=0, dirichlet=0.0)
CENTROID = DEFAULT.with_(concept_temperature=50.0)  # TF-IDF is a centroid already


def digest(project, name: str):
    config = project.config()
    with project.store() as store:
        ranker = Ranker(config, store, store.entries_for_ranking(), NOW)
        return ranker.digest(config.users[name], None,
                             Selection(None, config.ranking.min_score, 0))


def topic_of(link: str) -> str:
    return link.rsplit("/", 1)[1].rstrip("0123456789")


EVEN = dict.fromkeys(TOPICS, 30)


def test_a_one_paper_library_finds_its_topic(project):
    rnd = random.Random(1)
    with project.store() as s:
        pool(s, rnd, EVEN)
    configure(project, {"u": f'papers = "{library(project.root / "u.bib", [text(rnd, "bees")])}"'})
    top = [topic_of(r.link) for r in rank(project, "u")[:15]]
    assert top.count("bees") >= 14, top


def test_two_unrelated_topics_are_both_served(project):
    """A bee paper and a stars paper: entries on one of the topics come before entries that
    touch both a little (which a centroid prefers), and neither topic is drowned."""
    rnd = random.Random(2)
    with project.store() as s:
        pool(s, rnd, EVEN)
    lib = library(project.root / "u.bib", [text(rnd, "bees"), text(rnd, "stars")])
    configure(project, {"u": f'papers = "{lib}"'})
    with project.store() as s:  # half bee words, half star words
        s.add_entries("papers", [make_entry(
            guid=f"urn:both{k}", link=f"https://papers.example.org/both{k}",
            title=f"{text(rnd, 'bees', 'stars')[0]} {k}", summary=text(rnd, "bees", "stars")[1],
            summary_is_html=False, authors=["A. B."], categories=[],
            published=NOW - timedelta(hours=2), fetched=NOW - timedelta(hours=1))
            for k in range(10)], NOW - timedelta(hours=1))

    def top(tuning):
        return [topic_of(r.link) for r in rank(project, "u", tuning)[:20]]
    got = top(DEFAULT)
    assert got.count("bees") >= 7 and got.count("stars") >= 7, got
    assert got.count("both") <= 6, got
    assert top(CENTROID).count("both") >= 8  # the case a centroid gets wrong


def test_twenty_related_papers_pull_toward_what_they_share(project):
    """Nineteen graph papers and one that is half graphs, half floods: what the library is
    about (graphs) comes before a flood paper made of that one paper's flood half, which a
    max over seed papers ranks first."""
    rnd = random.Random(3)
    with project.store() as s:
        pool(s, rnd, EVEN)
    floods = TOPICS["floods"].split()[:10]
    side = (" ".join(floods[:5]).capitalize(), " ".join(floods) + ".")
    papers = [text(rnd, "graphs") for _ in range(19)] + [
        (side[0], side[1] + " " + " ".join(TOPICS["graphs"].split()[:10]))]
    configure(project, {"u": f'papers = "{library(project.root / "u.bib", papers)}"'})
    with project.store() as s:
        s.add_entries("papers", [make_entry(
            guid="urn:side", link="https://papers.example.org/side", title=side[0],
            summary=side[1], summary_is_html=False, authors=["A. B."], categories=[],
            published=NOW - timedelta(hours=2), fetched=NOW - timedelta(hours=1))],
            NOW - timedelta(hours=1))

    def order(tuning):
        return [r.link for r in rank(project, "u", tuning)]
    got = order(DEFAULT)
    assert all(topic_of(link) == "graphs" for link in got[:25]), got[:25]
    assert got.index("https://papers.example.org/side") >= 25
    assert order(PURE_MAX).index("https://papers.example.org/side") < 5  # what a max does


def test_a_vote_moves_the_next_ranking_its_way(project):
    rnd = random.Random(4)
    with project.store() as s:
        links = pool(s, rnd, EVEN)
    configure(project, {"u": f'papers = "{library(project.root / "u.bib", [text(rnd, "bees")])}"'})
    before = {r.link: k for k, r in enumerate(rank(project, "u"))}
    with project.store() as s:
        ids = {e.link: e.id for e in s.entries_for_ranking()}
        s.set_vote("u", ids[links["soil"][0]], +1, NOW)  # 👍 a soil paper
        s.set_vote("u", ids[links["bees"][0]], -1, NOW)  # 👎 a bees paper
    after = {r.link: k for k, r in enumerate(rank(project, "u"))}
    soil = [link for link in links["soil"][1:]]
    assert sum(after[x] for x in soil) < sum(before[x] for x in soil)  # soil moved up
    assert sum(after[x] < 30 for x in soil) >= 5  # and into the top 30
    assert after[links["bees"][0]] > before[links["bees"][0]]


def test_very_different_readers_are_cut_alike_by_one_floor(project):
    """A 500-paper library and two papers with three phrases: the same min_score gives both
    a digest of comparable length on the same pool, and a short one on a quiet day."""
    rnd = random.Random(5)
    with project.store() as s:
        pool(s, rnd, {**dict.fromkeys(TOPICS, 60), "bees": 15, "stars": 15})
    big = library(project.root / "big.bib", [text(rnd, "bees") for _ in range(500)])
    small = library(project.root / "small.bib", [text(rnd, "stars"), text(rnd, "stars")])
    configure(project, {
        "big": f'papers = "{big}"',
        "small": f'papers = "{small}"\n[users.small.interests]\n'
                 '"exoplanet" = 1\n"redshift" = 1\n"quasar" = 1'})
    got = {name: [topic_of(r.link) for r in digest(project, name)] for name in ("big", "small")}
    assert 5 <= len(got["big"]) <= 40 and 5 <= len(got["small"]) <= 40, got
    assert max(map(len, got.values())) <= 3 * min(map(len, got.values())), got
    assert got["big"].count("bees") >= 0.6 * len(got["big"]), got
    assert got["small"].count("stars") >= 0.6 * len(got["small"]), got


def test_a_quiet_day_gives_a_short_digest_not_filler(project):
    rnd = random.Random(6)
    with project.store() as s:
        pool(s, rnd, {**dict.fromkeys(TOPICS, 60), "bees": 3})
    configure(project, {"u": f'papers = "{library(project.root / "u.bib", [text(rnd, "bees")])}"'})
    got = [topic_of(r.link) for r in digest(project, "u")]
    assert got.count("bees") == 3 and len(got) <= 6, got


def test_scores_are_deterministic_across_builds(project):
    rnd = random.Random(7)
    with project.store() as s:
        pool(s, rnd, EVEN)
    lib = library(project.root / "u.bib", [text(rnd, "graphs"), text(rnd, "soil")])
    configure(project, {"u": f'papers = "{lib}"'})
    first = [(r.id, r.score, r.reasons) for r in rank(project, "u")]
    assert first == [(r.id, r.score, r.reasons) for r in rank(project, "u")]
    assert len({s for _, s, _ in first}) > len(first) // 2  # scores, not a handful of ties



def test_scores_do_not_depend_on_the_databases_history(tmp_path):
    """Two databases holding the same entries, one storing them in the opposite order after it
    had given term ids to other words first (ids go out in the order words are first seen),
    rank a reader alike: the concept space's random start is drawn from the terms' words and
    its size from the terms the pool uses, neither from term ids nor from storage order."""
    from conftest import Project

    rnd = random.Random(8)
    entries = []
    for topic in TOPICS:
        for k in range(30):
            title, abstract = text(rnd, topic)
            entries.append(make_entry(
                guid=f"urn:{topic}{k}", link=f"https://papers.example.org/{topic}{k}",
                title=f"{title} {k}", summary=abstract, summary_is_html=False, authors=[],
                categories=[], published=NOW - timedelta(hours=2),
                fetched=NOW - timedelta(hours=1)))
    papers = [text(rnd, "graphs"), text(rnd, "graphs", "attention"), text(rnd, "soil")]
    got = []
    for name, order, seen_before in (("a", entries, []),
                                      ("b", entries[::-1], [f"word{k}" for k in range(97)])):
        project = Project(tmp_path / name)
        project.root.mkdir()
        with project.store() as s:
            s.term_ids(seen_before)
            s.add_entries("papers", order, NOW - timedelta(hours=1))
        configure(project, {"u": f'papers = "{library(project.root / "u.bib", papers)}"'})
        got.append({r.id: r.score for r in rank(project, "u")})
    assert got[0].keys() == got[1].keys()
    assert list(got[0]) == list(got[1])  # the same order, best first
    assert np.allclose([got[0][k] for k in got[0]], [got[1][k] for k in got[0]], atol=1e-4)


def test_a_seed_papers_term_cut_keeps_ties_whatever_their_ids():
    """A seed paper matched on its heaviest terms keeps every term tied with the last one
    kept: which of two equal weights comes first is only the order of their term ids."""
    from digest.lexical import TermWeights

    words = ["pollen", "hive", "nectar", "meadow", "swarm", "queen", "river"]
    kept = []
    for ids in (dict(zip(words, range(7), strict=True)),
                dict(zip(words, [6, 0, 5, 1, 4, 2, 3], strict=True))):
        pool = TermWeights([np.asarray([ids[w] for w in doc]) for doc in
                            (["pollen", "hive", "nectar"], ["meadow", "swarm", "queen"],
                             ["river", "pollen"], ["river"])])
        paper = ["river", "pollen", "hive", "nectar", "meadow", "swarm", "queen", "river"]
        counts = {ids[w]: paper.count(w) for w in paper}
        row = pool.matrix(np.asarray(list(counts)), np.asarray(list(counts.values())),
                          [len(counts)], top=3)
        kept.append({w for w in words if row[0, ids[w]] > 0})
    # "river" (twice) first, then five rarer terms of one weight, all kept; "pollen" (as
    # common as "river", once) is lighter and goes.
    assert kept[0] == kept[1] == set(words) - {"pollen"}


def test_the_term_cut_keeps_each_rows_heaviest_terms_as_a_plain_sort_would():
    """Every row of many (thousands of seed papers in one batch, weights small and tied)
    keeps exactly its terms at least as heavy as its `top`-th heaviest, `top` per row."""
    from digest.lexical import TermWeights

    rng = np.random.default_rng(11)
    pool = TermWeights([rng.integers(0, 3000, rng.integers(1, 300)) for _ in range(400)])
    sizes = rng.integers(1, 200, 5000)
    ids = rng.integers(0, 3000, int(sizes.sum()))
    counts = rng.integers(1, 4, len(ids)).astype(np.float32)  # few values: many exact ties
    top = rng.integers(0, 60, len(sizes))
    full = pool.matrix(ids, counts, sizes)
    cut = pool.matrix(ids, counts, sizes, top=top)
    for r in range(len(sizes)):
        row = full.data[full.indptr[r]:full.indptr[r + 1]]
        floor = (np.inf if top[r] == 0 else np.sort(row)[::-1][top[r] - 1]) if len(row) > top[r] else -np.inf
        keep = full.indices[full.indptr[r]:full.indptr[r + 1]][row >= floor]
        assert cut.indices[cut.indptr[r]:cut.indptr[r + 1]].tolist() == keep.tolist()
        assert np.array_equal(cut.data[cut.indptr[r]:cut.indptr[r + 1]], row[row >= floor])


def test_the_tf_idf_view_is_the_mean_cosine_to_the_seeds(project):
    """The centroid path (one row per reader in the product) gives each reader's weighted mean
    of per-seed cosines, for libraries of different sizes in one batch, and is the limit the
    soft-max approaches as T grows."""
    rnd = random.Random(8)
    with project.store() as s:
        pool(s, rnd, EVEN)
    sizes = {"a": 1, "b": 4, "c": 2}
    configure(project, {name: f'papers = "{library(project.root / f"{name}.bib", [text(rnd, t) for t in list(TOPICS)[:k]])}"'
                        for name, k in sizes.items()})
    config = project.config()
    with project.store() as store:
        ranker = Ranker(config, store, store.entries_for_ranking(), NOW)
        metas = [ranker._meta(config.users[name]) for name in sizes]
    seeds = ranker.pool.terms.matrix(np.concatenate([m.seeds.ids for m in metas]),
                                     np.concatenate([m.seeds.counts for m in metas]),
                                     [x for m in metas for x in m.seeds.sizes])
    counts = np.asarray(list(sizes.values()))
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    weights = np.asarray([1, 1, 1, 2.5, 1, 1, 0.5], np.float32)  # 👍 seeds weigh differently
    per_seed = (seeds @ ranker.pool.by_term).toarray() * weights[:, None]
    want = np.vstack([per_seed[o:o + k].mean(axis=0) for o, k in zip(offsets, counts, strict=True)])
    got = tf_idf_view(ranker.pool, seeds, weights, offsets, counts, math.inf)
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-6
    softer = [np.abs(tf_idf_view(ranker.pool, seeds, weights, offsets, counts, t) - want).max()
              for t in (0.1, 1.0, 10.0, 100.0)]
    assert softer == sorted(softer, reverse=True) and 0 < softer[-1] < 0.005, softer
    # The reasons' per-seed cosines, for a few entries (one twice), as a sparse product gives them.
    docs, rows = ranker.pool.terms.docs, [5, 0, 17, 5, len(ranker.entries) - 1]
    for o, k in zip(offsets, counts, strict=True):
        want = (seeds[o:o + k] @ docs[rows].T).toarray()
        assert np.abs(SeedTerms(seeds, o, k, ranker.pool.terms).cosines(rows) - want).max() < 1e-6
    unknown = seeds[:1].copy()  # a seed paper none of whose words is in the pool
    unknown.data[:] = 0
    unknown.eliminate_zeros()
    assert SeedTerms(unknown, 0, 1, ranker.pool.terms).cosines(rows).tolist() == [[0.0] * len(rows)]
    # The table that finds a reader's terms is left empty for the next reader.
    assert (ranker.pool.terms._slots == -1).all()


def test_block_reduce_is_reduceat_over_blocks_that_follow_one_another():
    """softmax.block_reduce, which replaced ufunc.reduceat for speed, gives what it gives,
    for blocks of one row and of many, and for sums and maxima."""
    from digest.rank.softmax import block_reduce

    rng = np.random.default_rng(3)
    cells = rng.standard_normal((23, 7)).astype(np.float32)
    sizes = np.asarray([1, 5, 1, 9, 7])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for ufunc in (np.add, np.maximum):
        got = block_reduce(ufunc, cells, offsets, sizes)
        assert got.dtype == np.float32 and got.shape == (5, 7)
        assert np.allclose(got, ufunc.reduceat(cells, offsets, axis=0), atol=1e-6)


def test_vote_model_shares_the_pools_part_of_the_fit_exactly():
    """The per-pool moments give the same model as solving the whole weighted least squares
    (positives +1, 👎 −1, pool −1 at weight positives/pool) for one reader."""
    import numpy as np
    import scipy.sparse as sp

    from digest.rank.concepts import Concepts
    from digest.rank.votes import VOTE_RIDGE, vote_model

    docs = sp.random(200, 120, density=0.1, random_state=1, format="csr", dtype=np.float32)
    concepts = Concepts(docs, 10, {k: f"w{k}" for k in range(120)})
    liked, disliked = concepts.entries[:4] + 0.01, concepts.entries[10:12]
    got = vote_model(concepts, liked, disliked)
    x = np.vstack([liked, disliked, concepts.entries]).astype(np.float64)
    x = np.hstack([x, np.ones((len(x), 1))])
    y = np.r_[np.ones(4), -np.ones(2), -np.ones(200)]
    weight = np.r_[np.ones(6), np.full(200, 4 / 200)]
    w = np.linalg.solve(x.T @ (x * weight[:, None]) + VOTE_RIDGE * np.eye(x.shape[1]),
                        (x * weight[:, None]).T @ y)
    assert np.allclose(got, concepts.entries @ w[:-1], atol=1e-5)
    assert got.std() > 0  # a model, not a constant


def test_large_libraries_are_scored_in_bounded_pieces_with_the_same_result(project, monkeypatch):
    """Readers whose libraries pass BATCH_SEEDS papers are scored a group at a time, a soft-max
    over more than SEED_CELLS (seed rows × entries) is summed chunk by chunk (a reader's rows,
    and their 👎 items, split across chunks), and a library past DENSE_CELLS keeps sparse rows
    for the reasons: the same scores and reasons as in one piece, for the shipped constants, a
    soft TF-IDF view, and a concept softness so small that the blocks' maxima must come off
    first."""
    from digest.rank import scoring, seeds, softmax

    rnd = random.Random(11)
    with project.store() as s:
        pool(s, rnd, EVEN)
    shapes = {"one": ["bees"], "two": ["floods", "stars"], "none": [],
              "many": ["graphs"] * 12 + ["soil"] * 9, "mixed": list(TOPICS) * 3}
    configure(project, {name: (f'papers = "{library(project.root / f"{name}.bib", [text(rnd, t) for t in topics])}"'
                               if topics else '[users.none.interests]\n"river gauge" = 2')
                        for name, topics in shapes.items()})
    config = project.config()
    users = [config.users[name] for name in shapes]
    with project.store() as store:  # 👍 two, 👎 twelve
        ids = [e.id for e in store.entries_for_ranking()]
        for k, i in enumerate(ids[5:19]):
            store.set_vote("two", i, 1 if k < 2 else -1, NOW)

    def run(tuning):
        with project.store() as store:
            ranker = Ranker(config, store, store.entries_for_ranking(), NOW, tuning=tuning)
            return ranker.score_matrix(users), [  # the readers in one batch: grouped there
                [(r.id, r.reasons) for r in ranked]
                for _, ranked in ranker.rank_many([(u, None) for u in users], limit=15)]

    for tuning in (DEFAULT, DEFAULT.with_(temperature=0.5), DEFAULT.with_(concept_temperature=0.01)):
        whole, reasons = run(tuning)
        with monkeypatch.context() as m:
            m.setattr(softmax, "SEED_CELLS", 7 * 200)
            m.setattr(scoring, "BATCH_SEEDS", 10)
            m.setattr(seeds, "DENSE_CELLS", 40)
            pieces, pieces_reasons = run(tuning)
            assert list(scoring.in_groups([1, 2, 0, 21, 18], int)) == [[1, 2, 0], [21], [18]]
        assert whole.shape == pieces.shape and np.isfinite(whole).all()
        assert np.abs(whole - pieces).max() < 1e-4, tuning
        assert reasons == pieces_reasons, tuning


def test_the_concept_space_built_in_a_thread_is_the_one_built_in_place():
    """With a second core the concept space is built in a thread beside the rest of the pool
    (rank/background.py): the same numbers to the last bit, the thread gone and Python's
    switch interval as it was afterwards, and its error raised in the caller."""
    import sys
    import threading

    import scipy.sparse as sp

    from digest.rank.background import Later
    from digest.rank.concepts import Concepts

    docs = sp.random(400, 300, density=0.05, random_state=3, format="csr", dtype=np.float32)
    words = {k: f"w{k}" for k in range(300)}
    interval, threads = sys.getswitchinterval(), threading.active_count()
    here = Later(False, Concepts, docs, 20, words).result()
    there = Later(True, Concepts, docs, 20, words)
    assert there._thread is not None
    there = there.result()
    assert np.array_equal(here.basis, there.basis) and np.array_equal(here.entries, there.entries)
    assert sys.getswitchinterval() == interval and threading.active_count() == threads

    def broken():
        raise ValueError("no space")

    with pytest.raises(ValueError, match="no space"):
        Later(True, broken).result()
    assert sys.getswitchinterval() == interval and threading.active_count() == threads


def test_a_phrase_kept_sparse_reads_as_its_row_over_every_entry():
    """Phrase keeps only the entries a phrase occurs in: looked up anywhere, including past
    its last entry and in an empty one, it reads as the dense row it replaced."""
    rng = np.random.default_rng(5)
    for n, density in ((50, 0.3), (50, 0.0), (7, 1.0), (300, 0.02)):
        dense = np.where(rng.random(n) < density, rng.integers(1, 4, n), 0).astype(np.int8)
        rows = np.flatnonzero(dense)
        phrase = Phrase(rows, dense[rows])
        idx = rng.integers(0, n, 40)
        assert phrase.at(idx).tolist() == dense[idx].tolist()
        assert phrase.at(np.arange(n)).tolist() == dense.tolist()
        assert phrase.within(IN_ABSTRACT).tolist() == np.flatnonzero(dense >= IN_ABSTRACT).tolist()
        points = np.float32([0.0, SCATTERED_HIT, BODY_HIT, TITLE_HIT])[dense[rows]]
        assert phrase.points.tolist() == points.tolist()


def test_the_query_likelihood_view_is_dirichlet_smoothed_query_likelihood():
    """likelihoods() against the textbook formula, Σ_w q(w) log((c(w,d) + μ p(w|pool)) /
    (|d| + μ)), worked out term by term: equal up to one constant per model (which cannot
    change a reader's order), for models built from counts that include words the pool
    never uses."""
    from digest.lexical import TermWeights

    rng = np.random.default_rng(3)
    docs = [rng.integers(0, 60, rng.integers(1, 40)) for _ in range(50)]
    pool = TermWeights(docs)
    ids = rng.integers(0, 80, 120)  # ids 60-79: in no pool document, so dropped
    counts = rng.integers(1, 5, 120).astype(np.float32)
    owners = np.repeat(np.arange(3), 40)
    models = pool.models(ids, counts, owners, 3)
    assert np.allclose(models.sum(axis=1), 1.0)
    mu = 7.0
    got = pool.likelihoods(models, mu)
    collection = np.bincount(np.concatenate(docs), minlength=80).astype(float)
    p = collection / collection.sum()
    for r in range(3):
        q = np.zeros(80)
        np.add.at(q, ids[owners == r], counts[owners == r])
        q[collection == 0] = 0
        q /= q.sum()
        for d, doc in enumerate(docs):
            c = np.bincount(doc, minlength=80)
            words = np.flatnonzero(q)
            want = float(np.sum(q[words] * np.log((c[words] + mu * p[words]) / (len(doc) + mu))))
            if d == 0:
                offset = got[r, 0] - want
            assert got[r, d] - want == pytest.approx(offset, abs=1e-4)


def test_the_query_likelihood_view_leaves_a_one_paper_library_as_it_was(project):
    """The view matches a library by all its words together, at a share of 1 − 1/papers: a
    one-paper library (where it did worse) scores exactly as without it; a library of
    several papers does not."""
    config = one_and_many(project, random.Random(12), "soil", 6)
    with project.store() as store:
        ranker = Ranker(config, store, store.entries_for_ranking(), NOW)
        users = [config.users["one"], config.users["many"]]
        on = ranker.score_matrix(users)
        ranker.tuning = DEFAULT.with_(dirichlet=0.0)
        off = ranker.score_matrix(users)
    assert DEFAULT.dirichlet > 0
    assert np.array_equal(on[0], off[0])
    assert not np.allclose(on[1], off[1])


def sentence(rnd: random.Random, topic: str, n: int = 8) -> str:
    return " ".join(rnd.sample(TOPICS[topic].split(), n)).capitalize() + "."


def test_a_few_papers_are_matched_sentence_by_sentence_in_the_concept_space(project):
    """A paper with a sentence on each of three topics: an entry with one sentence on one of
    them (and the rest on other things) gains on an entry that mixes the three in one
    sentence, once sentences are matched (sentence_match.by_concept_sentence); a library of
    four papers or more is matched as before."""
    rnd = random.Random(13)
    with project.store() as s:
        pool(s, rnd, EVEN)
        bees = sentence(rnd, "bees")
        seed = " ".join([bees, sentence(rnd, "floods"), sentence(rnd, "stars")])
        said = bees.lower().rstrip(".").split()  # the seed's bee sentence, in another order
        rnd.shuffle(said)
        facet = " ".join([" ".join(said).capitalize() + ".", sentence(rnd, "soil"),
                          sentence(rnd, "graphs")])
        blend = " ".join(rnd.sample(TOPICS["bees"].split(), 4) + rnd.sample(TOPICS["floods"].split(), 4)
                         + rnd.sample(TOPICS["stars"].split(), 4)).capitalize() + "."
        s.add_entries("papers", [make_entry(
            guid=f"urn:{k}", link=f"https://papers.example.org/{k}", title=f"Field notes {k}",
            summary=body, summary_is_html=False, authors=["A. B."], categories=[],
            published=NOW - timedelta(hours=2), fetched=NOW - timedelta(hours=1))
            for k, body in (("facet", facet), ("blend", blend))], NOW - timedelta(hours=1))
    one = library(project.root / "one.bib", [("Three observations", seed)])
    many = library(project.root / "many.bib", [("Three observations", seed)]
                    + [text(rnd, "attention") for _ in range(3)])
    configure(project, {"one": f'papers = "{one}"', "many": f'papers = "{many}"'})
    config = project.config()
    with project.store() as store:
        ranker = Ranker(config, store, store.entries_for_ranking(), NOW)
        users = [config.users["one"], config.users["many"]]
        links = [e.link.rsplit("/", 1)[1] for e in ranker.entries]
        on = ranker.score_matrix(users)
        ranker.tuning = DEFAULT.with_(concept_sentences=0.0)
        off = ranker.score_matrix(users)
    f, b = links.index("facet"), links.index("blend")
    assert DEFAULT.concept_sentences > 0
    assert (on[0, f] - on[0, b]) - (off[0, f] - off[0, b]) > 0.1, (on[0, [f, b]], off[0, [f, b]])
    assert np.array_equal(on[1], off[1])


def test_entry_sentences_in_the_concept_space_are_the_same_stored_or_not(project):
    """An entry's sentences read from what prepare.py stored, or split from its abstract
    when nothing is stored, give the same concept-space rows; what was split is stored with
    the ranking's other sentences (Pool.save_sentences), as prepare.py would have."""
    rnd = random.Random(14)
    with project.store() as s:
        pool(s, rnd, EVEN)
        s.add_entries("papers", [make_entry(
            guid="urn:long", link="https://papers.example.org/long", title="Three parts",
            summary=" ".join(sentence(rnd, t) for t in ("soil", "bees", "graphs")),
            summary_is_html=False, authors=["A. B."], categories=[],
            published=NOW - timedelta(hours=2), fetched=NOW - timedelta(hours=1))],
            NOW - timedelta(hours=1))
    configure(project, {})
    config = project.config()
    def split() -> dict:
        return dict(store.db.execute("SELECT id, sentences FROM entries WHERE length(sentences) > 0"))
    with project.store() as store:
        first = Ranker(config, store, store.entries_for_ranking(), NOW).pool
        fresh = first.concept_sentences
        assert split() == {}
        first.save_sentences()
        saved = split()
        assert len(saved) == len(EVEN) * 30 + 1
        store.db.execute("UPDATE entries SET sentences = ''")
        prepare(store, store.entries_for_ranking())
        assert split() == saved
        stored = Ranker(config, store, store.entries_for_ranking(), NOW).pool.concept_sentences
    assert len(fresh.starts) == len(EVEN) * 30 + 1
    assert len(fresh.vectors) == len(fresh.starts) * 2 + 2  # title and one sentence; 3 in one
    assert np.array_equal(fresh.starts, stored.starts)
    assert np.array_equal(fresh.vectors, stored.vectors)


def _format_7(seeds: Seeds) -> bytes:
    """A library cached by the version before the seeds kept their sentences' word ids."""
    data = seeds.to_bytes()
    size = int.from_bytes(data[:4], "little")
    head = json.loads(data[4:4 + size].decode())
    assert head.pop("sentence_sizes") == seeds.sentence_sizes
    head["lengths"] = head["lengths"][:4]
    out = json.dumps(head).encode()
    return len(out).to_bytes(4, "little") + out + data[4 + size:len(data) - 4 * len(
        seeds.sentence_words)]


def test_a_small_librarys_sentences_are_kept_as_the_pool_works_them_out(project, monkeypatch):
    """A library of a few papers keeps its papers' sentences as word ids in its cache, the
    same ones the pool works out from their texts (a word no entry has among them), so a
    ranking need not split them again and scores the same; a larger library keeps none; a
    cache of the format before still decodes (`digest prune` reads every one), without them."""
    rnd = random.Random(15)
    with project.store() as s:
        pool(s, rnd, EVEN)
    seed = " ".join([sentence(rnd, "bees"), "Zyzzyvas hum.", sentence(rnd, "stars")])
    one = library(project.root / "one.bib", [("Three observations", seed), ("Empty", "")])
    many = library(project.root / "many.bib", [text(rnd, "soil") for _ in range(4)])
    configure(project, {"one": f'papers = "{one}"'})
    config = project.config()
    with project.store() as store:
        small = library_seeds(store, project.root / one)
        assert library_seeds(store, project.root / many).sentence_ids() is None
        ranker = Ranker(config, store, store.entries_for_ranking(), NOW)
        kept = small.sentence_ids()
        assert all(map(np.array_equal, kept, ranker.pool.word_ids_of(small.texts)))
        assert [int(np.count_nonzero(k == -1)) for k in kept] == [4, 1]  # the title's too
        assert all(map(np.array_equal, Seeds.decode(small.to_bytes()).sentence_ids(), kept))
        older = Seeds.decode(_format_7(small))
        assert older is not None and older.texts == small.texts and older.sentence_ids() is None
        with_kept = ranker.score_matrix([config.users["one"]])
        monkeypatch.setattr(Seeds, "sentence_ids", lambda self: None)
        assert np.array_equal(ranker.score_matrix([config.users["one"]]), with_kept)


def test_a_few_papers_sentences_are_worked_out_before_workers_fork(project, monkeypatch):
    """With workers, the entries' concept-space sentences are worked out once, in the parent
    before it forks (and the abstracts split for them stored), if some reader's library is
    small enough to be matched sentence by sentence (not in each worker); not when none is,
    nor with the match off. The digests are those of one process."""
    config = one_and_many(project, random.Random(16), "bees", 4)
    readers = [(config.users[u], None) for u in ("one", "many")]
    monkeypatch.setattr(Ranker, "BATCH", 1)  # two batches

    def built(who, tuning=DEFAULT) -> bool:
        with project.store() as store:
            ranker = Ranker(config, store, store.entries_for_ranking(), NOW, tuning=tuning)
            ranker._sentences_ahead(who)
            return "concept_sentences" in vars(ranker.pool)
    assert built(readers)
    with project.store() as store:  # the abstracts it split, stored by the parent
        assert not store.db.execute("SELECT count(*) FROM entries WHERE sentences = ''"
                                    ).fetchone()[0]
    assert not built(readers[1:])
    assert not built(readers, DEFAULT.with_(concept_sentences=0.0))
    with project.store() as store:
        ranker = Ranker(config, store, store.entries_for_ranking(), NOW)
        one_process = [[(r.link, r.score) for r in items] for _, items in ranker.rank_many(readers)]
        forked = [[(r.link, r.score) for r in items]
                  for _, items in ranker.rank_many(readers, workers=2)]
    assert forked == one_process and all(forked)
