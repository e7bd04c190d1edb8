""""v2 posted": a new arXiv version of a paper a reader was sent or liked, told once per
version in their next digest's Updated section. The decision only; compose.py reads the
store."""

from __future__ import annotations

from datetime import date

from digest.models import UPDATED, Ranked, StoredEntry


def updated_items(entries: list[StoredEntry], liked: dict[str, tuple[str, int]],
                  first_sent: dict[str, str], told: set[tuple[str, int]]) -> list[Ranked]:
    """The revised `entries` this reader should hear of: liked on an older version, or sent
    before the revision; not already told of at this version. `liked` is entry → (when,
    version liked), `first_sent` entry → the first day it was in their digest, `told` the
    (entry, version) pairs earlier digests told of."""
    out = []
    for e in sorted(entries, key=lambda e: (e.revised, e.id)):
        if (e.id, e.version) in told or e.version < 2:
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
