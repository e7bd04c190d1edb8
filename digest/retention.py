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
    Store.prune), then the cached embeddings that no remaining entry or cached library (or
    one of their sentences or titles) needs."""
    entries = store.prune(before)

    def wanted() -> set[str]:
        entries = store.entries_for_ranking()
        libraries = [Seeds.decode(data) or NO_SEEDS for data in store.cached_libraries()]
        return needed([entry_text(e) for e in entries] + [t for s in libraries for t in s.texts],
                      [e.title for e in entries] + [t for s in libraries for t in s.titles])
    return Pruned(entries, store.keep_embeddings(wanted))
