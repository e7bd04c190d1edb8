"""The one sentence of an abstract that is about the reader: extractive, no language model.

A sentence is scored by what the reader follows, strongest first: their phrases, then the
seed paper named in the item's reasons, then their library as a whole; the best sentence is
shown instead of the abstract's opening, with the words that matched marked. Nothing
matching, the first sentence. Pure functions; the ranker calls `highlight` for the items it
picks (benchmarks/bench_render.py measures the cost per item)."""

from __future__ import annotations

import functools
import re
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
    # sentence, tier by tier: a later tier only breaks the ties of the one before.
    phrases = [p for p in profile.phrases if every.issuperset(p)]
    seed, library = seed & every, profile.library & every
    candidates = range(len(sentences))
    key = [0, 0, 0]
    if phrases:
        counts = [0] * len(sentences)
        for p in phrases:
            for j, (_, stems, present) in enumerate(sentences):
                if p[0] in present and present.issuperset(p):
                    counts[j] += len(_starts(stems, p))
        candidates, key[0] = _best(counts)
    for tier, words in ((1, seed), (2, library)):
        if words and len(candidates) > 1:
            counts = [len(sentences[j][2] & words) for j in candidates]
            chosen, key[tier] = _best(counts)
            candidates = [candidates[j] for j in chosen]
        elif words:
            key[tier] = len(sentences[candidates[0]][2] & words)
    best = candidates[0]
    text, stems, _ = sentences[best]
    if not any(key):
        return _cut(text, ())
    found = list(_WORD.finditer(text))
    if len(found) != len(stems):  # lowercasing changed a word's bounds (rare, non-ASCII)
        stems = lexical.stems([m.group(0).lower() for m in found])
    if key[0]:
        marks = [(found[i].start(), found[i + len(p) - 1].end()) for p in phrases
                 for i in _starts(stems, p)]
    else:
        wanted = seed if key[1] else library
        marks = [(m.start(), m.end()) for m, s in zip(found, stems, strict=True) if s in wanted]
    return _cut(text, marks)


@functools.lru_cache(maxsize=4096)
def _sentences(abstract: str) -> tuple[tuple[tuple[str, list[str], frozenset[str]], ...],
                                       frozenset[str]]:
    """An abstract's sentences with their words' stems, and all its stems: what does not
    depend on the reader, so readers who are shown the same item share it."""
    out = []
    for sentence in _SENTENCE_END.split(" ".join(abstract.split())):
        if sentence:
            stems = lexical.stems(_WORD.findall(sentence.lower()))
            out.append((sentence, stems, frozenset(stems)))
    return tuple(out), frozenset().union(*(p for _, _, p in out))


def _best(counts: list[int]) -> tuple[list[int], int]:
    """The positions holding the highest count, in order, and that count."""
    top = max(counts)
    return [j for j, c in enumerate(counts) if c == top], top


def _starts(stems: list[str], phrase: tuple[str, ...]) -> list[int]:
    k, first = len(phrase), phrase[0]
    return [i for i, s in enumerate(stems) if s == first and tuple(stems[i:i + k]) == phrase]


def _cut(text: str, marks) -> Highlight:
    if len(text) <= HIGHLIGHT_CHARS:
        return Highlight(text, _merge(marks, text) if marks else ())
    head = text[:HIGHLIGHT_CHARS]
    space = head.rfind(" ")
    head = (head[:space] if space > HIGHLIGHT_CHARS // 2 else head).rstrip(" ,.;:-") + "…"
    return Highlight(head, _merge([(a, b) for a, b in marks if b <= len(head) - 1], head))


def _merge(marks, text: str) -> tuple[tuple[int, int], ...]:
    """Overlapping spans (two phrases sharing a word) as one, and marked words with only a
    space between them: "**Reverse Instance Normalization**", not three bold runs."""
    out: list[list[int]] = []
    for a, b in sorted(marks):
        if out and (a <= out[-1][1] or text[out[-1][1]:a] == " "):
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


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
