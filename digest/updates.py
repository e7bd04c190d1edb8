""""v2 posted": a new arXiv version of a paper a reader was sent or liked, told once per
version in their next digest's Updated section. The decision only; compose.py reads the
store."""

from __future__ import annotations

from datetime import date

from digest.lexical import words
from digest.models import UPDATED, Ranked, StoredEntry
from digest.rank.seeds import author_key


def updated_items(entries: list[StoredEntry], liked: dict[str, tuple[str, int]],
                  first_sent: dict[str, str], told: set[tuple[str, int]],
                  mutes: list[tuple[str, str, str]] = ()) -> list[Ranked]:
    """The revised `entries` this reader should hear of: liked on an older version, or sent
    before the revision; not already told of at this version, and not muted since. `liked`
    is entry → (when, version liked), `first_sent` entry → the first day it was in their
    digest, `told` the (entry, version) pairs earlier digests told of, `mutes` the reader's
    (kind, value, when)."""
    authors = {author_key(v) for kind, v, _ in mutes if kind == "author"}
    phrases = [set(words(v)) for kind, v, _ in mutes if kind == "phrase"]
    out = []
    for e in sorted(entries, key=lambda e: (e.revised, e.id)):
        if (e.id, e.version) in told or e.version < 2:
            continue
        have = set(words(e.title + " " + e.summary_text)) if phrases else set()
        if authors & {author_key(a) for a in e.authors} or any(p <= have for p in phrases):
            continue
        why = ""
        if e.id in liked and liked[e.id][1] < e.version:
            at, v = liked[e.id]
            why = f"you liked {f'v{v}' if v else 'it'} on {_day(at)}"
        elif e.id in first_sent and first_sent[e.id] <= e.revised[:10]:
            why = f"in your digest of {_day(first_sent[e.id])}"
        if why:
            out.append(Ranked.of(e, 0.0, [f"v{e.version} posted; {why}"], section=UPDATED))
    return out


def _day(iso: str) -> str:
    d = date.fromisoformat(iso[:10])
    return f"{d.day} {d:%b}"
