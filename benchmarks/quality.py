"""The three ranking dev sets of ../shared/eval, ranked in-process through the real Ranker
(a real store, real .bib libraries, the reader config), scored with the harnesses' own loaders
and metrics. Shared by bench_quality.py and bench_feedback.py.

In-process so that a cross-validation can try many constants in minutes; the harnesses
themselves drive the CLI (`digest poll`, `digest rank NAME --all --json`) and give the same
figures for the shipped constants (bench_quality.py --harness)."""

from __future__ import annotations

import contextlib
import importlib
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from common import SHARED

from digest.config import load_config
from digest.normalize import make_entry
from digest.rank import Ranker, Tuning, concepts
from digest.store import Store

EVAL = SHARED / "eval"
NOW = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
LINK = "https://papers.example.org/"


@contextlib.contextmanager
def start(s: int):
    """The concept space's randomized SVD started its s-th way while inside (0: as shipped).
    Its Gaussian rows are drawn from the terms' words (concepts.gaussian_rows); a prefix of s draws
    others. The space is a truncated SVD only approximately, so a start is a draw, like a
    halving of the readers: the benchmarks report figures over a few of them. Pool models
    built inside must not be reused outside (Project.forget)."""
    original = concepts.gaussian_rows
    if s:
        concepts.gaussian_rows = lambda words, width: original([f"{s}\n{w}" for w in words], width)
    try:
        yield
    finally:
        concepts.gaussian_rows = original


def use_model(directory: Path) -> None:
    """Embed with the sentence-transformers model saved in `directory` instead of the shipped
    all-MiniLM-L6-v2, for this process: the question "would another model do better?"
    answered on the dev sets (bench_quality.py --model). A different model name gives its
    vectors their own cache keys (semantic.key)."""
    from digest import semantic

    semantic.MODEL = directory.name

    def load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer
            self._model = SentenceTransformer(str(directory), device="cpu")
        return self._model
    semantic.Embedder._load = load


def harness(name: str):
    """One of ../shared/eval's harness modules (imported, never copied)."""
    if str(EVAL) not in sys.path:
        sys.path.insert(0, str(EVAL))
    return importlib.import_module(name)


@dataclass
class DevSet:
    name: str
    metric: str
    lower_is_better: bool
    readers: dict[str, list[dict]]  # reader → library papers ({title, abstract, authors})
    candidates: dict[str, dict]  # id → paper
    # (reader, {id: score}) → (numerator, denominator): the metric over any readers is the sum
    # of their numerators over the sum of their denominators, so a half is scored by adding.
    part: object
    baselines: dict  # name → () → {reader: {id: score}}
    hidden: dict | None = None  # citeulike: reader → the ids held back from their library

    def better(self, a: float, b: float) -> bool:
        return a < b if self.lower_is_better else a > b

    def parts(self, names, scores) -> np.ndarray:
        """(readers × 2): each reader's numerator and denominator."""
        return np.asarray([self.part(r, scores[r]) for r in names], dtype=float).reshape(-1, 2)

    def score(self, names, scores) -> float:
        """The metric over the readers `names` ({reader: {id: score}})."""
        num, den = self.parts(names, scores).sum(axis=0)
        return num / den


def _paper(p: dict) -> dict:
    return {"title": p.get("title") or "", "abstract": p.get("abstract") or "",
            "authors": list(p.get("authors") or [])}


def reviewer(limit: int | None = None) -> DevSet:
    rq = harness("rank_quality")
    users, paper = rq.load(EVAL / "reviewer-dev", "all")
    users = users[:limit] if limit else users
    judged = {u["id"]: u["judged"] for u in users}

    def part(r, scores):  # errors over judged pairs: pairs weigh alike across readers
        return rq.pairwise_error(judged[r], scores)

    def base(kind):
        return lambda: rq.baseline(users, paper, kind)
    return DevSet("reviewer-dev", "pairwise error", True,
                  {u["id"]: [_paper(p) for p in u["profile"]] for u in users},
                  {p: _paper(paper(p)) for u in users for p, _ in u["judged"]}, part,
                  {"TF-IDF centroid": base("tfidf-mean"), "TF-IDF max": base("tfidf-max")})


def csfcube(limit: int | None = None) -> DevSet:
    cs = harness("csfcube_eval")
    queries, papers = cs.load(EVAL / "csfcube-dev", "dev")
    queries = queries[:limit] if limit else queries
    judged = {q["id"]: q["judged"] for q in queries}
    cands = {c: _paper(papers[c]) for q in queries for c, _ in q["judged"]}
    cands.update({q["query"]: _paper(papers[q["query"]]) for q in queries})

    own = {q["id"]: q["query"] for q in queries}

    def part(r, scores):  # a mean over the queries that have a relevant candidate
        # Without the query paper itself, as the harness scores a project (one query paper is
        # among its own judged candidates: ranked first, it would add 0.014 to the mean).
        x = cs.ndcg(judged[r], {c: s for c, s in scores.items() if c != own[r]})
        return (0.0, 0.0) if x is None else (x, 1.0)

    def base(kind):
        return lambda: cs.baseline(queries, papers, kind)
    return DevSet("csfcube-dev", "NDCG@20", False,
                  {q["id"]: [_paper(papers[q["query"]])] for q in queries}, cands, part,
                  {"TF-IDF": base("tfidf"), "BM25": base("bm25")})


def citeulike(limit: int | None = None) -> DevSet:
    cu = harness("citeulike_eval")
    users, split_libs, pool, paper, pop = cu.load(EVAL / "citeulike-dev", "dev")
    users = users[:limit] if limit else users

    def part(u, scores):  # a mean over readers
        seeds, hidden = split_libs[u]
        seen = {str(i) for i in seeds}
        ranking = sorted((str(i) for i in pool if str(i) not in seen),
                         key=lambda i: -scores.get(i, -1e9))
        return cu.metrics({str(i) for i in hidden}, ranking)[0], 1.0

    def base(kind):
        def run():
            got = cu.baseline(users, split_libs, pool, paper, pop, kind)
            return {u: {str(i): s for i, s in got[u].items()} for u in users}
        return run
    return DevSet("citeulike-dev", "recall@20", False,
                  {u: [_paper(paper(i)) for i in split_libs[u][0]] for u in users},
                  {str(i): _paper(paper(i)) for i in pool}, part,
                  {"TF-IDF centroid": base("tfidf-mean"), "TF-IDF max": base("tfidf-max"),
                   "popularity": base("popular")},
                  {u: [str(i) for i in split_libs[u][1]] for u in users})


SETS = {"reviewer-dev": reviewer, "csfcube-dev": csfcube, "citeulike-dev": citeulike}


def _bib_field(text: str) -> str:
    return text.replace("{", "(").replace("}", ")")


def write_bib(path: Path, papers: list[dict]) -> None:
    path.write_text("".join(
        f"@article{{p{k},\n  title = {{{_bib_field(p['title'])}}},\n"
        f"  author = {{{_bib_field(' and '.join(p['authors']))}}},\n"
        f"  abstract = {{{_bib_field(p['abstract'])}}}\n}}\n" for k, p in enumerate(papers)))


class Project:
    """A dev set as a digest installation: every candidate an entry of one feed, every reader
    a [users] table whose `papers` is their library as BibTeX."""

    def __init__(self, dev: DevSet, tmp: Path, semantic: bool = False):
        self.dev = dev
        tables = []
        for k, lib in enumerate(dev.readers.values()):
            write_bib(tmp / f"r{k}.bib", lib)
            tables.append(f'[users.r{k}]\nemail = "r{k}@example.org"\npapers = "r{k}.bib"\n')
        self.names = {f"r{k}": name for k, name in enumerate(dev.readers)}
        mode = "on" if semantic else "off"
        (tmp / "config.toml").write_text(
            f'[digest]\ndatabase = "d.db"\n[ranking]\nsemantic_mode = "{mode}"\n'
            '[feeds.eval]\npath = "eval.xml"\n' + "".join(tables))
        self.config = load_config(tmp / "config.toml")
        self.store = Store(tmp / "d.db")
        entries = [make_entry(guid=f"urn:paper:{pid}", link=LINK + pid, title=p["title"],
                              summary=p["abstract"], summary_is_html=False,
                              authors=p["authors"][:5] or ["Example Author"], categories=[],
                              published=NOW - timedelta(hours=1),
                              fetched=NOW - timedelta(hours=1))
                   for pid, p in dev.candidates.items()]
        self.store.add_entries("eval", entries, NOW - timedelta(hours=1))
        self.embedder = None
        if semantic:
            from digest.semantic import Embedder
            self.embedder = Embedder(self.store)
        self._rankers: dict[int, Ranker] = {}

    def ranker(self, tuning: Tuning) -> Ranker:
        """A Ranker per pool model (concept dimensions); the other constants are per ranking."""
        r = self._rankers.get(tuning.concepts)
        if r is None:
            entries = self.store.entries_for_ranking()
            r = self._rankers[tuning.concepts] = Ranker(self.config, self.store, entries, NOW,
                                                        self.embedder, tuning)
        r.tuning = tuning
        return r

    def forget(self) -> None:
        """Drop the pool models: the next scores build them again."""
        self._rankers.clear()

    def scores(self, tuning: Tuning) -> dict[str, dict[str, float]]:
        """{reader: {candidate id: score}}, as `digest rank NAME --all --json` gives them."""
        ranker = self.ranker(tuning)
        matrix = ranker.score_matrix([self.config.users[u] for u in self.names])
        ids = [e.link[len(LINK):] for e in ranker.entries]
        return {self.names[u]: dict(zip(ids, [round(x, 6) for x in row.tolist()], strict=True))
                for u, row in zip(self.names, matrix, strict=True)}
