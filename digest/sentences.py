"""An abstract's sentences as the highlight reads them (highlight.py): split, their words
stemmed, and stored with the entry as term-dictionary ids the first time it is shown to a
reader (`entries.sentences`, Pool.abstracts), with where each word stands, so a ranking reads
them back as arrays instead of splitting, stemming and scanning every abstract it shows again,
in every process."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

import numpy as np

from digest import lexical
from digest.models import Highlight

FORM = 3  # bump when analyze() or encode() changes: stored sentences of another form are redone
HIGHLIGHT_CHARS = 320  # a longer sentence is cut at a word, marks past the cut dropped
# A sentence ends at . ! or ? followed by a space and a capital, digit or opening bracket,
# so "e.g. the" and "Fig. 3" mostly stay inside one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"“])")
WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
_FAR = 0xFFFF  # a word's place in its sentence is stored in 16 bits: further is never shown


class Parsed(NamedTuple):
    """analyze()'s result: per sentence its (start, end) in the text as given (from its first
    to past its last non-space character), its words' stems, and each word's (start, end) in
    the sentence with whitespace collapsed (as shown)."""

    bounds: list[tuple[int, int]]
    stems: list[list[str]]
    spans: list[list[tuple[int, int]]]


class Stored(NamedTuple):
    """decode()'s arrays: the sentences' (start, end); every sentence's word ids followed by
    -1 (so no phrase is found across two); each sentence's distinct word ids, one sentence's
    after another, and how many each has; and each word's (start, end) in its sentence."""

    bounds: np.ndarray  # (sentences × 2) int32
    words: np.ndarray  # int32
    counts: np.ndarray  # int32, per sentence
    uniq: np.ndarray  # int32
    spans: np.ndarray  # (words × 2) uint16


def split_sentences(text: str) -> list[str]:
    """A text's sentences, whitespace collapsed."""
    return [" ".join(text[a:b].split()) for a, b in _bounds(text)]


def analyze(text: str) -> Parsed:
    """A text's sentences, their words' stems and places. Lowercased as one string and split
    again, as highlight._stems lowercases a phrase (str.lower of a whole text, which a few
    letters need)."""
    bounds = _bounds(text)
    found = [list(WORD.finditer(" ".join(text[a:b].split()))) for a, b in bounds]
    every = [m.group() for ms in found for m in ms]
    stems = lexical.stems(" ".join(every).lower().split(" ") if every else [])
    out, at = [], 0
    for ms in found:
        out.append(stems[at:at + len(ms)])
        at += len(ms)
    return Parsed(bounds, out, [list(map(re.Match.span, ms)) for ms in found])


def encode(parsed: Parsed, ids: Mapping[str, int]) -> bytes:
    """analyze()'s result as int32s: FORM, the number of sentences, of word ids (with the -1
    after each sentence) and of distinct ids (each sentence's); each sentence's start and end;
    the word ids; how many distinct ids each sentence has; those ids. Then each word's start and
    end in its sentence as uint16s."""
    words: list[int] = []
    counts: list[int] = []
    uniq: list[int] = []
    for stems in parsed.stems:
        these = list(map(ids.__getitem__, stems))
        distinct = list(dict.fromkeys(these))
        words += these
        words.append(-1)
        counts.append(len(distinct))
        uniq += distinct
    head = [FORM, len(parsed.bounds), len(words), len(uniq)]
    bounds = [x for pair in parsed.bounds for x in pair]
    places = [min(x, _FAR) for spans in parsed.spans for pair in spans for x in pair]
    return (np.asarray(head + bounds + words + counts + uniq, dtype="<i4").tobytes()
            + np.asarray(places, dtype="<u2").tobytes())


def word_ids(stems: list[list[str]], ids: Mapping[str, int]) -> np.ndarray:
    """Sentences' stems (analyze) as their ids in `ids`, each sentence followed by -1, as
    encode lays out an abstract's words; a stem without an id (absent, or -1) is left out."""
    out: list[int] = []
    for ws in stems:
        out += [j for j in (ids.get(w, -1) for w in ws) if j >= 0]
        out.append(-1)
    return np.asarray(out, dtype=np.int64)


def decode(stored: bytes | str) -> Stored | None:
    """encode()'s arrays, or None when not stored (or stored in another form)."""
    if not isinstance(stored, bytes) or len(stored) < 16:
        return None
    form, n, m, u = np.frombuffer(stored, dtype="<i4", count=4).tolist()
    ints = 4 + 3 * n + m + u
    if form != FORM or min(n, u) < 0 or m < n or len(stored) != 4 * ints + 4 * (m - n):
        return None
    a = np.frombuffer(stored, dtype="<i4", count=ints)
    at = np.cumsum([4, 2 * n, m, n, u]).tolist()
    if int(a[at[2]:at[3]].sum()) != u:  # counts that disagree would misplace every match
        return None
    return Stored(a[at[0]:at[1]].reshape(n, 2), a[at[1]:at[2]], a[at[2]:at[3]], a[at[3]:at[4]],
                  np.frombuffer(stored, dtype="<u2", offset=4 * ints).reshape(m - n, 2))


def one(text: str, ids: Callable[[Iterable[str]], Mapping[str, int]]) -> Sentences:
    """One text's sentences read as if stored, `ids(stems)` giving their words' ids: for a
    text shown outside a ranking (highlight.highlight)."""
    parsed = analyze(text)
    return Sentences(text, decode(encode(parsed, ids(w for ws in parsed.stems for w in ws))))


class Sentences:
    """One abstract's sentences, from decode()'s arrays: what no reader changes, and the
    text shown for a sentence (cut at HIGHLIGHT_CHARS) once it is first shown."""

    __slots__ = ("_bounds", "_layouts", "_spans", "_text", "counts", "n", "starts", "uniq",
                 "words")

    def __init__(self, text: str, stored: Stored) -> None:
        self._text = text
        self.n = len(stored.bounds)
        self._bounds, self._spans = stored.bounds, stored.spans
        # Sentence k is words[starts[k]:starts[k + 1] - 1], then a -1.
        self.words, self.uniq, self.counts = stored.words, stored.uniq, stored.counts
        self.starts = [0, *(np.flatnonzero(stored.words == -1) + 1).tolist()]
        # Per sentence once shown: the text shown, its words' (start, end) one after another
        # in one flat list, how many words show, all of its text.
        self._layouts: list[tuple[str, list[int], int, str] | None] = [None] * self.n

    def sentence(self, k: int) -> str:
        """Sentence k's text, whitespace collapsed."""
        a, b = self._bounds[k].tolist()
        return " ".join(self._text[a:b].split())

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
        return Highlight(text, tuple([(spans[2 * a], spans[2 * b + 1]) for a, b in out]))

    def marked(self, k: int, words: list[int]) -> Highlight:
        """Sentence k with the words at these places (in order) marked: the common case, so
        without the general merge (neighbours a space apart join)."""
        text, spans, visible = self._layout(k)
        starts: list[int] = []
        ends: list[int] = []
        last = -2
        for i in words:
            if i >= visible:
                break
            if i == last + 1 and self._glued(k, last):
                ends[-1] = spans[2 * i + 1]
            else:
                starts.append(spans[2 * i])
                ends.append(spans[2 * i + 1])
            last = i
        return Highlight(text, tuple(zip(starts, ends, strict=True)))

    def _glued(self, k: int, i: int) -> bool:
        """Whether word i of sentence k and the next stand a single space apart."""
        _, spans, _, text = self._layouts[k]  # laid out by the caller
        return text[spans[2 * i + 1]:spans[2 * i + 2]] == " "

    def _layout(self, k: int) -> tuple[str, list[int], int]:
        """Sentence k's text shown, its words' character spans, and how many of them it shows."""
        got = self._layouts[k]
        if got is None:
            text = self.sentence(k)
            spans = self._spans[self.starts[k] - k:self.starts[k + 1] - 1 - k].ravel().tolist()
            if len(text) <= HIGHLIGHT_CHARS:
                got = (text, spans, len(spans) // 2, text)
            else:
                head = text[:HIGHLIGHT_CHARS]  # cut at a word; marks past the cut are dropped
                space = head.rfind(" ")
                head = (head[:space] if space > HIGHLIGHT_CHARS // 2 else head).rstrip(" ,.;:-")
                got = (head + "…", spans, sum(1 for end in spans[1::2] if end <= len(head)), text)
            self._layouts[k] = got
        return got[:3]


def _bounds(text: str) -> list[tuple[int, int]]:
    """Where the text's sentences start and end in it, as given: each from its first to past
    its last non-space character. Collapsing a sentence's whitespace then gives what splitting
    the collapsed text would (its ends are at the same whitespace runs), and only the shown
    sentence of an abstract need be collapsed, not the whole abstract."""
    bounds, at = [], 0
    for m in _SENTENCE_END.finditer(text):
        _add_stripped(bounds, text, at, m.start())
        at = m.end()
    _add_stripped(bounds, text, at, len(text))
    return bounds


def _add_stripped(bounds: list[tuple[int, int]], text: str, a: int, b: int) -> None:
    """(a, b) without the whitespace at either end, unless nothing is left."""
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if a < b:
        bounds.append((a, b))
