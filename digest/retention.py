"""What is kept, and for how long: `digest prune`, and `digest run`'s daily prune."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest.rank.seeds import NO_SEEDS, Seeds, entry_text
from digest.semantic import needed
from digest.store import Store


@dataclass(frozen=True)
class Pruned:
    entries: int  # entries whose content was deleted
    vectors: int  # cached embeddings nothing needs any more


def prune(store: Store, before: datetime) -> Pruned:
    """Delete the content of entries older than `before` (not what a reader voted on; see
    Store.prune), then the cached embeddings that no remaining entry or seed (a cached
    library's paper or a 👍 entry) needs (semantic.needed)."""
    entries = store.prune(before)

    def wanted() -> set[str]:
        entries = store.entries_for_ranking()
        liked = set(store.liked())
        liked_entries = [e for e in entries if e.id in liked]
        libraries = [Seeds.decode(data) or NO_SEEDS for data in store.cached_libraries()]
        return needed([entry_text(e) for e in entries],
                      [t for s in libraries for t in s.texts] + list(map(entry_text, liked_entries)),
                      [t for s in libraries for t in s.titles] + [e.title for e in liked_entries])
    return Pruned(entries, store.keep_embeddings(wanted))
