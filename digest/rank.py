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
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import scipy.sparse as sp

from digest.config import Config, UserConfig
from digest.errors import ConfigError
from digest.lexical import TOKENIZER_VERSION, Vocabulary, soft_max, tokens, words
from digest.library import Library, load_library
from digest.normalize import title_key
from digest.store import Store

TITLE_HIT, BODY_HIT, SCATTERED_HIT = 0.4, 0.2, 0.06
AUTHOR_BOOST, CATEGORY_BOOST, NEGATIVE_SHARE = 0.5, 0.3, 0.5
EXCLUDE_FACTOR, EXCLUDE_PENALTY = 0.1, 0.2
SEMANTIC_TEMPERATURE = 0.05  # embedding cosines spread less than TF-IDF ones
POPULAR_UPVOTES = 10  # "trending: N upvotes" is said from here on
SIMILAR_REASON = 0.12  # a seed paper this close is named in the reasons
NEAR_DUPLICATE = 0.8  # Jaccard of title words above which two picks are one story


@dataclass
class _Reader:
    """What one reader's scoring needs beyond the config, kept to explain the shown items."""

    seed_names: list[str]
    n_liked: int
    lexical: sp.csr_matrix  # seed rows (library papers, then 👍 entries)
    vectors: np.ndarray | None
    negative: sp.csr_matrix | None = None
    phrases: list[tuple[str, float, np.ndarray]] = field(default_factory=list)
    excluded: list[tuple[str, np.ndarray]] = field(default_factory=list)
    sims: list[np.ndarray] = field(default_factory=list)  # (seeds × entries) per model


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
        docs = [tokens(_entry_text(e)) for e in entries]
        self.vocab = Vocabulary(docs)
        # Entries as columns: seed rows @ this is the cheapest sparse product for few seeds.
        self.by_term = self.vocab.matrix(docs).T.tocsr() if entries else sp.csr_matrix((0, 0))
        self.vectors = (embedder.embed([_entry_text(e) for e in entries])
                        if embedder is not None and entries else None)
        self._phrase_index: _PhraseIndex | None = None
        self._phrases: dict[tuple[str, ...], np.ndarray] = {}
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
        self._title_words: list[frozenset[str]] | None = None

    # -- profile pieces -------------------------------------------------------------------

    def library(self, path: Path) -> Library:
        """A reader's seed library, parsed and tokenized once per file version: the result is
        cached in SQLite under the file's mtime and size."""
        try:
            st = path.stat()
            stamp = f"{st.st_mtime_ns}:{st.st_size}:{TOKENIZER_VERSION}"
        except OSError:
            stamp = ""
        cached = self.store.cached_library(str(path), stamp) if stamp else None
        if cached is not None:
            lib = Library.from_json(cached)
        else:
            lib = load_library(path)
            lib.tokens = [tokens(p.text) for p in lib.papers]
            if stamp:
                self.store.save_library(str(path), stamp, lib.to_json())
        self.library_warnings[path] = lib.warnings
        return lib

    def phrase_match(self, phrase: tuple[str, ...]) -> np.ndarray:
        """Per entry: 2 = phrase in the title, 1 = in the abstract, 0.3 = all its words but
        apart, 0 = not all words. Cached: readers share phrases."""
        if phrase not in self._phrases:
            if self._phrase_index is None:  # built on first use: no phrases, no cost
                self._phrase_index = _PhraseIndex(self.entries)
            self._phrases[phrase] = self._phrase_index.match(phrase)
        return self._phrases[phrase]

    def _seed_matrix(self, texts: list[str], token_lists: list[list[str]]):
        """Seed rows: TF-IDF, and embeddings when on (cached in the database by text)."""
        lexical = self.vocab.matrix(token_lists)
        vectors = self.embedder.embed(texts) if self.vectors is not None else None
        return lexical, vectors

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
                  limit: int | None = None, digest: tuple[int, float, int] | None = None):
        """Yield (user, ranked) per reader; with `digest=(limit, min_score, trending)`, their
        digest instead. Readers are scored BATCH at a time as matrices (readers × entries):
        one sparse product for all their seed papers, one dense product for interests, and
        vectorized soft-maxes, so the per-reader Python work is only picking the top items."""
        n = len(self.entries)
        for start in range(0, len(readers), self.BATCH):
            batch = readers[start:start + self.BATCH]
            metas = [self._meta(user) for user, _ in batch]
            scores = self._score_batch([u for u, _ in batch], metas)
            for b, ((user, rows), meta) in enumerate(zip(batch, metas, strict=True)):
                idx = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
                if len(idx) == 0:
                    yield user, []
                    continue
                row = scores[b]
                if digest is not None:
                    yield user, self._select(user, idx, row, meta, *digest)
                else:
                    order = idx[np.lexsort((self.id_order[idx], -row[idx]))]
                    if limit is not None:
                        order = order[:limit]
                    yield user, [self._ranked(user, int(i), row, meta) for i in order]

    def _meta(self, user: UserConfig) -> _Reader:
        """A reader's seeds (library papers, then 👍 entries), 👎 entries and phrases."""
        lib = self.library(user.papers) if user.papers else Library([], [], [])
        votes = self.store.votes(user.name) if self._any_votes else {}
        liked, disliked = self._voted(votes, +1), self._voted(votes, -1)
        liked_texts = [_entry_text(e) for e in liked]
        lexical, vecs = self._seed_matrix([p.text for p in lib.papers] + liked_texts,
                                          lib.tokens + [tokens(t) for t in liked_texts])
        names = [f'similar to your paper "{_short(p.title)}"' for p in lib.papers] + [
            f'like "{_short(e["title"])}", which you liked' for e in liked]
        meta = _Reader(seed_names=names, n_liked=len(liked), lexical=lexical, vectors=vecs)
        if disliked:
            texts = [_entry_text(e) for e in disliked]
            meta.negative, _ = self._seed_matrix(texts, [tokens(t) for t in texts])
        meta.phrases = [(p, w, self.phrase_match(tuple(words(p)))) for p, w in user.interests.items()]
        meta.excluded = [(p, self.phrase_match(tuple(words(p)))) for p in user.exclude]
        return meta

    def _score_batch(self, users: list[UserConfig], metas: list[_Reader]) -> np.ndarray:
        """Scores as a (readers × entries) matrix; see the module docstring for the formula."""
        w = self.config.ranking
        n, b = len(self.entries), len(users)
        relevance = np.zeros((b, n), dtype=np.float32)

        # Seed papers and 👍 entries: every reader's seeds in one product, then a soft-max
        # over each reader's own block of rows.
        sizes = np.asarray([m.lexical.shape[0] for m in metas])
        if sizes.sum():
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            weights = np.concatenate([np.r_[np.ones(s - m.n_liked), np.full(m.n_liked, w.feedback)]
                                      for s, m in zip(sizes, metas, strict=True)]).astype(np.float32)
            lexical = (sp.vstack([m.lexical for m in metas], format="csr") @ self.by_term).toarray()
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
            match = {p: mt for m in metas for p, _, mt in m.phrases}
            points = np.column_stack([_points(match[p]) for p in phrases])
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
            for _, match in m.excluded:
                hit = match >= 1
                scores[bi, hit] = scores[bi, hit] * EXCLUDE_FACTOR - EXCLUDE_PENALTY
        return scores

    def _select(self, user: UserConfig, idx: np.ndarray, scores: np.ndarray, meta: _Reader,
                limit: int, min_score: float, trending: int) -> list[Ranked]:
        if self._title_words is None:
            self._title_words = [frozenset(title_key(e["title"]).split()) for e in self.entries]
        tw = self._title_words
        above = idx[scores[idx] >= min_score]
        chosen: list[int] = []
        titles: set[frozenset[str]] = set()  # exact repeats are caught without the pair loop
        # Sort only a head of the candidates; sort the rest only if near-duplicates ate it.
        for order in self._ordered(above, scores, 4 * limit):
            for i in order:
                if len(chosen) >= limit:
                    break
                if tw[i] in titles or any(_near_duplicate(tw[i], tw[c]) for c in chosen):
                    continue
                chosen.append(int(i))
                titles.add(tw[i])
        out = [self._ranked(user, i, scores, meta) for i in chosen]
        if trending:
            taken = set(chosen)
            allowed = None if len(idx) == len(self.entries) else set(idx.tolist())
            for i in self.by_popularity:  # most popular first, ties by id; shared by readers
                if trending == 0 or self.popularity[i] <= 0:
                    break
                if int(i) in taken or (allowed is not None and int(i) not in allowed):
                    continue
                r = self._ranked(user, int(i), scores, meta)
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

    def _ranked(self, user: UserConfig, i: int, scores: np.ndarray, meta: _Reader) -> Ranked:
        """One result with its reasons, strongest signal first."""
        e = self.entries[i]
        reasons = []
        if meta.sims:  # the closest seed, by all models together, named if close enough
            best = int(np.argmax(sum(s[:, i] for s in meta.sims)))
            if meta.sims[0][best, i] >= SIMILAR_REASON:
                reasons.append(meta.seed_names[best])
        for phrase, _, match in meta.phrases:
            if match[i] >= 1:
                reasons.append(f'matches "{phrase}" in the {"title" if match[i] == 2 else "abstract"}')
        if user.authors:
            names = self._author_names(user, i)
            if names:
                reasons.append("by " + ", ".join(names))
        if user.categories:
            wanted = {c.lower() for c in user.categories}
            cats = [c for c in e["categories"] if c.lower() in wanted]
            if cats:
                reasons.append(f"in {cats[0]}")
        if user.popularity > 0 and e["popularity"] >= POPULAR_UPVOTES:
            reasons.append(f"trending: {e['popularity']} upvotes")
        for phrase, match in meta.excluded:
            if match[i] >= 1:
                reasons.append(f'demoted: mentions "{phrase}"')
        return Ranked(id=e["id"], title=e["title"], link=e["link"],
                      score=round(float(scores[i]), 6), reasons=reasons, sources=e["sources"],
                      authors=e["authors"], categories=e["categories"],
                      summary_text=e["summary_text"], published=e["published"],
                      popularity=e["popularity"])

    def _author_names(self, user: UserConfig, i: int) -> list[str]:
        wanted = {_author_key(a) for a in user.authors}
        return [a for a, key in zip(self.entries[i]["authors"], self.author_keys[i], strict=True)
                if key in wanted][:2]

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
    since = last_sent if last_sent and last_sent < until else (
        until - timedelta(seconds=config.ranking.lookback))
    return since, until


def build_ranker(config: Config, store: Store, now: datetime, since: datetime | None,
                 semantic: bool) -> Ranker:
    from digest.semantic import Embedder

    entries = store.entries_for_ranking(since=since)
    return Ranker(config, store, entries, now, Embedder(store) if semantic else None)


class _PhraseIndex:
    """Where phrases occur without scanning every entry per phrase: a word → entries index
    (sorted arrays) finds the entries holding all of a phrase's words; a substring test on
    those few confirms the words stand together, in the title or the abstract."""

    def __init__(self, entries: list[dict]):
        self.title = [" " + " ".join(words(e["title"])) + " " for e in entries]
        self.body = [" " + " ".join(words(e["summary_text"])) + " " for e in entries]
        self.vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        setdefault = self.vocab.setdefault
        for i, (t, b) in enumerate(zip(self.title, self.body, strict=True)):
            for x in set(t.split()) | set(b.split()):
                cols.append(setdefault(x, len(self.vocab)))
                rows.append(i)
        col = np.asarray(cols, dtype=np.int64)
        order = np.argsort(col, kind="stable")  # stable: entries stay ascending per word
        self.rows = np.asarray(rows, dtype=np.int64)[order]
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(col, minlength=len(self.vocab)))])
        self.n = len(entries)

    def _postings(self, word: str) -> np.ndarray:
        j = self.vocab.get(word)
        return self.rows[self.starts[j]:self.starts[j + 1]] if j is not None else self.rows[:0]

    def match(self, phrase: tuple[str, ...]) -> np.ndarray:
        out = np.zeros(self.n, dtype=np.float32)
        if not phrase:
            return out
        present = self._postings(phrase[0])
        for word in phrase[1:]:
            present = np.intersect1d(present, self._postings(word), assume_unique=True)
        out[present] = 0.3  # all its words, maybe apart
        needle = " " + " ".join(phrase) + " "
        out[[i for i in present.tolist() if needle in self.body[i]]] = 1.0
        out[[i for i in present.tolist() if needle in self.title[i]]] = 2.0
        return out


def _points(match: np.ndarray) -> np.ndarray:
    """Phrase match codes → interest points: title, abstract, scattered."""
    return np.select([match == 2, match == 1, match > 0], [TITLE_HIT, BODY_HIT, SCATTERED_HIT],
                     0.0).astype(np.float32)


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


def _near_duplicate(a: frozenset[str], b: frozenset[str]) -> bool:
    """Jaccard(a, b) ≥ NEAR_DUPLICATE; the size test alone rules out most pairs cheaply."""
    la, lb = len(a), len(b)
    if not la or not lb or min(la, lb) < NEAR_DUPLICATE * max(la, lb):
        return False
    inter = len(a & b)
    return inter >= NEAR_DUPLICATE * (la + lb - inter)
