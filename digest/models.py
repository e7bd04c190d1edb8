"""Plain data passed between stages. No behaviour beyond trivial properties."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digest.settings import UserConfig


@dataclass
class Entry:
    """One normalized feed item, ready to store.

    `ident` is its identity within its feed (guid with its fragment, then link, then a content
    hash); `keys` join the same paper or post across feeds: its arXiv id, DOI and normalized
    title, strongest first. Entries sharing any key are one item (store.add_entries).
    """

    ident: str
    keys: tuple[str, ...]
    title: str
    link: str
    summary_html: str
    summary_text: str
    authors: list[str]
    categories: list[str]
    published: datetime
    popularity: int = 0
    version: int = 0  # arXiv's vN, 0 when the source has no versions
    tldr: str = ""  # Hugging Face's AI summary (never the authors' words)
    code: str = ""  # a link to the code (HF githubRepo, or one in arXiv's comment/abstract)
    data: str = ""  # a link to a dataset

    @property
    def canonical(self) -> str:
        """The strongest key, or "" when the item is too generic to join across feeds."""
        return self.keys[0] if self.keys else ""


@dataclass
class ParsedFeed:
    entries: list[Entry]
    title: str = ""
    warning: str = ""  # non-fatal: the feed was malformed but some entries parsed


@dataclass
class FetchResult:
    """What one download produced. `status` is the final HTTP status (0 for local files)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    url: str = ""  # the URL the body came from, after redirects
    permanent_redirect: str = ""  # target of a 301/308 chain starting at the requested URL
    retry_after: float | None = None  # seconds, from a 429/503 Retry-After header

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass
class FeedState:
    """Per-feed fetch state kept in the `feeds` table (miniflux-style)."""

    name: str
    url: str  # effective URL (may differ from the configured one after repeated 301/308)
    config_url: str = ""
    etag: str = ""
    last_modified: str = ""
    active: bool = True
    error_count: int = 0
    last_error: str = ""
    last_success_at: str = ""
    failing_since: str = ""
    next_poll_at: str = ""
    redirect_to: str = ""  # a permanent redirect seen, not yet trusted
    redirect_seen: int = 0
    title: str = ""
    url_changes: str = ""  # JSON list of {"from", "to", "at"}

    @property
    def health(self) -> str:
        """gone (410), failing, ok, or new (never polled): as `digest feeds` and /health say."""
        if not self.active:
            return "gone"
        return "failing" if self.error_count else "ok" if self.last_success_at else "new"


@dataclass
class PollResult:
    """One feed's outcome in one poll, as printed in the summary and kept in the poll log."""

    feed: str
    status: str  # ok | not-modified | skipped | error | gone
    new: int = 0
    seen: int = 0
    total: int = 0
    seconds: float = 0.0
    error: str = ""
    warning: str = ""
    http_status: int = 0
    next_poll_at: str = ""


@dataclass
class StoredEntry:
    """An entry as the store keeps it, with the feeds that carried it (`sources`). `analysis`
    is its cached token analysis (lexical.encode_analysis), '' until first ranked; `sentences`
    its abstract's (sentences.encode), '' until first shown."""

    id: str
    title: str
    link: str
    summary_text: str
    authors: list[str]
    categories: list[str]
    published: str  # ISO 8601 UTC
    fetched: str
    popularity: int
    sources: list[str]
    analysis: bytes | str = ""
    sentences: bytes | str = ""
    canonical: str = ""
    summary_html: str = ""
    version: int = 0
    revised: str = ""  # when a newer version was first seen (ISO), '' if never
    tldr: str = ""
    code: str = ""
    data: str = ""


@dataclass(frozen=True)
class ReaderState:
    """A reader's row in the `readers` table: what they or their mail server told us."""

    name: str
    unsubscribed_at: str = ""
    failing_since: str = ""  # a permanent (5xx) refusal of their address
    last_error: str = ""


@dataclass(frozen=True)
class PollLogRow:
    id: int
    feed: str
    started: str
    seconds: float
    status: str
    http_status: int
    new: int
    seen: int
    error: str
    warning: str


@dataclass(frozen=True)
class Highlight:
    """The sentence of an abstract shown for an item (highlight.py), and the character spans
    of the words in it that matched the reader."""

    text: str
    marks: tuple[tuple[int, int], ...] = ()

    def parts(self) -> list[tuple[str, bool]]:
        """The text as (piece, marked) runs, for a template to bold the marked ones."""
        out, at = [], 0
        for a, b in self.marks:
            if a > at:
                out.append((self.text[at:a], False))
            out.append((self.text[a:b], True))
            at = b
        if at < len(self.text):
            out.append((self.text[at:], False))
        return out


TLDR_SOURCE = "Hugging Face's AI summary"  # where an item's tldr comes from, said with it
# Digest sections besides a reader's own (Ranked.section): where items fitting none of theirs
# go, the pick from outside their profile, and new versions of papers they had.
MORE_FOR_YOU, SURPRISE, UPDATED = "More for you", "Something different", "Updated"


@dataclass
class Ranked:
    """One ranked entry for one reader: what digests, `digest rank` and the preview show."""

    id: str
    title: str
    link: str
    score: float
    reasons: list[str]
    sources: list[str]
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    summary_text: str = ""
    published: str = ""
    popularity: int = 0
    trending: bool = False
    section: str = ""  # the reader's section it went to; "" when they have none
    highlight: Highlight | None = None
    tldr: str = ""
    code: str = ""
    data: str = ""
    version: int = 0

    @classmethod
    def of(cls, e: StoredEntry, score: float, reasons: list[str], trending: bool = False,
           section: str = "", highlight: Highlight | None = None) -> Ranked:
        return cls(id=e.id, title=e.title, link=e.link, score=score, reasons=reasons,
                   sources=e.sources, authors=e.authors, categories=e.categories,
                   summary_text=e.summary_text, published=e.published,
                   popularity=e.popularity, trending=trending, section=section,
                   highlight=highlight, tldr=e.tldr, code=e.code, data=e.data,
                   version=e.version)

    def as_json(self) -> dict:
        return {"id": self.id, "title": self.title, "link": self.link, "score": self.score,
                "reasons": self.reasons, "sources": self.sources, "authors": self.authors,
                "categories": self.categories, "published": self.published,
                "popularity": self.popularity, "trending": self.trending,
                "section": self.section or None,
                "highlight": self.highlight.text if self.highlight else None,
                "tldr": {"text": self.tldr, "source": TLDR_SOURCE} if self.tldr else None,
                "code": self.code or None, "data": self.data or None}

    def saved(self) -> list:
        """How a digest keeps it (Digest.to_json): enough to show it again as it was."""
        extra = {"section": self.section} if self.section else {}
        if self.section == UPDATED:  # the version told of: never told twice (updates.py)
            extra["version"] = self.version
        if self.highlight:
            extra["highlight"] = [self.highlight.text, [list(m) for m in self.highlight.marks]]
        return [self.id, self.score, self.reasons, extra]


@dataclass
class FeedHealth:
    feeds: int
    new_entries: int  # in the reader's window, from their feeds
    failing: list[tuple[str, str]] = field(default_factory=list)  # (feed, failing since, ISO)
    notes: list[str] = field(default_factory=list)  # the sources' calendars (calendar.py)


@dataclass
class Digest:
    """What goes into one reader's digest for one local date (compose.py makes it)."""

    user: UserConfig
    day: date  # the reader's local date
    since: datetime | None
    until: datetime
    items: list[Ranked]  # in their sections' order when the reader has sections
    trending: list[Ranked]
    health: FeedHealth
    labels: dict[str, str] = field(default_factory=dict)  # feed → display name
    warnings: list[str] = field(default_factory=list)
    updated: list[Ranked] = field(default_factory=list)  # new versions of papers they had

    @property
    def news(self) -> int:
        """Items that make it worth sending: picked for the reader, or new versions."""
        return sum(r.section != SURPRISE for r in self.items) + len(self.updated)

    def to_json(self) -> str:
        """What was in it, by entry id: enough to show it again exactly (compose.recall)."""
        return json.dumps({
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
            "items": [r.saved() for r in self.items],
            "trending": [r.saved() for r in self.trending],
            "updated": [r.saved() for r in self.updated],
            "health": [self.health.feeds, self.health.new_entries, self.health.failing,
                       self.health.notes],
            "warnings": self.warnings}, ensure_ascii=False)


def iso_utc(dt: datetime) -> str:
    """How datetimes are stored: ISO 8601 in UTC, to the second, so strings sort as times."""
    return dt.astimezone(UTC).isoformat(timespec="seconds")
