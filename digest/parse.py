"""Feed bytes → normalized entries. feedparser for RSS/Atom; adapters for JSON sources.

Never given a URL: feedparser would fetch it (or open a local path named by the body), so it
always receives the bytes as a stream, plus the response headers for the charset.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from datetime import UTC, datetime
from urllib.parse import urljoin

import feedparser

from digest.errors import ParseError
from digest.models import Entry, ParsedFeed
from digest.normalize import EmptyEntry, make_entry

# A DOCTYPE with an internal subset can declare entities: billion-laughs expansion or external
# files. No real feed needs one, so it is cut before any XML parser sees it.
DOCTYPE_RE = re.compile(rb"<!DOCTYPE[^\[>]*\[.*?\]\s*>", re.S | re.I)
# A numeric character reference: feedparser's lenient parser (what reads broken XML) crashes
# on one to a surrogate, and XML allows neither those nor NUL and most C0 controls.
CHARREF_RE = re.compile(rb"&#([xX][0-9a-fA-F]+|[0-9]+);")
# The encoding an XML declaration names: dropped when its body is read again as UTF-8.
XML_ENCODING_RE = re.compile(rb"^(\s*<\?xml[^>]*?)\s+encoding\s*=\s*[\"'][^\"']*[\"']", re.I)
# arXiv's RSS prefixes each abstract with "arXiv:ID Announce Type: new Abstract:".
ARXIV_PREFIX_RE = re.compile(r"^\s*arXiv:\S+\s+Announce Type:\s*[\w-]+\s*(?:Abstract:\s*)?", re.I)
HTML_TYPES = ("text/html", "application/xhtml+xml")
HF_PAPER_URL = "https://huggingface.co/papers/{}"
# feedparser flags these, but the entries are complete: a charset fixed up from the HTTP header,
# or a feed served with a non-XML Content-Type (common for static files).
HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


def parse_feed(body: bytes, headers: dict[str, str], kind: str, fetched: datetime,
               url: str = "") -> ParsedFeed:
    """Parse one feed body. Raises ParseError when it holds no feed at all."""
    if kind == "auto":
        kind = _sniff(body, headers)
    if kind == "hf-daily-papers":
        return _parse_hf(_json(body, "Hugging Face daily papers"), fetched)
    if kind == "json-feed":
        return _parse_json_feed(_json(body, "JSON Feed"), fetched)
    return _parse_xml(body, headers, fetched, url)


def _sniff(body: bytes, headers: dict[str, str]) -> str:
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    ctype = headers.get("content-type", "").lower()
    if head[:1] in (b"{", b"[") or "json" in ctype:
        try:
            data = json.loads(body)
        except ValueError:
            return "feed"
        if isinstance(data, list) and data and isinstance(data[0], dict) and "paper" in data[0]:
            return "hf-daily-papers"
        return "json-feed"
    return "feed"


def _json(body: bytes, what: str):
    try:
        return json.loads(body)
    except UnicodeDecodeError:  # before ValueError, its base, which has .msg and .lineno
        raise ParseError(f"the body is not UTF-8 text, so it is no {what}; check the feed "
                         "URL.") from None
    except ValueError as e:
        raise ParseError(f"the body is not valid JSON ({e.msg} at line {e.lineno}), so it is no "
                         f"{what}; check the feed URL.") from None


def _parse_xml(body: bytes, headers: dict[str, str], fetched: datetime, url: str) -> ParsedFeed:
    stripped = DOCTYPE_RE.sub(b"", body, count=1)
    doctype = stripped is not body
    if b"&#" in stripped:
        stripped = CHARREF_RE.sub(_valid_charref, stripped)
    # No content-location: with it feedparser urljoins every element (30% slower); relative
    # entry links are resolved against the feed URL in make_entry instead.
    response_headers = {k.lower(): v for k, v in headers.items() if k.lower() != "content-location"}
    reread = False
    try:
        d = _feedparser(stripped, response_headers)
    except Exception:  # noqa: BLE001 - feedparser's own bugs, on broken encodings or markup
        # Its encoding sniffing fails on a garbled declaration or a NUL: read it again as UTF-8.
        text = stripped.decode("utf-8", "replace").replace("\0", "").encode()
        try:
            d = _feedparser(XML_ENCODING_RE.sub(rb"\1", text, count=1),
                            {**response_headers, "content-type": "application/xml; charset=utf-8"})
        except Exception as e:  # noqa: BLE001 - markup its lenient parser cannot walk
            raise ParseError(f"the feed's XML is broken beyond what the parser can read "
                             f"({type(e).__name__}: {str(e)[:120]}); check the feed at "
                             "https://validator.w3.org/feed/ and tell its publisher.") from None
        reread = True
    entries: list[Entry] = []
    skipped = empty = 0
    written: dict[str, str] = {}
    for e in d.entries:
        try:
            entries.append(_apart(_from_feedparser(e, fetched, url), e.get("id") or e.get("link", ""),
                                  written))
        except EmptyEntry:
            empty += 1
        except (TypeError, ValueError, AttributeError, KeyError):
            skipped += 1
    if not d.get("version") and not entries:
        reason = _bozo_reason(d)
        raise ParseError(f"the body is not an RSS, Atom or JSON feed ({reason}); check that the "
                         "URL points at the feed, not a web page.")
    warning = ""
    if d.get("bozo") and not isinstance(d.get("bozo_exception"), HARMLESS):
        warning = f"malformed feed ({_bozo_reason(d)}); kept the {len(entries)} entries that parsed"
    if doctype:
        warning = (warning + "; " if warning else "") + "removed a DOCTYPE with entity declarations"
    if reread:
        warning = (warning + "; " if warning else "") + ("read as UTF-8: the parser failed on "
                                                         "its declared encoding")
    if skipped:
        warning = (warning + "; " if warning else "") + f"skipped {skipped} unreadable entries"
    warning = _add_empty(warning, empty)
    if not entries and not warning:
        warning = "the feed is valid but has no entries"
    title = " ".join((d.feed.get("title") or "").split())
    return ParsedFeed(entries=entries, title=title, warning=warning)


def _feedparser(body: bytes, headers: dict[str, str]):
    # nh3 sanitizes and resolves links (faster and stricter); feedparser's own passes would
    # also lowercase or drop literal text like "<EOS>" in plain-text abstracts.
    return feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=False,
                            resolve_relative_uris=False)


def _valid_charref(m: re.Match) -> bytes:
    """A character reference as written, or U+FFFD's for a character XML cannot hold."""
    digits = m.group(1)
    if len(digits) > 9:
        return b"&#xFFFD;"
    c = int(digits[1:], 16) if digits[:1] in b"xX" else int(digits)
    ok = (c in (0x9, 0xA, 0xD) or 0x20 <= c <= 0xD7FF or 0xE000 <= c <= 0xFFFD
          or 0x10000 <= c <= 0x10FFFF)
    return m.group() if ok else b"&#xFFFD;"


def _apart(entry: Entry, raw_id: str, written: dict[str, str]) -> Entry:
    """Two items of one feed whose ids normalize alike (http and https, tracking parameters)
    but are written differently stay two items: the feed itself tells them apart. Across
    polls the normalized identity holds, so a feed moving to https repeats nothing."""
    first = written.setdefault(entry.ident, raw_id)
    if raw_id and first != raw_id:
        return dataclasses.replace(entry, ident=f"{entry.ident} as:{raw_id}")
    return entry


def _add_empty(warning: str, empty: int) -> str:
    if not empty:
        return warning
    return ((warning + "; ") if warning else "") + (
        f"dropped {empty} empty entr{'ies' if empty != 1 else 'y'} (no title, link or text)")


def _bozo_reason(d) -> str:
    exc = d.get("bozo_exception")
    if exc is None or isinstance(exc, HARMLESS):
        return "no RSS or Atom elements found"
    text = str(exc).strip() or type(exc).__name__
    return text[:160]


def _from_feedparser(e, fetched: datetime, base: str) -> Entry:
    summary, is_html = "", True
    detail = e.get("summary_detail")
    if e.get("summary"):
        summary = e.summary
        is_html = (detail or {}).get("type", "text/html") in HTML_TYPES
    elif e.get("content"):
        summary = e.content[0].get("value", "")
        is_html = e.content[0].get("type", "text/html") in HTML_TYPES
    if summary.startswith(("arXiv:", " arXiv:", "\narXiv:")):
        summary = ARXIV_PREFIX_RE.sub("", summary, count=1)
    authors = [a.get("name", "") for a in e.get("authors", []) if isinstance(a, dict)]
    if not any(authors) and e.get("author"):
        authors = [e.author]
    # dict.get: feedparser's own get maps a missing updated_parsed to published_parsed, warning.
    when = dict.get(e, "published_parsed") or dict.get(e, "updated_parsed")
    published = datetime(*when[:6], tzinfo=UTC) if when else None
    tags = [t.get("term") or t.get("label") or "" for t in e.get("tags", [])]
    link = e.get("link", "")
    if link and base and not link.startswith(("http://", "https://")):
        link = urljoin(base, link)
    return make_entry(guid=e.get("id", ""), link=link, title=e.get("title", ""),
                      summary=summary, summary_is_html=is_html, authors=authors, categories=tags,
                      published=published, fetched=fetched,
                      extra_ids=(e.get("arxiv_doi", ""), e.get("dc_identifier", "")),
                      comment=str(e.get("arxiv_comment") or ""))


def _parse_hf(data, fetched: datetime) -> ParsedFeed:
    """The Hugging Face daily papers API: a JSON list of {paper: {...}, ...}. Upvotes become
    popularity; the arXiv id joins the item with the same paper from arXiv feeds."""
    if not isinstance(data, list):
        raise ParseError("the JSON is not a list of daily papers; check that the URL is "
                         "https://huggingface.co/api/daily_papers.")
    entries, skipped = [], 0
    for item in data:
        paper = item.get("paper") if isinstance(item, dict) else None
        if not isinstance(paper, dict) or not paper.get("id") or not (
                paper.get("title") or item.get("title")):
            skipped += 1
            continue
        pid = str(paper["id"])
        authors = [a.get("name", "") for a in paper.get("authors") or []
                   if isinstance(a, dict) and not a.get("hidden")]
        try:
            upvotes = int(paper.get("upvotes") or 0)
        except (TypeError, ValueError):
            upvotes = 0
        entries.append(make_entry(
            guid=HF_PAPER_URL.format(pid), link=HF_PAPER_URL.format(pid),
            title=str(paper.get("title") or item.get("title")),
            summary=str(paper.get("summary") or item.get("summary") or ""),
            summary_is_html=False, authors=authors, categories=[],
            published=_iso(paper.get("publishedAt") or item.get("publishedAt")),
            fetched=fetched, popularity=upvotes, extra_ids=(f"arxiv:{pid}",),
            tldr=_text(paper.get("ai_summary")), code=_text(paper.get("githubRepo"))))
    if not entries:
        raise ParseError("the daily papers list has no readable papers; check the URL.")
    warning = f"skipped {skipped} items without an id or title" if skipped else ""
    return ParsedFeed(entries=entries, title="Hugging Face daily papers", warning=warning)


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _parse_json_feed(data, fetched: datetime) -> ParsedFeed:
    """JSON Feed 1.0/1.1 (jsonfeed.org), which feedparser does not read."""
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ParseError("the JSON has no 'items' list, so it is no JSON Feed; check the URL.")
    entries, skipped, empty = [], 0, 0
    written: dict[str, str] = {}
    for item in data["items"]:
        if not isinstance(item, dict):
            skipped += 1
            continue
        authors = [a.get("name", "") for a in item.get("authors") or [] if isinstance(a, dict)]
        if not authors and isinstance(item.get("author"), dict):
            authors = [item["author"].get("name", "")]
        # The summary is short and plain text by spec; fall back to the full content.
        is_html = not item.get("summary") and bool(item.get("content_html"))
        body = item.get("summary") or item.get("content_html") or item.get("content_text") or ""
        try:
            entries.append(_apart(make_entry(
                guid=str(item.get("id") or ""), link=str(item.get("url") or ""),
                title=str(item.get("title") or ""),
                summary=str(body), summary_is_html=is_html,
                authors=[str(a) for a in authors], categories=[str(t) for t in item.get("tags") or []],
                published=_iso(item.get("date_published") or item.get("date_modified")),
                fetched=fetched), str(item.get("id") or item.get("url") or ""), written))
        except EmptyEntry:
            empty += 1
    if not entries and skipped:
        raise ParseError("the JSON Feed has no readable items; check the feed.")
    warning = _add_empty(f"skipped {skipped} unreadable items" if skipped else "", empty)
    return ParsedFeed(entries=entries, title=str(data.get("title") or ""), warning=warning)


def _iso(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
