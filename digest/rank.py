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

import math
import multiprocessing
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from digest.config import Config, UserConfig
from digest.errors import ConfigError
from digest.lexical import (
    TOKENIZER_VERSION,
    Vocabulary,
    decode_analysis,
    encode_analysis,
    soft_max,
    tokens,
    words,
)
from digest.library import Library, load_library
from digest.store import Store

TITLE_HIT, BODY_HIT, SCATTERED_HIT = 0.4, 0.2, 0.06
APART, IN_ABSTRACT, IN_TITLE = 1, 2, 3  # where a phrase occurs in an entry (0: not all words)
_POINTS = np.asarray([0.0, SCATTERED_HIT, BODY_HIT, TITLE_HIT], dtype=np.float32)
AUTHOR_BOOST, CATEGORY_BOOST, NEGATIVE_SHARE = 0.5, 0.3, 0.5
EXCLUDE_FACTOR, EXCLUDE_PENALTY = 0.1, 0.2
SEMANTIC_TEMPERATURE = 0.05  # embedding cosines spread less than TF-IDF ones
POPULAR_UPVOTES = 10  # "trending: N upvotes" is said from here on
SIMILAR_REASON = 0.12  # a seed paper this close is named in the reasons
NEAR_DUPLICATE = 0.8  # Jaccard of title words above which two picks are one story
# A seed paper is matched on its 40 heaviest terms: the sparse product costs in proportion to
# them, and the light ones barely move a cosine (reviewer-dev error 0.205 with all of them).
SEED_TERMS = 40
LIBRARY_CACHE_FORMAT = 2  # bump when Library.to_json changes


@dataclass
class _Phrase:
    """Where one interest phrase occurs in the pool; shared by every reader who has it."""

    match: np.ndarray  # per entry: IN_TITLE, IN_ABSTRACT, APART or 0
    points: np.ndarray  # the same as interest points


@dataclass
class _Reader:
    """What one reader's scoring needs beyond the config, kept to explain the shown items."""

    seed_names: list[str]
    n_liked: int
    seeds: list[dict[str, int]]  # seed term counts (library papers, then 👍 entries)
    vectors: np.ndarray | None
    negative: sp.csr_matrix | None = None
    phrases: list[tuple[str, float, _Phrase]] = field(default_factory=list)
    excluded: list[tuple[str, _Phrase]] = field(default_factory=list)
    sims: list[np.ndarray] = field(default_factory=list)  # (seeds × entries) per model
    authors: frozenset[str] = frozenset()  # followed authors' keys


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
        # TF-IDF terms and the words phrases are matched on: tokenized the first time an entry
        # is ranked and stored with it, since a pool is ranked many times (each send time, each
        # `digest rank`). Not at ingest: it would cost polling ~40 % (benchmarks/bench_poll.py).
        title_words, body_words, docs = [], [], []
        computed = []
        for e in entries:
            stored = decode_analysis(e.get("analysis", ""))
            if stored is None:
                e["analysis"] = encode_analysis(e["title"], e["summary_text"])
                computed.append((e["id"], e["analysis"]))
                stored = decode_analysis(e["analysis"])
            terms, t_words, b_words = stored
            docs.append(terms)
            title_words.append(t_words)
            body_words.append(b_words)
        if computed:
            store.save_analysis(computed)
        self.vocab = Vocabulary(docs)
        # Entries as columns: seed rows @ this is the cheapest sparse product for few seeds.
        self.by_term = self.vocab.matrix(docs).T.tocsr() if entries else sp.csr_matrix((0, 0))
        self.vectors = (embedder.embed([_entry_text(e) for e in entries])
                        if embedder is not None and entries else None)
        self._phrase_index = _PhraseIndex(title_words, body_words)
        # The configured readers' phrases, indexed in one pass rather than one per phrase.
        self._phrase_index.index({tuple(words(p)) for u in config.users.values()
                                  for p in (*u.interests, *u.exclude)})
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
        self.story = _stories([frozenset(ws) for ws in title_words])

    # -- profile pieces -------------------------------------------------------------------

    def library(self, path: Path) -> Library:
        """A reader's seed library, parsed and tokenized once per file version: the result is
        cached in SQLite under the file's mtime and size."""
        try:
            st = path.stat()
            stamp = f"{st.st_mtime_ns}:{st.st_size}:{TOKENIZER_VERSION}:{LIBRARY_CACHE_FORMAT}"
        except OSError:
            stamp = ""
        cached = self.store.cached_library(str(path), stamp) if stamp else None
        if cached is not None:
            lib = Library.from_json(cached)
        else:
            lib = load_library(path)
            lib.terms = [dict(Counter(tokens(p.text))) for p in lib.papers]
            if stamp:
                self.store.save_library(str(path), stamp, lib.to_json())
        self.library_warnings[path] = lib.warnings
        return lib

    def phrase(self, text: str) -> _Phrase:
        """Where an interest phrase occurs. Cached: readers share phrases."""
        found = self._phrases.get(text)
        if found is None:
            match = self._phrase_index.match(tuple(words(text)))
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
                    yield from zip((u for u, _ in batches[b]), results, strict=True)
            return
        for batch in batches:
            with threadpool_limits(1):  # BLAS threads only spin on these small products
                results = self._rank_batch(batch, limit, digest)
            yield from zip((u for u, _ in batch), results, strict=True)

    def _can_fork(self) -> bool:
        """Forking is safe only in a single-threaded process: a thread holding a lock at the
        fork (a scheduler's, torch's) would leave it locked forever in the child."""
        return ("fork" in multiprocessing.get_all_start_methods()
                and threading.active_count() == 1
                and (self.embedder is None or not self.embedder.loaded))

    def _rank_batch(self, batch: list[tuple[UserConfig, np.ndarray | None]], limit: int | None,
                    digest: tuple[int | None, float, int] | None) -> list[list[Ranked]]:
        n = len(self.entries)
        metas = [self._meta(user) for user, _ in batch]
        scores = self._score_batch([u for u, _ in batch], metas)
        out: list[list[Ranked]] = []
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
        lib = self.library(user.papers) if user.papers else Library([], [], [])
        votes = self.store.votes(user.name) if self._any_votes else {}
        liked, disliked = self._voted(votes, +1), self._voted(votes, -1)
        liked_texts = [_entry_text(e) for e in liked]
        vectors = None
        if self.vectors is not None:  # embeddings: cached in the database by text
            vectors = self.embedder.embed([p.text for p in lib.papers] + liked_texts)
        names = [f'similar to your paper "{_short(p.title)}"' for p in lib.papers] + [
            f'like "{_short(e["title"])}", which you liked' for e in liked]
        meta = _Reader(seed_names=names, n_liked=len(liked),
                       seeds=lib.terms + [Counter(tokens(t)) for t in liked_texts], vectors=vectors,
                       authors=frozenset(_author_key(a) for a in user.authors))
        if disliked:
            meta.negative = self.vocab.matrix([tokens(_entry_text(e)) for e in disliked],
                                              top=SEED_TERMS)
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
        sizes = np.asarray([len(m.seeds) for m in metas])
        if sizes.sum():
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            weights = np.concatenate([np.r_[np.ones(s - m.n_liked), np.full(m.n_liked, w.feedback)]
                                      for s, m in zip(sizes, metas, strict=True)]).astype(np.float32)
            seeds = self.vocab.matrix([d for m in metas for d in m.seeds], top=SEED_TERMS)
            lexical = (seeds @ self.by_term).toarray()
            models = [(lexical.astype(np.float32, copy=False), w.temperature, w.library)]
            if self.vectors is not None and w.semantic > 0:
                vecs = np.vstack([m.vectors for m in metas])
                models.append((vecs @ self.vectors.T, SEMANTIC_TEMPERATURE, w.semantic))
            has = sizes > 0
            weighted = bool((weights != 1).any())
            for sims, temperature, scale in models:
                relevance[has] += scale * _block_soft_max(
                    sims * weights[:, None] if weighted else sims, offsets[has], sizes[has],
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
                limit: int, min_score: float, trending: int) -> list[Ranked]:
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
                (r,) = self._results(user, [int(i)], scores, meta)
                r.trending = True
                if not any(x.startswith("trending:") for x in r.reasons):
                    r.reasons.append(f"trending: {r.popularity} upvotes")
                out.append(r)
                trending -= 1
        return out

    def _ordered(self, rows: np.ndarray, scores: np.ndarray, head: int):
        """Entry indexes `rows` best first (ties by id): a head of `head`, then the rest."""
        if len(rows) > head:
            part = np.argpartition(-scores[rows], head)
            blocks = (rows[part[:head]], rows[part[head:]])
        else:
            blocks = (rows,)
        for block in blocks:
            if len(block):
                yield block[np.lexsort((self.id_order[block], -scores[block]))]

    def _results(self, user: UserConfig, rows: list[int], scores: np.ndarray,
                 meta: _Reader) -> list[Ranked]:
        """The entries at `rows` as results with their reasons."""
        seeds: list[str | None] = [None] * len(rows)
        if meta.seed_names and rows:  # the closest seed, by all models together, if close
            best = sum(s[:, rows] for s in meta.sims).argmax(axis=0)
            close = meta.sims[0][best, rows] >= SIMILAR_REASON
            seeds = [meta.seed_names[b] if c else None for b, c in zip(best.tolist(), close, strict=True)]
        return [self._ranked(user, i, scores, meta, seed) for i, seed in zip(rows, seeds, strict=True)]

    def _ranked(self, user: UserConfig, i: int, scores: np.ndarray, meta: _Reader,
                seed: str | None) -> Ranked:
        """One result with its reasons, strongest signal first."""
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
        return Ranked(id=e["id"], title=e["title"], link=e["link"],
                      score=round(float(scores[i]), 6), reasons=reasons, sources=e["sources"],
                      authors=e["authors"], categories=e["categories"],
                      summary_text=e["summary_text"], published=e["published"],
                      popularity=e["popularity"])

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


def _worker_batch(b: int) -> tuple[list[list[Ranked]], dict[Path, list[str]]]:
    ranker: Ranker = _WORKER["ranker"]
    ranker.library_warnings = {}
    results = ranker._rank_batch(_WORKER["batches"][b], _WORKER["limit"], _WORKER["digest"])
    return results, ranker.library_warnings


def digest_window(config: Config, user: UserConfig, day: str | None, now: datetime,
                  last_sent: datetime | None = None) -> tuple[datetime | None, datetime]:
    """(since, until] for the reader's digest of local date `day` (default: up to now)."""
    if day:
        try:
            d = datetime.strptime(day, "%Y-%m-%d").date()
        except ValueError:
            raise ConfigError([f"--date {day!r} is not a date; write it as YYYY-MM-DD."]) from None
        until = datetime.combine(d, user.send_time, tzinfo=ZoneInfo(user.timezone)).astimezone(UTC)
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
    """Where phrases occur, without scanning every entry per phrase. Postings (sorted entry
    arrays) of words find the entries holding all of a phrase's words; postings of adjacent
    word pairs, per field, find those where the words stand together in the title or the
    abstract. Only words and pairs of phrases are indexed (a pool has ~100 times more), in one
    pass over the pool for all the phrases known, and again when a new phrase needs more."""

    def __init__(self, title_words: list[list[str]], body_words: list[list[str]]):
        self.fields = (title_words, body_words)
        self.text = ([" " + " ".join(ws) + " " for ws in title_words],
                     [" " + " ".join(ws) + " " for ws in body_words])
        self.words: dict[str, np.ndarray] = {}
        self.pairs: tuple[dict, dict] = ({}, {})  # per field: (w1, w2) → entries
        self.n = len(title_words)

    def index(self, phrases: set[tuple[str, ...]]) -> None:
        new = {w for p in phrases for w in p if w not in self.words}
        if new:
            found: dict[str, list[int]] = {w: [] for w in new}
            for i, (t, b) in enumerate(zip(*self.fields, strict=True)):
                for w in new.intersection(t).union(new.intersection(b)):  # loops in C
                    found[w].append(i)
            self.words.update((w, np.asarray(rows, dtype=np.int64)) for w, rows in found.items())
        for pairs, words_of in zip(self.pairs, self.fields, strict=True):
            wanted = {pr for p in phrases for pr in pairwise(p) if pr not in pairs}
            if not wanted:
                continue
            hits: dict[tuple[str, str], list[int]] = {pr: [] for pr in wanted}
            for i, ws in enumerate(words_of):
                for pr in wanted & set(pairwise(ws)):
                    hits[pr].append(i)
            pairs.update((pr, np.asarray(rows, dtype=np.int64)) for pr, rows in hits.items())

    def match(self, phrase: tuple[str, ...]) -> np.ndarray:
        """Per entry: IN_TITLE, IN_ABSTRACT, APART (all its words, not together) or 0."""
        out = np.zeros(self.n, dtype=np.int8)
        if not phrase:
            return out
        self.index({phrase})
        present = self.words[phrase[0]]
        for word in phrase[1:]:
            present = np.intersect1d(present, self.words[word], assume_unique=True)
        out[present] = APART
        needle = " " + " ".join(phrase) + " "
        for value, pairs, text in ((IN_ABSTRACT, self.pairs[1], self.text[1]),
                                   (IN_TITLE, self.pairs[0], self.text[0])):
            together = present
            for pr in pairwise(phrase):
                together = np.intersect1d(together, pairs[pr], assume_unique=True)
            if len(phrase) != 2:  # one word, or pairs that may not chain: confirm
                together = [i for i in together.tolist() if needle in text[i]]
            out[together] = value
        return out
        self.index(set(phrase))
        present = self.postings[phrase[0]]
        for word in phrase[1:]:
            present = np.intersect1d(present, self.postings[word], assume_unique=True)
        out[present] = 0.3  # all its words, maybe apart
        needle = " " + " ".join(phrase) + " "
        out[[i for i in present.tolist() if needle in self.body[i]]] = 1.0
        out[[i for i in present.tolist() if needle in self.title[i]]] = 2.0
        return out


def _block_soft_max(sims: np.ndarray, offsets: np.ndarray, sizes: np.ndarray,
                    temperature: float) -> np.ndarray:
    """soft_max over consecutive row blocks (one block of seed rows per reader) → one row per
    block: T·log(mean(exp(s/T))), stabilized by each block's own maximum."""
    top = np.maximum.reduceat(sims, offsets, axis=0)
    e = sims - np.repeat(top, sizes, axis=0)  # one temporary, then worked on in place
    e *= 1.0 / temperature
    np.exp(e, out=e)
    return top + temperature * np.log(np.add.reduceat(e, offsets, axis=0) / sizes[:, None])


def _entry_text(e: dict) -> str:
    return f"{e['title']}. {e['summary_text']}"


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


def _stories(titles: list[frozenset[str]]) -> list[int]:
    """Per entry, the id of its story: entries whose title words overlap by Jaccard ≥
    NEAR_DUPLICATE are one story (joined transitively). Computed once per pool with prefix
    filtering (Bayardo et al., "Scaling up all pairs similarity search"): with each title's
    words ordered rarest first, two titles that similar must share a word among the first
    |t| − ⌈NEAR_DUPLICATE·|t|⌉ + 1 of either, so only titles sharing such a word are compared."""
    df: dict[str, int] = {}
    for t in titles:
        for w in t:
            df[w] = df.get(w, 0) + 1
    parent = list(range(len(titles)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[str, list[int]] = {}
    first: dict[frozenset[str], int] = {}  # exact repeats join their first copy directly
    for i, t in enumerate(titles):
        if not t:
            continue
        if t in first:
            parent[i] = first[t]
            continue
        first[t] = i
        ordered = sorted(t, key=lambda w: (df[w], w))
        prefix = ordered[:len(t) - math.ceil(NEAR_DUPLICATE * len(t) - 1e-9) + 1]
        candidates = {j for w in prefix for j in seen.get(w, ())}
        for j in candidates:
            if _near_duplicate(t, titles[j]):
                parent[root(i)] = root(j)
        for w in prefix:
            seen.setdefault(w, []).append(i)
    return [root(i) for i in range(len(titles))]


def _near_duplicate(a: frozenset[str], b: frozenset[str]) -> bool:
    """Jaccard(a, b) ≥ NEAR_DUPLICATE; the size test alone rules out most pairs cheaply."""
    la, lb = len(a), len(b)
    if not la or not lb or min(la, lb) < NEAR_DUPLICATE * max(la, lb):
        return False
    inter = len(a & b)
    return inter >= NEAR_DUPLICATE * (la + lb - inter)
