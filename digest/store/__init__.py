"""All disk access and all SQL, split by what it keeps (as in the `reader` library's storage):

- base.py: the connection (WAL, pragmas) and migrations.py, the schema;
- feeds.py: feed fetch state and the poll log;
- entries.py: entries, their identities and keys;
- fulltext.py: the archive's search index;
- ledger.py: the delivery ledger;
- readers.py: subscription state and votes;
- caches.py: derived data (libraries, embeddings, terms).

Rows come out as dataclasses (models.py, ledger.Delivery). `Store` is all of them on one
connection.
"""

from digest.store.caches import CacheStore
from digest.store.entries import EntryStore
from digest.store.feeds import FeedStore
from digest.store.fulltext import FullTextStore
from digest.store.ledger import LedgerStore
from digest.store.readers import ReaderStore


class Store(FeedStore, EntryStore, FullTextStore, LedgerStore, ReaderStore, CacheStore):
    """The database. `Store(path)` opens (creating and migrating) it; use it as a context
    manager to close it."""


__all__ = ["Store"]
