"""Archive search: every stored entry (title, authors, abstract), best first by BM25 through the
store's FTS5 index, for `digest search` and the preview's search box.

A query is words and "quoted phrases", all of which must match, stemmed ("transfers" finds
"transfer"); it is turned into FTS5 syntax here, every term quoted, so a stranger's
punctuation ("long-context", "C++", a lone quote) is searched for, never parsed as an operator."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from digest.errors import DigestError
from digest.settings import Config, UserConfig
from digest.store import Store

_TERM = re.compile(r'"([^"]*)"|(\S+)')
_WORD = re.compile(r"\w+")


class SearchError(DigestError):
    pass


@dataclass
class Hit:
    id: str
    title: str
    link: str
    authors: list[str]
    published: str
    sources: list[str]
    digests: list[tuple[str, str]] = field(default_factory=list)  # (reader, day) that held it

    def as_json(self) -> dict:
        return {"id": self.id, "title": self.title, "link": self.link, "authors": self.authors,
                "published": self.published, "sources": self.sources,
                "digests": [{"reader": r, "day": d} for r, d in self.digests]}


def fts_query(text: str, author: str = "") -> str:
    """Words and "phrases" of `text`, and `author` as a phrase in the authors column, as an
    FTS5 query that matches entries holding all of them."""
    parts = []
    for phrase, word in _TERM.findall(text):
        words = _WORD.findall(phrase if phrase else word)
        if words:
            parts.append('"' + " ".join(words) + '"')
    words = _WORD.findall(author)
    if words:
        parts.append('authors : "' + " ".join(words) + '"')
    return " AND ".join(parts)


def search(config: Config, store: Store, text: str, *, reader: UserConfig | None = None,
           author: str = "", since: datetime | None = None, limit: int = 20) -> list[Hit]:
    """Entries matching the query, best first; with `reader`, only from their feeds, and the
    digests listed are theirs."""
    query = fts_query(text, author)
    if not query:
        raise SearchError("the search has no words to look for; give a word, a \"phrase\" or "
                          "an author.")
    feeds = (list(reader.feeds) or list(config.feeds)) if reader else None
    ids = store.search(query, limit=limit, feeds=feeds, since=since)
    held = store.digests_holding(ids, reader.name if reader else None)
    hits = []
    for entry_id in ids:
        e = store.entry(entry_id)
        hits.append(Hit(entry_id, e.title, e.link, e.authors, e.published,
                        e.sources, held[entry_id]))
    return hits
