"""Personal ranking: one score per (reader, entry), with the reasons behind it.

    relevance = library   · softmax_sim(entry, seed papers + 👍 entries)   lexical TF-IDF
              + semantic  · softmax_sim(entry, same seeds)                 embeddings (extra)
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
from digest.lexical import Vocabulary, contains_phrase, soft_max, tokens, words
from digest.library import Library, SeedPaper, load_library
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
class _Parts:
    """Per-reader intermediate results, kept so reasons are built only for what is shown."""

    scores: np.ndarray
    seed_names: list[str] = field(default_factory=list)
    best_seed: np.ndarray | None = None
    best_sim: np.ndarray | None = None
    phrases: list[tuple[str, np.ndarray]] = field(default_factory=list)
    excluded: list[tuple[str, np.ndarray]] = field(default_factory=list)
    authors: dict[int, list[int]] = field(default_factory=dict)
    categories: dict[int, str] = field(default_factory=dict)


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

    def __init__(self, config: Config, store: Store, entries: list[dict], now: datetime,
                 embedder=None):
        self.config = config
        self.store = store
        self.now = now
        self.entries = entries
        self.embedder = embedder
        self.libraries: dict[Path, Library] = {}
        docs = [tokens(_entry_text(e)) for e in entries]
        self.vocab = Vocabulary(docs)
        self.matrix = self.vocab.matrix(docs) if entries else sp.csr_matrix((0, 0))
        self.vectors = (embedder.embed([_entry_text(e) for e in entries])
                        if embedder is not None and entries else None)
        self._words: list[tuple[list[str], list[str]]] | None = None  # (title, body) words
        self._postings: dict[str, set[int]] = {}
        self._phrases: dict[tuple[str, ...], np.ndarray] = {}
        self.author_keys = [[_author_key(a) for a in e["authors"]] for e in entries]
        self.by_author: dict[str, list[int]] = {}
        self.by_category: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            for key in set(self.author_keys[i]):
                self.by_author.setdefault(key, []).append(i)
            for cat in {c.lower() for c in e["categories"]}:
                self.by_category.setdefault(cat, []).append(i)
        self.id_order = np.argsort(np.argsort(np.asarray([e["id"] for e in entries], dtype=object)))
        self.index_of = {e["id"]: i for i, e in enumerate(entries)}
        self.feeds_of = [set(e["sources"]) for e in entries]
        ages = [(now - datetime.fromisoformat(e["published"])).total_seconds() / 86400
                for e in entries]
        self.age_days = np.maximum(np.asarray(ages, dtype=np.float32), 0.0)
        pops = np.asarray([e["popularity"] for e in entries], dtype=np.float32)
        self.pop_signal = np.log1p(pops) / math.log(101)

    # -- profile pieces -------------------------------------------------------------------

    def library(self, path: Path) -> Library:
        if path not in self.libraries:
            self.libraries[path] = load_library(path)
        return self.libraries[path]

    def phrase_match(self, phrase: tuple[str, ...]) -> np.ndarray:
        """Per entry: 2 = phrase in the title, 1 = in the abstract, 0.3 = all its words but
        apart, 0 = not all words. Cached: readers share phrases."""
        if phrase in self._phrases:
            return self._phrases[phrase]
        out = np.zeros(len(self.entries), dtype=np.float32)
        if phrase:
            if self._words is None:  # built on first use: readers without phrases never pay
                self._words = [(words(e["title"]), words(e["summary_text"])) for e in self.entries]
                for i, (t, b) in enumerate(self._words):
                    for term in set(t) | set(b):
                        self._postings.setdefault(term, set()).add(i)
            sets = [self._postings.get(t, set()) for t in phrase]
            for i in set.intersection(*sets):
                title, body = self._words[i]
                if contains_phrase(title, phrase):
                    out[i] = 2.0
                elif contains_phrase(body, phrase):
                    out[i] = 1.0
                else:
                    out[i] = 0.3
        self._phrases[phrase] = out
        return out

    # -- scoring --------------------------------------------------------------------------

    def rank(self, user: UserConfig, rows: np.ndarray | None = None,
             limit: int | None = None) -> list[Ranked]:
        """The reader's entries at `rows` (default: all), best first, with reasons; only the
        top `limit` are built when given. Ties are broken by entry id, so output is stable."""
        idx = np.arange(len(self.entries)) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(idx) == 0:
            return []
        parts = self._score(user, idx)
        order = np.lexsort((self.id_order[idx], -parts.scores))
        if limit is not None:
            order = order[:limit]
        return [self._ranked(user, idx, parts, int(k)) for k in order]

    def _score(self, user: UserConfig, idx: np.ndarray) -> _Parts:
        w = self.config.ranking
        n = len(idx)
        parts = _Parts(scores=np.zeros(n, dtype=np.float32))
        relevance = np.zeros(n, dtype=np.float32)

        # Seed papers and 👍 entries: lexical (and semantic) similarity.
        seeds: list[SeedPaper] = list(self.library(user.papers).papers) if user.papers else []
        votes = self.store.votes(user.name)
        liked, disliked = self._voted(votes, +1), self._voted(votes, -1)
        seed_texts = [s.text for s in seeds] + [_entry_text(e) for e in liked]
        parts.seed_names = [f'similar to your paper "{_short(s.title)}"' for s in seeds] + [
            f'like "{_short(e["title"])}", which you liked' for e in liked]
        if seed_texts:
            weights = np.asarray([w.library] * len(seeds) + [w.feedback] * len(liked),
                                 dtype=np.float32)
            sims = self._similarities(idx, seed_texts)
            for sim, temperature, scale in sims:
                relevance += scale * soft_max(sim * weights, temperature)
            combined = sum(sim for sim, _, _ in sims)
            parts.best_seed = np.argmax(combined, axis=1)
            parts.best_sim = sims[0][0][np.arange(n), parts.best_seed]
        if disliked:
            sim = self._similarities(idx, [_entry_text(e) for e in disliked])[0][0]
            relevance -= w.feedback * NEGATIVE_SHARE * soft_max(sim, w.temperature)

        # Interest phrases: contiguous beats scattered, title beats abstract.
        for phrase, weight in user.interests.items():
            match = self.phrase_match(tuple(words(phrase)))[idx]
            points = np.select([match == 2, match == 1, match > 0],
                               [TITLE_HIT, BODY_HIT, SCATTERED_HIT], 0.0).astype(np.float32)
            relevance += w.interests * weight * points
            parts.phrases.append((phrase, match))

        # Followed authors and categories, through inverted indexes (no per-entry loop).
        position = np.full(len(self.entries), -1, dtype=np.int64)
        position[idx] = np.arange(n)
        for name in user.authors:
            for i in self.by_author.get(_author_key(name), ()):
                k = position[i]
                if k >= 0 and len(parts.authors.setdefault(int(k), [])) < 2:
                    relevance[k] += w.authors * AUTHOR_BOOST
                    parts.authors[int(k)].append(i)
        for cat in user.categories:
            for i in self.by_category.get(cat.lower(), ()):
                k = position[i]
                if k >= 0 and int(k) not in parts.categories:
                    relevance[k] += w.categories * CATEGORY_BOOST
                    parts.categories[int(k)] = cat

        pop = user.popularity * self.pop_signal[idx]
        decay = np.power(0.5, self.age_days[idx] / max(user.half_life / 86400, 1e-6))
        scores = (relevance + pop) * decay
        # Excluded phrases push an item below any digest's floor, whatever else it has.
        for phrase in user.exclude:
            match = self.phrase_match(tuple(words(phrase)))[idx]
            hit = match >= 1
            scores[hit] = scores[hit] * EXCLUDE_FACTOR - EXCLUDE_PENALTY
            parts.excluded.append((phrase, match))
        parts.scores = scores
        return parts

    def _ranked(self, user: UserConfig, idx: np.ndarray, parts: _Parts, k: int) -> Ranked:
        """One result with its reasons, strongest signal first."""
        e = self.entries[idx[k]]
        reasons = []
        if parts.best_seed is not None and parts.best_sim[k] >= SIMILAR_REASON:
            reasons.append(parts.seed_names[parts.best_seed[k]])
        for phrase, match in parts.phrases:
            if match[k] >= 1:
                reasons.append(f'matches "{phrase}" in the {"title" if match[k] == 2 else "abstract"}')
        if k in parts.authors:
            reasons.append("by " + ", ".join(self._author_names(user, idx[k])))
        if k in parts.categories:
            reasons.append(f"in {parts.categories[k]}")
        if user.popularity > 0 and e["popularity"] >= POPULAR_UPVOTES:
            reasons.append(f"trending: {e['popularity']} upvotes")
        for phrase, match in parts.excluded:
            if match[k] >= 1:
                reasons.append(f'demoted: mentions "{phrase}"')
        return Ranked(id=e["id"], title=e["title"], link=e["link"],
                      score=round(float(parts.scores[k]), 6),
                      reasons=reasons, sources=e["sources"], authors=e["authors"],
                      categories=e["categories"], summary_text=e["summary_text"],
                      published=e["published"], popularity=e["popularity"])

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

    def _similarities(self, idx: np.ndarray, texts: list[str]):
        """[(n × seeds cosine matrix, temperature, weight)] for the lexical and, when enabled,
        the semantic model."""
        w = self.config.ranking
        seeds = self.vocab.matrix([tokens(t) for t in texts])
        lexical = np.asarray((self.matrix[idx] @ seeds.T).todense(), dtype=np.float32)
        parts = [(lexical, w.temperature, 1.0)]
        if self.vectors is not None and w.semantic > 0:
            semantic = self.vectors[idx] @ self.embedder.embed(texts).T
            parts.append((semantic.astype(np.float32), SEMANTIC_TEMPERATURE, w.semantic))
        return parts

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


def select(ranked: list[Ranked], limit: int, min_score: float, trending: int) -> list[Ranked]:
    """A digest's items: the best `limit` above the floor, near-duplicates collapsed, then up
    to `trending` popular items not already chosen (marked trending)."""
    chosen: list[Ranked] = []
    seen: list[set[str]] = []
    for r in ranked:
        if len(chosen) >= limit or r.score < min_score:
            break
        words = set(title_key(r.title).split())
        if any(_jaccard(words, s) >= NEAR_DUPLICATE for s in seen):
            continue
        chosen.append(r)
        seen.append(words)
    if trending:
        ids = {r.id for r in chosen}
        popular = sorted((r for r in ranked if r.id not in ids and r.popularity > 0),
                         key=lambda r: (-r.popularity, r.id))[:trending]
        for r in popular:
            r.trending = True
            if not any(x.startswith("trending:") for x in r.reasons):
                r.reasons.append(f"trending: {r.popularity} upvotes")
        chosen.extend(popular)
    return chosen


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


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0
