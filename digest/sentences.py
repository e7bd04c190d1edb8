"""An abstract's sentences as the highlight reads them (highlight.py): split, their words
stemmed, and stored with the entry as term-dictionary ids the first time it is shown to a
reader (`entries.sentences`, Pool.abstracts), so a ranking reads them back as arrays instead
of splitting and stemming every abstract it shows again, in every process."""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from digest import lexical
from digest.models import Highlight

FORM = 1  # bump when analyze() or encode() changes: stored sentences of another form are redone
HIGHLIGHT_CHARS = 320  # a longer sentence is cut at a word, marks past the cut dropped
# A sentence ends at . ! or ? followed by a space and a capital, digit or opening bracket,
# so "e.g. the" and "Fig. 3" mostly stay inside one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"“])")
WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")


def split_sentences(text: str) -> list[str]:
    """A text's sentences, whitespace collapsed."""
    flat, bounds = _bounds(text)
    return [flat[a:b] for a, b in bounds]


def analyze(text: str) -> tuple[list[tuple[int, int]], list[list[str]]]:
    """Each sentence's (start, end) in the text with whitespace collapsed, and its words'
    stems. Lowercased as one string and split again, as highlight._stems lowercases a
    phrase (str.lower of a whole text, which a few letters need)."""
    flat, bounds = _bounds(text)
    found = [WORD.findall(flat[a:b]) for a, b in bounds]
    every = [w for words in found for w in words]
    stems = lexical.stems(" ".join(every).lower().split(" ") if every else [])
    out, at = [], 0
    for words in found:
        out.append(stems[at:at + len(words)])
        at += len(words)
    return bounds, out


def encode(parsed: tuple[list[tuple[int, int]], list[list[str]]], ids: Mapping[str, int]) -> bytes:
    """analyze()'s result as int32s: FORM, the number of sentences, each one's start and
    end, then every sentence's word ids followed by -1 (so no phrase is found across two)."""
    bounds, stems = parsed
    out = [FORM, len(bounds)] + [x for pair in bounds for x in pair]
    for words in stems:
        out += map(ids.__getitem__, words)
        out.append(-1)
    return np.asarray(out, dtype="<i4").tobytes()


def decode(stored: bytes | str) -> np.ndarray | None:
    """encode()'s ints after FORM, or None when not stored (or stored in another form)."""
    if not isinstance(stored, bytes) or len(stored) < 8:
        return None
    a = np.frombuffer(stored, dtype="<i4")
    return a[1:] if a[0] == FORM else None


class Sentences:
    """One abstract's sentences, from decode()'s ints: what no reader changes. Its
    sentences' distinct word ids are worked out here; the text shown for a sentence (cut at
    HIGHLIGHT_CHARS) and its words' character spans once it is first shown."""

    __slots__ = ("_bounds", "_flat", "_layouts", "_text", "counts", "n", "starts", "top", "uniq",
                 "words")

    def __init__(self, text: str, encoded: np.ndarray) -> None:
        self._text, self._flat = text, None
        self.n = n = int(encoded[0])
        self._bounds = encoded[1:1 + 2 * n].reshape(n, 2).tolist()
        # Sentence k is words[starts[k]:starts[k + 1] - 1], then a -1.
        self.words = words = encoded[1 + 2 * n:]
        self.starts = starts = [0, *(np.flatnonzero(words == -1) + 1).tolist()]
        every = words.tolist()
        uniq: list[int] = []
        self.counts = []  # each sentence's distinct ids, in uniq one after the other
        for k in range(n):
            distinct = set(every[starts[k]:starts[k + 1] - 1])
            uniq += distinct
            self.counts.append(len(distinct))
        self.uniq = np.array(uniq, dtype=np.int64)
        self.top = max(uniq, default=0)  # the largest id
        # Per sentence once shown: the text shown, its words' spans, how many show, all of it.
        self._layouts: list[tuple[str, list[tuple[int, int]], int, str] | None] = [None] * n

    def sentence(self, k: int) -> str:
        """Sentence k's text, whitespace collapsed."""
        if self._flat is None:
            self._flat = " ".join(self._text.split())
        a, b = self._bounds[k]
        return self._flat[a:b]

    def shown(self, k: int, runs: list[tuple[int, int]] = ()) -> Highlight:
        """Sentence k, with the word runs (first, last word) as character spans: runs that
        overlap (two phrases sharing a word) or stand a space apart join into one."""
        text, spans, visible = self._layout(k)
        out: list[list[int]] = []
        for a, b in sorted(r for r in runs if r[1] < visible):
            if out and (a <= out[-1][1] or (a == out[-1][1] + 1 and self._glued(k, a - 1))):
                out[-1][1] = max(out[-1][1], b)
            else:
                out.append([a, b])
        return Highlight(text, tuple([(spans[a][0], spans[b][1]) for a, b in out]))

    def marked(self, k: int, words: list[int]) -> Highlight:
        """Sentence k with the words at these places (in order) marked: the common case, so
        without the general merge (neighbours a space apart join)."""
        text, spans, visible = self._layout(k)
        out: list[list[int]] = []
        last = -2
        for i in words:
            if i >= visible:
                break
            if i == last + 1 and self._glued(k, last):
                out[-1][1] = spans[i][1]
            else:
                out.append(list(spans[i]))
            last = i
        return Highlight(text, tuple(map(tuple, out)))

    def _glued(self, k: int, i: int) -> bool:
        """Whether word i of sentence k and the next stand a single space apart."""
        _, spans, _, text = self._layouts[k]  # laid out by the caller
        return text[spans[i][1]:spans[i + 1][0]] == " "

    def _layout(self, k: int) -> tuple[str, list[tuple[int, int]], int]:
        """Sentence k's text shown, its words' character spans, and how many of them it shows."""
        got = self._layouts[k]
        if got is None:
            text = self.sentence(k)
            spans = list(map(re.Match.span, WORD.finditer(text)))
            if len(text) <= HIGHLIGHT_CHARS:
                got = (text, spans, len(spans), text)
            else:
                head = text[:HIGHLIGHT_CHARS]  # cut at a word; marks past the cut are dropped
                space = head.rfind(" ")
                head = (head[:space] if space > HIGHLIGHT_CHARS // 2 else head).rstrip(" ,.;:-")
                got = (head + "…", spans, sum(1 for _, end in spans if end <= len(head)), text)
            self._layouts[k] = got
        return got[:3]


def _bounds(text: str) -> tuple[str, list[tuple[int, int]]]:
    """The text with whitespace collapsed, and where its sentences start and end in it."""
    flat = " ".join(text.split())
    bounds, at = [], 0
    for m in _SENTENCE_END.finditer(flat):
        if m.start() > at:
            bounds.append((at, m.start()))
        at = m.end()
    if len(flat) > at:
        bounds.append((at, len(flat)))
    return flat, bounds
