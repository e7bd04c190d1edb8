"""The one sentence of an abstract that is about the reader: extractive, no language model.

A sentence is scored by what the reader follows, strongest first: their phrases, then the
seed paper named in the item's reasons, then their library as a whole; the best sentence is
shown instead of the abstract's opening, with the words that matched marked. Nothing
matching, the first sentence. Pure functions; the ranker calls `highlight` for the items it
picks (benchmarks/bench_render.py measures the cost per item)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from digest import lexical
from digest.models import Highlight

HIGHLIGHT_CHARS = 320  # a longer sentence is cut at a word, marks past the cut dropped
# A sentence ends at . ! or ? followed by a space and a capital, digit or opening bracket,
# so "e.g. the" and "Fig. 3" mostly stay inside one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"“])")
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")


@dataclass(frozen=True)
class Profile:
    """What one reader's sentences are matched against, prepared once per reader."""

    phrases: tuple[tuple[str, ...], ...] = ()  # each phrase as its words' stems
    library: frozenset[str] = frozenset()  # content-word stems of the library's titles

    @classmethod
    def of(cls, phrases, library_titles) -> Profile:
        return cls(phrases=tuple(p for p in (tuple(_stems(x)) for x in phrases) if p),
                   library=frozenset().union(*map(_title_words, library_titles)))


def highlight(abstract: str, profile: Profile, seed: frozenset[str] = frozenset()) -> Highlight:
    """The sentence of `abstract` best matching the profile (phrases, then the seed paper's
    words, then the library's), with its matched words; the first sentence when none match."""
    sentences, every = _sentences(abstract)
    if not sentences:
        return Highlight("")
    # Only what of the profile occurs somewhere in the abstract is looked for sentence by
    # sentence (most phrases occur in none), tier by tier: a later tier only breaks the ties of
    # the one before.
    phrases = [p for p in profile.phrases if every.issuperset(p)]
    seed, library = seed & every, profile.library & every
    candidates = range(len(sentences))
    key = [0, 0, 0]
    if phrases:
        counts = [0] * len(sentences)
        for p in phrases:
            for j, s in enumerate(sentences):
                if s.present.issuperset(p):
                    counts[j] += len(s.starts(p))
        candidates, key[0] = _best(counts)
    for tier, words in ((1, seed), (2, library)):
        if words and len(candidates) > 1:  # per sentence, how many of the words it has
            chosen, key[tier] = _best([len(sentences[j].present & words) for j in candidates])
            candidates = [candidates[j] for j in chosen]
        elif words:
            key[tier] = len(sentences[candidates[0]].present & words)
    best = sentences[candidates[0]]
    if key[0]:
        return best.shown([(i, i + len(p) - 1) for p in phrases for i in best.starts(p)])
    if key[1] or key[2]:
        return best.marked(seed if key[1] else library)
    return best.shown()


class _Sentence:
    """One sentence of an abstract with what no reader changes: its words' stems, and (worked
    out once it is first shown) its words' character spans and the text shown, cut at
    HIGHLIGHT_CHARS."""

    __slots__ = ("_at", "_layout", "present", "stems", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        words = _WORD.findall(text)
        self.stems = lexical.stems(" ".join(words).lower().split(" ") if words else [])
        self.present = frozenset(self.stems)
        self._at: dict[str, list[int]] | None = None
        self._layout: tuple[str, list[tuple[int, int]], int] | None = None

    def starts(self, phrase: tuple[str, ...]) -> list[int]:
        """Where the phrase's stems stand together in this sentence."""
        if self._at is None:
            self._at = {}
            for i, s in enumerate(self.stems):
                self._at.setdefault(s, []).append(i)
        k = len(phrase)
        if k == 1:
            return self._at.get(phrase[0], [])
        return [i for i in self._at.get(phrase[0], ()) if tuple(self.stems[i:i + k]) == phrase]

    def shown(self, runs: Iterable[tuple[int, int]] = ()) -> Highlight:
        """The text shown, with the word runs (first, last word) as character spans: runs that
        overlap (two phrases sharing a word) or stand a space apart join into one."""
        if self._layout is None:
            self._layout = self._lay_out()
        text, spans, visible = self._layout
        out: list[list[int]] = []
        for a, b in sorted(r for r in runs if r[1] < visible):
            if out and (a <= out[-1][1] or (a == out[-1][1] + 1 and self._glued(a - 1))):
                out[-1][1] = max(out[-1][1], b)
            else:
                out.append([a, b])
        return Highlight(text, tuple([(spans[a][0], spans[b][1]) for a, b in out]))

    def marked(self, wanted: frozenset[str]) -> Highlight:
        """shown() with each word whose stem is `wanted` marked: the common case, so without
        the general merge (single words come in order; neighbours a space apart join)."""
        if self._layout is None:
            self._layout = self._lay_out()
        text, spans, visible = self._layout
        out: list[list[int]] = []
        last = -2
        for i in [i for i, s in enumerate(self.stems[:visible]) if s in wanted]:
            if i == last + 1 and self._glued(last):
                out[-1][1] = spans[i][1]
            else:
                out.append(list(spans[i]))
            last = i
        return Highlight(text, tuple(map(tuple, out)))

    def _glued(self, i: int) -> bool:
        """Whether word i and the next stand a single space apart (their marks join)."""
        spans = self._layout[1]
        return self.text[spans[i][1]:spans[i + 1][0]] == " "

    def _lay_out(self) -> tuple[str, list[tuple[int, int]], int]:
        """The text shown, its words' character spans, and how many of them it shows."""
        text = self.text
        spans = [m.span() for m in _WORD.finditer(text)]
        if len(text) <= HIGHLIGHT_CHARS:
            return text, spans, len(spans)
        head = text[:HIGHLIGHT_CHARS]  # cut at a word; marks past the cut are dropped
        space = head.rfind(" ")
        head = (head[:space] if space > HIGHLIGHT_CHARS // 2 else head).rstrip(" ,.;:-")
        return head + "…", spans, sum(1 for _, end in spans if end <= len(head))


def split_sentences(text: str) -> list[str]:
    """A text's sentences, whitespace collapsed."""
    return [s for s in _SENTENCE_END.split(" ".join(text.split())) if s]


@functools.lru_cache(maxsize=4096)  # about 25 KB an abstract, most of it its sentences' stems
def _sentences(abstract: str) -> tuple[tuple[_Sentence, ...], frozenset[str]]:
    """An abstract's sentences and all their stems: what does not depend on the reader, so
    readers who are shown the same item share it."""
    sentences = tuple(map(_Sentence, split_sentences(abstract)))
    return sentences, frozenset().union(*(s.present for s in sentences))


def _best(counts: list[int]) -> tuple[list[int], int]:
    """The positions holding the highest count, in order, and that count."""
    top = max(counts)
    if counts.count(top) == 1:  # the common case, without a Python loop
        return [counts.index(top)], top
    return [j for j, c in enumerate(counts) if c == top], top


def _stems(text: str) -> list[str]:
    return lexical.stems(_WORD.findall(text.lower()))


def _content(text: str) -> list[str]:
    """The stems of a text's content words: what a seed paper or library contributes."""
    return lexical.stems([w for w in _WORD.findall(text.lower())
                          if len(w) > 2 and w not in lexical.STOPWORDS])


@functools.lru_cache(maxsize=16384)  # readers share library papers
def _title_words(title: str) -> frozenset[str]:
    return frozenset(_content(title))


@functools.lru_cache(maxsize=4096)  # readers share seed papers
def seed_words(title: str, text: str) -> frozenset[str]:
    return frozenset(_content(title + " " + text))
