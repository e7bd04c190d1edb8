"""Personal ranking: one score per (reader, entry), with the reasons behind it.

    relevance = library   · softmax_sim(entry, seed papers + feedback·👍 entries)  TF-IDF
              + semantic  · softmax_sim(entry, the same seeds)                embeddings (extra)
              + interests · Σ weight × phrase match (title 0.4, abstract 0.2, scattered 0.06)
              + authors   · 0.5 per followed author
              + categories· 0.3 if in a followed category
              − feedback  · 0.5 · softmax_sim(entry, 👎 entries)
    score = (relevance + popularity · log(1 + upvotes) / log(101)) · 0.5 ^ (age / half_life)
    score × 0.1 − 0.2 when an `exclude` phrase matches

The weights are the [ranking] settings. softmax_sim is T·log(mean(exp(cos/T))): near the best
match when one seed is close, higher when several are, and on the cosine scale whatever the
library size. A reader with no profile at all is ranked by popularity and recency alone.

Everything shared by readers (tokens, IDF, the entry matrix, embeddings, phrase matches) is
built once per Ranker; per reader only the seed matrix and a few vector operations remain.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import multiprocessing
import re
import threading
import unicodedata
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import chain, pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from digest.config import Config, UserConfig
from digest.errors import ConfigError
from digest.lexical import (
    TOKENIZER_VERSION,
    TermWeights,
    analyze_entry,
    decode_analysis,
    encode_analysis,
    soft_max,
    tokens,
    words,
)
from digest.library import load_library
from digest.store import Store

TITLE_HIT, BODY_HIT, SCATTERED_HIT = 0.4, 0.2, 0.06
APART, IN_ABSTRACT, IN_TITLE = 1, 2, 3  # where a phrase occurs in an entry (0: not all words)
_POINTS = np.asarray([0.0, SCATTERED_HIT, BODY_HIT, TITLE_HIT], dtype=np.float32)
AUTHOR_BOOST, CATEGORY_BOOST, NEGATIVE_SHARE = 0.5, 0.3, 0.5
EXCLUDE_FACTOR, EXCLUDE_PENALTY = 0.1, 0.2
SEMANTIC_TEMPERATURE = 0.05  # embedding cosines spread less than TF-IDF ones
POPULAR_UPVOTES = 10  # "trending: N upvotes" is said from here on
SIMILAR_REASON = 0.12  # a seed paper this close is named in the reasons
STORY_POSTINGS = 32  # see _stories
NEAR_DUPLICATE = 0.8  # Jaccard of title words above which two picks are one story
JOIN = NEAR_DUPLICATE / (1 + NEAR_DUPLICATE)  # the same bound on |a ∩ b| / (|a| + |b|)
# A seed paper is matched on its 40 heaviest terms: the sparse product costs in proportion to
# them, and the light ones barely move a cosine (reviewer-dev error 0.205 with all of them).
SEED_TERMS = 40
LIBRARY_CACHE_FORMAT = 3  # bump when _Seeds.to_json changes


@dataclass
class _Phrase:
    """Where one interest phrase occurs in the pool; shared by every reader who has it."""

    match: np.ndarray  # per entry: IN_TITLE, IN_ABSTRACT, APART or 0
    points: np.ndarray  # the same as interest points


@dataclass
class _Seeds:
    """A seed library as ranking uses it; cached per file version (Ranker.library)."""

    titles: list[str]
    texts: list[str]  # what the embeddings are computed from
    warnings: list[str]
    ids: np.ndarray  # term ids of every paper, paper after paper
    counts: np.ndarray  # their counts
    sizes: list[int]  # terms per paper

    # The arrays as base64 int32: a JSON list of numbers decodes ~5 times slower, and this
    # is read once per reader per ranking.
    def to_json(self) -> str:
        def pack(a):
            return base64.b64encode(np.asarray(a, dtype="<i4").tobytes()).decode()
        return json.dumps({"titles": self.titles, "texts": self.texts, "warnings": self.warnings,
                           "ids": pack(self.ids), "counts": pack(self.counts),
                           "sizes": self.sizes})

    @classmethod
    def from_json(cls, data: str) -> _Seeds:
        d = json.loads(data)
        def unpack(s):
            return np.frombuffer(base64.b64decode(s), dtype="<i4")
        return cls(d["titles"], d["texts"], d["warnings"], unpack(d["ids"]).astype(np.int64),
                   unpack(d["counts"]).astype(np.float32), d["sizes"])


@dataclass
class _Reader:
    """What one reader's scoring needs beyond the config, kept to explain the shown items."""

    seed_names: list[str]
    n_liked: int
    seeds: _Seeds  # library papers, then 👍 entries
    negative: sp.csr_matrix | None = None
    phrases: list[tuple[str, float, _Phrase]] = field(default_factory=list)
    excluded: list[tuple[str, _Phrase]] = field(default_factory=list)
    sims: list[np.ndarray] = field(default_factory=list)  # (seeds × entries) per model
    authors: frozenset[str] = frozenset()  # followed authors' keys


_Pick = tuple[int, float, list[str], bool]  # entry index, score, reasons, trending


@dataclass
class Ranked:
    id: str
    title: str
    link: str
    score: float
    reasons: list[str]
    sources: list[str]
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    summary_text: str = ""
    published: str = ""
    popularity: int = 0
    trending: bool = False

    @classmethod
    def of(cls, e: dict, score: float, reasons: list[str], trending: bool = False) -> Ranked:
        """A result for the entry `e` (a row of Store.entries_for_ranking)."""
        return cls(id=e["id"], title=e["title"], link=e["link"], score=score, reasons=reasons,
                   sources=e["sources"], authors=e["authors"], categories=e["categories"],
                   summary_text=e["summary_text"], published=e["published"],
                   popularity=e["popularity"], trending=trending)

    def as_json(self) -> dict:
        return {"id": self.id, "title": self.title, "link": self.link, "score": self.score,
                "reasons": self.reasons, "sources": self.sources, "authors": self.authors,
                "categories": self.categories, "published": self.published,
                "popularity": self.popularity, "trending": self.trending}


class Ranker:
    """Scores readers against one pool of entries. Build once, rank many readers."""

    BATCH = 64  # readers whose seed similarities are computed in one sparse product

    def __init__(self, config: Config, store: Store, entries: list[dict], now: datetime,
                 embedder=None):
        self.config = config
        self.store = store
        self.entries = entries
        self.embedder = embedder
        # Warnings from the seed libraries read so far. Libraries themselves are not kept: with
        # thousands of readers that would hold every library in memory; the database caches them.
        self.library_warnings: dict[Path, list[str]] = {}
        self._any_votes = store.has_votes()  # most installations have none: skip the queries
        # TF-IDF terms and the words phrases are matched on, as term-dictionary ids: computed
        # the first time an entry is ranked and stored with it, since a pool is ranked many
        # times (each send time, each `digest rank`). Not at ingest: it would cost polling ~40 %
        # (benchmarks/bench_poll.py).
        analyses = [decode_analysis(e.get("analysis")) for e in entries]
        todo = [k for k, a in enumerate(analyses) if a is None]
        if todo:
            parts = {k: analyze_entry(entries[k]["title"], entries[k]["summary_text"]) for k in todo}
            ids = store.term_ids({w for p in parts.values() for ws in p for w in ws})
            computed = []
            for k, p in parts.items():
                entries[k]["analysis"] = encode_analysis(p, ids)
                analyses[k] = decode_analysis(entries[k]["analysis"])
                computed.append((entries[k]["id"], entries[k]["analysis"]))
            store.save_analysis(computed)
        self.terms = TermWeights([a[0] for a in analyses])
        # Entries as columns: seed rows @ this is the cheapest sparse product for few seeds.
        self.by_term = self.terms.docs.T.tocsr()
        self.vectors = (embedder.embed([_entry_text(e) for e in entries])
                        if embedder is not None and entries else None)
        self._phrase_index = _PhraseIndex([a[1] for a in analyses], [a[2] for a in analyses])
        # The configured readers' phrases, indexed in one pass rather than one per phrase.
        phrases = {p for u in config.users.values() for p in (*u.interests, *u.exclude)}
        self._word_ids = store.term_ids({w for p in phrases for w in words(p)}, add=False)
        self._phrase_index.index({self._phrase_ids(p) for p in phrases})
        self._phrases: dict[str, _Phrase] = {}
        self.author_keys = [[_author_key(a) for a in e["authors"]] for e in entries]
        self.by_author: dict[str, list[int]] = {}
        self.by_category: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            for key in set(self.author_keys[i]):
                self.by_author.setdefault(key, []).append(i)
            for cat in {c.lower() for c in e["categories"]}:
                self.by_category.setdefault(cat, []).append(i)
        ids = np.asarray([e["id"] for e in entries], dtype=object)
        self.id_order = np.argsort(np.argsort(ids)) if entries else np.zeros(0, dtype=np.int64)
        self.index_of = {e["id"]: i for i, e in enumerate(entries)}
        self.feeds_of = [set(e["sources"]) for e in entries]
        ages = [(now - datetime.fromisoformat(e["published"])).total_seconds() / 86400
                for e in entries]
        self.age_days = np.maximum(np.asarray(ages, dtype=np.float32), 0.0)
        pops = np.asarray([e["popularity"] for e in entries], dtype=np.float32)
        self.popularity = pops
        self.by_popularity = np.lexsort((self.id_order, -pops)) if entries else np.zeros(0, np.int64)
        self.pop_signal = np.log1p(pops) / math.log(101)
        # Stories join near-identical titles, compared on their (stemmed) words.
        self.story = _stories([frozenset(a[1].tolist()) for a in analyses])

    # -- profile pieces -------------------------------------------------------------------

    def library(self, path: Path) -> _Seeds:
        """A reader's seed library, parsed and tokenized once per file version: the result is
        cached in SQLite under the file's mtime and size, as titles, texts and term ids."""
        try:
            st = path.stat()
            stamp = f"{st.st_mtime_ns}:{st.st_size}:{TOKENIZER_VERSION}:{LIBRARY_CACHE_FORMAT}"
        except OSError:
            stamp = ""
        cached = self.store.cached_library(str(path), stamp) if stamp else None
        if cached is not None:
            seeds = _Seeds.from_json(cached)
        else:
            lib = load_library(path)
            seeds = self._seeds([p.title for p in lib.papers], [p.text for p in lib.papers],
                                lib.warnings, add=True)  # cached as ids: they must stay valid
            if stamp:
                self.store.save_library(str(path), stamp, seeds.to_json())
        self.library_warnings[path] = seeds.warnings
        return seeds

    def _seeds(self, titles: list[str], texts: list[str], warnings: list[str],
               add: bool = False) -> _Seeds:
        bags = [Counter(tokens(t)) for t in texts]
        # Terms not in the dictionary are in no entry ranked so far; unless the seeds are
        # cached (`add`), they can be left out.
        ids = self.store.term_ids({t for b in bags for t in b}, add=add)
        pairs = [(ids[t], c) for b in bags for t, c in b.items() if t in ids]
        sizes = [sum(t in ids for t in b) for b in bags]
        return _Seeds(titles, texts, warnings, np.asarray([t for t, _ in pairs], np.int64),
                      np.asarray([c for _, c in pairs], np.float32), sizes)

    def _phrase_ids(self, text: str) -> tuple[int, ...]:
        """A phrase's words as term ids; -1 for a word in no entry ranked so far."""
        ws = words(text)
        missing = [w for w in ws if w not in self._word_ids]
        if missing:
            found = self.store.term_ids(missing, add=False)
            self._word_ids.update({w: found.get(w, -1) for w in missing})
        return tuple(self._word_ids[w] for w in ws)

    def phrase(self, text: str) -> _Phrase:
        """Where an interest phrase occurs. Cached: readers share phrases."""
        found = self._phrases.get(text)
        if found is None:
            match = self._phrase_index.match(self._phrase_ids(text))
            found = self._phrases[text] = _Phrase(match, _POINTS[match])
        return found

    # -- scoring --------------------------------------------------------------------------

    def rank(self, user: UserConfig, rows: np.ndarray | None = None,
             limit: int | None = None) -> list[Ranked]:
        """The reader's entries at `rows` (default: all), best first, with reasons; only the
        top `limit` are built when given. Ties are broken by entry id, so output is stable."""
        ((_, result),) = self.rank_many([(user, rows)], limit=limit)
        return result

    def digest(self, user: UserConfig, rows: np.ndarray | None, limit: int, min_score: float,
               trending: int) -> list[Ranked]:
        """What the reader's digest holds: the best `limit` above `min_score`, near-duplicate
        titles collapsed, then up to `trending` of the most popular entries not chosen."""
        ((_, result),) = self.rank_many([(user, rows)], digest=(limit, min_score, trending))
        return result

    def rank_many(self, readers: list[tuple[UserConfig, np.ndarray | None]],
                  limit: int | None = None, digest: tuple[int | None, float, int] | None = None,
                  workers: int = 1):
        """Yield (user, ranked) per reader, in order; with `digest=(limit, min_score, trending)`,
        their digest instead (limit None: each reader's max_items). Readers are scored BATCH at
        a time as matrices (readers × entries): one sparse product for all their seed papers,
        one dense product for interests, and vectorized soft-maxes, so the per-reader Python
        work is only picking the top items. With `workers` > 1, batches run in that many forked processes."""
        batches = [readers[i:i + self.BATCH] for i in range(0, len(readers), self.BATCH)]
        if workers > 1 and len(batches) > 1 and self._can_fork():
            ctx = multiprocessing.get_context("fork")
            # Forked children share the built model copy-on-write: nothing is pickled but
            # each batch's results and library warnings.
            with ctx.Pool(min(workers, len(batches)), initializer=_worker_init,
                          initargs=(self, batches, limit, digest)) as pool:
                for b, (results, warnings) in enumerate(pool.imap(_worker_batch, range(len(batches)))):
                    self.library_warnings.update(warnings)
                    yield from zip((u for u, _ in batches[b]), map(self._build, results), strict=True)
            return
        for batch in batches:
            with threadpool_limits(1):  # BLAS threads only spin on these small products
                results = self._rank_batch(batch, limit, digest)
            yield from zip((u for u, _ in batch), map(self._build, results), strict=True)

    def _build(self, picks: list[_Pick]) -> list[Ranked]:
        """Results from picks. Done by the parent: workers send back only entry indexes,
        scores and reasons, not every pick's abstract."""
        return [Ranked.of(self.entries[i], score, reasons, trending)
                for i, score, reasons, trending in picks]

    def _can_fork(self) -> bool:
        """Forking is safe only in a single-threaded process: a thread holding a lock at the
        fork (a scheduler's, torch's) would leave it locked forever in the child."""
        return ("fork" in multiprocessing.get_all_start_methods()
                and threading.active_count() == 1
                and (self.embedder is None or not self.embedder.loaded))

    def _rank_batch(self, batch: list[tuple[UserConfig, np.ndarray | None]], limit: int | None,
                    digest: tuple[int | None, float, int] | None) -> list[list[_Pick]]:
        n = len(self.entries)
        metas = [self._meta(user) for user, _ in batch]
        scores = self._score_batch([u for u, _ in batch], metas)
        out: list[list[_Pick]] = []
        for b, ((user, rows), meta) in enumerate(zip(batch, metas, strict=True)):
            idx = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
            row = scores[b]
            if len(idx) == 0:
                out.append([])
            elif digest is not None:
                limit_, min_score, trending = digest
                out.append(self._select(user, idx, row, meta, user.max_items if limit_ is None
                                        else limit_, min_score, trending))
            else:
                order = idx[np.lexsort((self.id_order[idx], -row[idx]))]
                if limit is not None:
                    order = order[:limit]
                out.append(self._results(user, order.tolist(), row, meta))
        return out

    def _meta(self, user: UserConfig) -> _Reader:
        """A reader's seeds (library papers, then 👍 entries), 👎 entries and phrases."""
        lib = self.library(user.papers) if user.papers else _NO_SEEDS
        votes = self.store.votes(user.name) if self._any_votes else {}
        liked, disliked = self._voted(votes, +1), self._voted(votes, -1)
        if liked:  # votes are rare: the library's arrays are extended only then
            extra = self._seeds([e["title"] for e in liked], [_entry_text(e) for e in liked], [])
            lib = _Seeds(lib.titles + extra.titles, lib.texts + extra.texts, lib.warnings,
                         np.concatenate([lib.ids, extra.ids]),
                         np.concatenate([lib.counts, extra.counts]), lib.sizes + extra.sizes)
        n_papers = len(lib.titles) - len(liked)
        names = [f'similar to your paper "{_short(t)}"' for t in lib.titles[:n_papers]] + [
            f'like "{_short(t)}", which you liked' for t in lib.titles[n_papers:]]
        meta = _Reader(seed_names=names, n_liked=len(liked), seeds=lib,
                       authors=frozenset(_author_key(a) for a in user.authors))
        if disliked:
            bad = self._seeds([], [_entry_text(e) for e in disliked], [])
            meta.negative = self.terms.matrix(bad.ids, bad.counts, bad.sizes, top=SEED_TERMS)
        meta.phrases = [(p, w, self.phrase(p)) for p, w in user.interests.items()]
        meta.excluded = [(p, self.phrase(p)) for p in user.exclude]
        return meta

    def _score_batch(self, users: list[UserConfig], metas: list[_Reader]) -> np.ndarray:
        """Scores as a (readers × entries) matrix; see the module docstring for the formula."""
        w = self.config.ranking
        n, b = len(self.entries), len(users)
        relevance = np.zeros((b, n), dtype=np.float32)

        # Seed papers and 👍 entries: every reader's seeds in one product, then a soft-max
        # over each reader's own block of rows.
        sizes = np.asarray([len(m.seed_names) for m in metas])
        if sizes.sum():
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            weights = np.concatenate([np.r_[np.ones(s - m.n_liked), np.full(m.n_liked, w.feedback)]
                                      for s, m in zip(sizes, metas, strict=True)]).astype(np.float32)
            seeds = self.terms.matrix(np.concatenate([m.seeds.ids for m in metas]),
                                      np.concatenate([m.seeds.counts for m in metas]),
                                      [s for m in metas for s in m.seeds.sizes], top=SEED_TERMS)
            lexical = (seeds @ self.by_term).toarray()
            models = [(lexical.astype(np.float32, copy=False), w.temperature, w.library)]
            if self.vectors is not None and w.semantic > 0:
                # Embeddings are cached in the database by text: one lookup for the batch.
                vecs = self.embedder.embed([t for m in metas for t in m.seeds.texts])
                models.append((vecs @ self.vectors.T, SEMANTIC_TEMPERATURE, w.semantic))
            has = sizes > 0
            for sims, temperature, scale in models:
                relevance[has] += scale * _block_soft_max(sims, weights, offsets[has], sizes[has],
                                                          temperature)
            for m, off, size in zip(metas, offsets, sizes, strict=True):
                m.sims = [s[off:off + size] for s, _, _ in models]
        for bi, m in enumerate(metas):
            if m.negative is not None:  # 👎: rare, so per reader
                sims = (m.negative @ self.by_term).toarray()
                relevance[bi] -= w.feedback * NEGATIVE_SHARE * soft_max(sims.T, w.temperature)

        # Interest phrases: one dense product of (entries × phrases) points and weights.
        phrases = sorted({p for m in metas for p, _, _ in m.phrases})
        if phrases:
            column = {p: j for j, p in enumerate(phrases)}
            found = {p: ph for m in metas for p, _, ph in m.phrases}
            points = np.column_stack([found[p].points for p in phrases])
            weight = np.zeros((len(phrases), b), dtype=np.float32)
            for bi, m in enumerate(metas):
                for p, wt, _ in m.phrases:
                    weight[column[p], bi] += wt
            relevance += w.interests * (points @ weight).T

        # Followed authors (up to two count) and categories (once), from inverted indexes.
        for bi, user in enumerate(users):
            if user.authors:
                count = np.zeros(n, dtype=np.float32)
                for name in user.authors:
                    count[self.by_author.get(_author_key(name), [])] += 1
                relevance[bi] += w.authors * AUTHOR_BOOST * np.minimum(count, 2)
            if user.categories:
                hit = np.zeros(n, dtype=bool)
                for cat in user.categories:
                    hit[self.by_category.get(cat.lower(), [])] = True
                relevance[bi] += w.categories * CATEGORY_BOOST * hit

        popularity = np.asarray([u.popularity for u in users], dtype=np.float32)[:, None]
        half_life = np.asarray([max(u.half_life / 86400, 1e-6) for u in users], np.float32)[:, None]
        scores = (relevance + popularity * self.pop_signal) * np.power(0.5, self.age_days / half_life)
        # Excluded phrases push an item below any digest's floor, whatever else it has.
        for bi, m in enumerate(metas):
            for _, ph in m.excluded:
                hit = ph.match >= IN_ABSTRACT
                scores[bi, hit] = scores[bi, hit] * EXCLUDE_FACTOR - EXCLUDE_PENALTY
        return scores

    def _select(self, user: UserConfig, idx: np.ndarray, scores: np.ndarray, meta: _Reader,
                limit: int, min_score: float, trending: int) -> list[_Pick]:
        story = self.story
        above = idx[scores[idx] >= min_score]
        chosen: list[int] = []
        told: set[int] = set()  # stories already in the digest: one item each
        # Sort only a head of the candidates; sort the rest only if near-duplicates ate it.
        for order in self._ordered(above, scores, 4 * limit) if limit > 0 else ():
            for i in order.tolist():
                if story[i] not in told:
                    chosen.append(i)
                    told.add(story[i])
                    if len(chosen) >= limit:
                        break
            if len(chosen) >= limit:
                break
        out = self._results(user, chosen, scores, meta)
        if trending:
            taken = set(chosen)
            allowed = None if len(idx) == len(self.entries) else set(idx.tolist())
            for i in self.by_popularity:  # most popular first, ties by id; shared by readers
                if trending == 0 or self.popularity[i] <= 0:
                    break
                if int(i) in taken or (allowed is not None and int(i) not in allowed):
                    continue
                ((_, score, reasons, _),) = self._results(user, [int(i)], scores, meta)
                if not any(x.startswith("trending:") for x in reasons):
                    reasons.append(f"trending: {self.entries[i]['popularity']} upvotes")
                out.append((int(i), score, reasons, True))
                trending -= 1
        return out

    def _ordered(self, rows: np.ndarray, scores: np.ndarray, head: int):
        """Entry indexes `rows` best first (ties by id), in blocks: the best `head`, then the
        next best 3·head, and so on. A digest usually needs only the first; copies of one story
        (cross-posts, revisions) can eat it, so the next is sorted only when needed, and never
        all of a large pool at once."""
        minus = -scores[rows]
        done = 0
        while done < len(rows):
            want = min(len(rows), 4 * done or head)
            # Everything scoring at least the want-th best: ties at the cut are all in, so each
            # block continues the previous one exactly.
            top = rows if want == len(rows) else rows[minus <= np.partition(minus, want - 1)[want - 1]]
            block = top[np.lexsort((self.id_order[top], -scores[top]))]
            yield block[done:]
            done = len(block)

    def _results(self, user: UserConfig, rows: list[int], scores: np.ndarray,
                 meta: _Reader) -> list[_Pick]:
        """The entries at `rows` with their scores and reasons."""
        seeds: list[str | None] = [None] * len(rows)
        if meta.seed_names and rows:  # the closest seed, by all models together, if close
            best = sum(s[:, rows] for s in meta.sims).argmax(axis=0)
            close = meta.sims[0][best, rows] >= SIMILAR_REASON
            seeds = [meta.seed_names[b] if c else None for b, c in zip(best.tolist(), close, strict=True)]
        return [self._ranked(user, i, scores, meta, seed) for i, seed in zip(rows, seeds, strict=True)]

    def _ranked(self, user: UserConfig, i: int, scores: np.ndarray, meta: _Reader,
                seed: str | None) -> _Pick:
        """One entry's score and reasons, strongest signal first."""
        e = self.entries[i]
        reasons = [seed] if seed else []
        for phrase, _, ph in meta.phrases:
            if ph.match[i] >= IN_ABSTRACT:
                where = "title" if ph.match[i] == IN_TITLE else "abstract"
                reasons.append(f'matches "{phrase}" in the {where}')
        if meta.authors:
            names = [a for a, key in zip(e["authors"], self.author_keys[i], strict=True)
                     if key in meta.authors][:2]
            if names:
                reasons.append("by " + ", ".join(names))
        if user.categories:
            wanted = {c.lower() for c in user.categories}
            cats = [c for c in e["categories"] if c.lower() in wanted]
            if cats:
                reasons.append(f"in {cats[0]}")
        if user.popularity > 0 and e["popularity"] >= POPULAR_UPVOTES:
            reasons.append(f"trending: {e['popularity']} upvotes")
        for phrase, ph in meta.excluded:
            if ph.match[i] >= IN_ABSTRACT:
                reasons.append(f'demoted: mentions "{phrase}"')
        return i, round(float(scores[i]), 6), reasons, False

    def _voted(self, votes: dict[str, int], sign: int) -> list[dict]:
        ids = sorted(i for i, v in votes.items() if v == sign)
        if not ids:
            return []
        known = [self.entries[self.index_of[i]] for i in ids if i in self.index_of]
        missing = [i for i in ids if i not in self.index_of]
        return known + (self.store.entries_for_ranking(ids=missing) if missing else [])

    # -- selection ------------------------------------------------------------------------

    def rows_for(self, user: UserConfig, since: datetime | None = None,
                 until: datetime | None = None) -> np.ndarray:
        """Entries from the reader's feeds, first fetched in (since, until]."""
        feeds = set(user.feeds) if user.feeds else None
        lo = since.isoformat(timespec="seconds") if since else ""
        hi = until.isoformat(timespec="seconds") if until else "9999"
        return np.asarray([i for i, e in enumerate(self.entries)
                           if lo < e["fetched"] <= hi and (feeds is None or self.feeds_of[i] & feeds)],
                          dtype=np.int64)


# -- worker processes ----------------------------------------------------------------------
# Set once per forked child by the pool initializer; the parent never reads it.
_WORKER: dict = {}


def _worker_init(ranker: Ranker, batches: list, limit: int | None, digest) -> None:
    # The inherited SQLite connection belongs to the parent: keep it referenced (closing it
    # here could checkpoint and remove the parent's WAL) and open this process's own.
    # One BLAS thread per process: several spinning OpenBLAS pools per core thrash.
    _WORKER["blas"] = threadpool_limits(1)
    _WORKER["inherited"] = ranker.store
    ranker.store = Store(ranker.store.path)
    if ranker.embedder is not None:
        ranker.embedder.store = ranker.store
    _WORKER.update(ranker=ranker, batches=batches, limit=limit, digest=digest)


def _worker_batch(b: int) -> tuple[list[list[_Pick]], dict[Path, list[str]]]:
    ranker: Ranker = _WORKER["ranker"]
    ranker.library_warnings = {}
    results = ranker._rank_batch(_WORKER["batches"][b], _WORKER["limit"], _WORKER["digest"])
    return results, ranker.library_warnings


def parse_day(day: str, label: str = "--date") -> date:
    """A local date from the CLI's --date (or, with another label, a URL). Years outside
    1970–9998 are refused too: the send instant of 0001-01-01 in a zone east of UTC is out of
    datetime's range."""
    try:
        parsed = datetime.strptime(day, "%Y-%m-%d").date()
    except ValueError:
        parsed = None
    if parsed is None or not 1970 <= parsed.year <= 9998:
        raise ConfigError([f"{label} {day!r} is not a date from 1970 on; write it as "
                           "YYYY-MM-DD."]) from None
    return parsed


def digest_window(config: Config, user: UserConfig, day: str | None, now: datetime,
                  last_sent: datetime | None = None) -> tuple[datetime | None, datetime]:
    """(since, until] for the reader's digest of local date `day` (default: up to now)."""
    if day:
        until = datetime.combine(parse_day(day), user.send_time,
                                 tzinfo=ZoneInfo(user.timezone)).astimezone(UTC)
    else:
        until = now
    since = last_sent if last_sent and last_sent <= until else (
        until - timedelta(seconds=config.ranking.lookback))
    return since, until


def build_ranker(config: Config, store: Store, now: datetime, since: datetime | None,
                 semantic: bool) -> Ranker:
    from digest.semantic import Embedder

    entries = store.entries_for_ranking(since=since)
    return Ranker(config, store, entries, now, Embedder(store) if semantic else None)


class _PhraseIndex:
    """Where phrases occur, without scanning every entry per phrase. Each field (title,
    abstract) of the pool is one array of word ids; postings (sorted entry arrays) of words and
    of adjacent word pairs are cut from it with numpy for all the phrases known at once (and
    again when a new phrase needs more). Words alone find the entries holding all of a phrase's
    words; pairs find those where they stand together."""

    def __init__(self, title_words: list[np.ndarray], body_words: list[np.ndarray]):
        self.n = len(title_words)
        self.fields = []
        for docs in (title_words, body_words):
            sizes = np.fromiter(map(len, docs), dtype=np.int64, count=self.n)
            flat = np.concatenate(docs).astype(np.int64) if self.n else np.zeros(0, np.int64)
            doc = np.repeat(np.arange(self.n, dtype=np.int64), sizes)
            same = doc[:-1] == doc[1:]  # adjacent words of one entry form a pair
            pairs = flat[:-1][same] << 32 | flat[1:][same]
            self.fields.append((flat, doc, pairs, doc[:-1][same],
                                np.concatenate([[0], np.cumsum(sizes)])))
        title, body = self.fields
        self.anywhere = (np.concatenate([title[0], body[0]]), np.concatenate([title[1], body[1]]))
        self.size = int(max((f[0].max() for f in self.fields if len(f[0])), default=0)) + 1
        self.words: tuple[dict, dict, dict] = ({}, {}, {})  # title, abstract, either: word → entries
        self.pairs: tuple[dict, dict] = ({}, {})  # per field: pair code → entries
        self.indexed: set[tuple[int, ...]] = set()

    def index(self, phrases: set[tuple[int, ...]]) -> None:
        phrases = phrases - self.indexed
        if not phrases:
            return
        self.indexed |= phrases
        new = np.asarray(sorted({w for p in phrases for w in p} - self.words[2].keys()), np.int64)
        if len(new):
            table = self._table(new)
            found = [_hits(flat, doc, new, self.n, table[flat]) for flat, doc, *_ in self.fields]
            for words_, keys in zip(self.words, [*found, _distinct(np.concatenate(found))],
                                    strict=True):
                words_.update(_split(keys, new, self.n))
        for (_, _, pairs, pair_doc, _), pairs_ in zip(self.fields, self.pairs, strict=True):
            codes = {a << 32 | b for p in phrases for a, b in pairwise(p)} - pairs_.keys()
            if codes:
                wanted = np.asarray(sorted(codes), np.int64)
                first = self._table(wanted >> 32)[pairs >> 32]  # pairs that may be wanted
                pairs_.update(_split(_hits(pairs, pair_doc, wanted, self.n, first), wanted, self.n))

    def _table(self, ids: np.ndarray) -> np.ndarray:
        """A lookup table over word ids: True at `ids` (a hit test in O(1) per word)."""
        table = np.zeros(self.size, dtype=bool)
        table[ids[(ids >= 0) & (ids < self.size)]] = True  # -1: a word in no entry
        return table

    def match(self, phrase: tuple[int, ...]) -> np.ndarray:
        """Per entry: IN_TITLE, IN_ABSTRACT, APART (all its words, not together) or 0."""
        out = np.zeros(self.n, dtype=np.int8)
        if not phrase or min(phrase) < 0:  # a word in no entry
            return out
        self.index({phrase})
        distinct = set(phrase)
        if len(distinct) == 1:
            present = self.words[2][phrase[0]]
        else:  # in every word's postings: counted, not intersected (postings can be long)
            count = np.zeros(self.n, dtype=np.int16)
            for w in distinct:
                count[self.words[2][w]] += 1
            present = np.flatnonzero(count == len(distinct))
        out[present] = APART
        for value, f in ((IN_ABSTRACT, 1), (IN_TITLE, 0)):
            if len(phrase) == 1:
                together = self.words[f][phrase[0]]
            else:  # pair postings are short
                together = self.pairs[f][phrase[0] << 32 | phrase[1]]
                for a, b in pairwise(phrase[1:]):
                    together = np.intersect1d(together, self.pairs[f][a << 32 | b],
                                              assume_unique=True)
            if len(phrase) > 2:  # its pairs may stand apart: confirm the whole sequence
                flat, _, _, _, start = self.fields[f]
                together = [i for i in together.tolist()
                            if _contains(flat[start[i]:start[i + 1]].tolist(), list(phrase))]
            out[together] = value
        return out


def _hits(values: np.ndarray, doc: np.ndarray, wanted: np.ndarray, n: int,
          maybe: np.ndarray) -> np.ndarray:
    """Where `values` holds one of `wanted` (sorted, distinct), looking only where `maybe`:
    keys k·n + entry, k its index in `wanted`, each once and sorted (by value, then entry)."""
    at = np.flatnonzero(maybe)
    k = np.minimum(np.searchsorted(wanted, values[at]), len(wanted) - 1)
    ok = wanted[k] == values[at]
    return _distinct(k[ok] * n + doc[at[ok]])


def _distinct(keys: np.ndarray) -> np.ndarray:
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def _split(keys: np.ndarray, wanted: np.ndarray, n: int) -> dict[int, np.ndarray]:
    """_hits' keys as postings: value → sorted entries."""
    ends = np.searchsorted(keys // n, np.arange(1, len(wanted) + 1))
    return dict(zip(wanted.tolist(), np.split(keys % n, ends[:-1]), strict=True))


def _contains(seq: list[int], part: list[int]) -> bool:
    k = len(part)
    return any(seq[i:i + k] == part for i in range(len(seq) - k + 1) if seq[i] == part[0])


def _block_soft_max(sims: np.ndarray, weights: np.ndarray, offsets: np.ndarray,
                    sizes: np.ndarray, temperature: float) -> np.ndarray:
    """soft_max over consecutive row blocks (one block of seed rows per reader, each row
    weighted) → one row per block: T·log(mean(exp(w·s/T))). Cosines are at most 1, so unless
    w/T could overflow float32's exp (e^88), the blocks' maxima need not be subtracted first:
    that saves two of the five passes over the (seeds × entries) cells."""
    peak = float(weights.max()) / temperature
    e = sims * (weights / temperature)[:, None]  # a new array: `sims` is kept for the reasons
    top = 0.0
    if peak > 80:
        top = np.maximum.reduceat(e, offsets, axis=0)
        e -= np.repeat(top, sizes, axis=0)
    np.exp(e, out=e)
    return temperature * (top + np.log(np.add.reduceat(e, offsets, axis=0) / sizes[:, None]))


_NO_SEEDS = _Seeds([], [], [], np.zeros(0, np.int64), np.zeros(0, np.float32), [])


def _entry_text(e: dict) -> str:
    return f"{e['title']}. {e['summary_text']}"


@functools.lru_cache(maxsize=1 << 16)  # names recur across entries, readers and days
def _author_key(name: str) -> str:
    """'Yann LeCun', 'LeCun, Yann', 'Y. LeCun' and 'Yann Le Cun'-free spelling → 'lecun y'."""
    n = unicodedata.normalize("NFKD", name or "")
    n = "".join(c for c in n if not unicodedata.combining(c)).lower()
    if "," in n:
        last, _, first = n.partition(",")
        n = f"{first} {last}"
    parts = re.findall(r"[a-z]+", n)
    if not parts:
        return ""
    return f"{parts[-1]} {parts[0][0]}" if len(parts) > 1 else parts[0]


def _short(title: str, limit: int = 70) -> str:
    return title if len(title) <= limit else title[: limit - 1].rsplit(" ", 1)[0] + "…"


def _stories(titles: list[frozenset]) -> list[int]:
    """Per entry, the id of its story: entries whose title words overlap by Jaccard ≥
    NEAR_DUPLICATE (x) are one story (joined transitively). Computed once per pool by PPJoin's
    prefix filtering (Xiao et al. 2008, after Bayardo et al. 2007): with each title's words in
    one global order, rarest first, and titles taken shortest first, two titles that similar
    must share a word between the first |a| − ⌈x·|a|⌉ + 1 words of the later one and the first
    |b| − ⌈2x/(1+x)·|b|⌉ + 1 of the earlier one, so only titles sharing such a word are
    compared. Postings keep only each word's latest STORY_POSTINGS titles: a title's rarest
    words are rarely that common, and where they are (titles from a tiny vocabulary) the
    comparisons would grow with the square of the pool."""
    df = Counter(chain.from_iterable(titles))
    rarity = {w: k for k, w in enumerate(sorted(df, key=lambda w: (df[w], w)))}
    parent = list(range(len(titles)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sizes = [len(t) for t in titles]
    seen: dict = {}  # word → the latest titles that indexed it
    first: dict[frozenset, int] = {}  # exact repeats join their first copy directly
    for i in sorted(range(len(titles)), key=sizes.__getitem__):
        t, n = titles[i], sizes[i]
        if not n:
            continue
        if t in first:
            parent[i] = first[t]
            continue
        first[t] = i
        ordered = sorted(t, key=rarity.__getitem__)
        probe = ordered[:n - math.ceil(NEAR_DUPLICATE * n - 1e-9) + 1]
        least = NEAR_DUPLICATE * n - 1e-9  # earlier titles are no longer; shorter: too short
        for j in set().union(*[seen[w] for w in probe if w in seen]):
            # |a ∩ b| ≥ x·|a ∪ b|  ⇔  |a ∩ b| ≥ x/(1+x)·(|a| + |b|)
            m = sizes[j]
            if m >= least and len(t & titles[j]) >= JOIN * (n + m) - 1e-9 and root(j) != root(i):
                parent[root(i)] = root(j)
        for w in ordered[:n - math.ceil(2 * JOIN * n - 1e-9) + 1]:
            if w not in seen:
                seen[w] = deque(maxlen=STORY_POSTINGS)
            seen[w].append(i)
    return [root(i) for i in range(len(titles))]
