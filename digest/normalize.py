"""Normalization: identity, cross-feed canonical keys, URL cleaning and HTML sanitizing.

Pure functions on strings; parse.py calls them to turn raw feed items into `Entry` objects.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import nh3

from digest.artifacts import code_link, data_link
from digest.models import Entry

# Query parameters that only track the reader; a link that gains them is the same link.
TRACKING_PARAMS = {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "_hsenc",
                   "_hsmi", "mkt_tok", "ref_src", "ref_url", "spm", "yclid", "twclid", "si",
                   "cmpid", "campaign_id", "oly_anon_id", "oly_enc_id", "vero_id", "wt_mc"}
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "at_", "hsa_")

# arXiv identifiers: new style 2604.21952(v2), old style hep-th/9901001(v1), in abs/pdf URLs,
# OAI guids (oai:arXiv.org:2604.21952), DOIs (10.48550/arXiv.2604.21952) and HF paper links.
_ARXIV_NEW = r"(\d{4}\.\d{4,5})(?:v\d+)?"
_ARXIV_OLD = r"([a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?"
ARXIV_PATTERNS = [
    re.compile(r"arxiv\.org/(?:abs|pdf|html|format)/" + _ARXIV_NEW, re.I),
    re.compile(r"arxiv\.org/(?:abs|pdf|html|format)/" + _ARXIV_OLD, re.I),
    re.compile(r"oai:arxiv\.org:" + _ARXIV_NEW, re.I),
    re.compile(r"oai:arxiv\.org:" + _ARXIV_OLD, re.I),
    re.compile(r"10\.48550/arxiv\." + _ARXIV_NEW, re.I),
    re.compile(r"10\.48550/arxiv\." + _ARXIV_OLD, re.I),
    re.compile(r"huggingface\.co/papers/" + _ARXIV_NEW, re.I),
    re.compile(r"^arxiv:" + _ARXIV_NEW + "$", re.I),
    re.compile(r"^arxiv:" + _ARXIV_OLD + "$", re.I),  # a library's pre-2007 eprint
]

# DOIs in a link (doi.org/…, publisher /doi/… paths), a "doi:" guid, or bare. arXiv's own DOIs
# (10.48550/arXiv.…) are the arXiv key instead.
DOI_RE = re.compile(r"(?:^|doi\.org/|^doi:|/doi/(?:abs/|full/|pdf/|epdf/)?)(10\.\d{4,9}/[^\s\"<>#?]+)", re.I)

# Titles shorter than this are too generic ("Weekly update") to join items across feeds.
MIN_TITLE_KEY_WORDS = 5

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dl", "dt",
    "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
    "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}, "abbr": {"title"},
    "q": {"cite"}, "blockquote": {"cite"},
}
# nh3 drops the *contents* of these too, not just the tags.
DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "form", "textarea", "select",
                     "button", "noscript", "template", "svg", "math", "head", "title"}
_TAG_NAMES = "|".join(sorted(ALLOWED_TAGS | {"div", "article", "section", "font", "center"}))
HTML_TAG_RE = re.compile(rf"</?(?:{_TAG_NAMES})(?:\s[^>]*)?/?>|&(?:#\d+|#x[0-9a-f]+|[a-z]+\d*);",
                         re.I)
IMG_RE = re.compile(r"<img\b[^>]*>", re.I)
_BLOCK_END_RE = re.compile(r"<(?:br\s*/?|/p|/div|/li|/h[1-6]|/tr|/blockquote|/pre)>", re.I)
_WS_RE = re.compile(r"[ \t\r\f\v]+")
_WORD_RE = re.compile(r"\w+")
_TAG_RE = re.compile(r"<[^>]*>")


def clean_link(url: str) -> str:
    """The link as shown to readers: tracking parameters and fragment removed."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https"):
        return ""
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not _is_tracking(k)]
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/",
                       urlencode(query), ""))


def identity_url(url: str) -> str:
    """A URL reduced to what identifies the resource: http/https, www., trailing slash,
    parameter order and tracking parameters do not matter; the fragment does."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.netloc:
        return url  # a non-URL guid such as "tag:example.org,2026:42" is its own identity
    host = parts.netloc.lower().removeprefix("www.")
    host = re.sub(r":(80|443)$", "", host)
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                   if not _is_tracking(k))
    path = parts.path.rstrip("/") or ""
    # The fragment stays: feeds tell items apart by it (Scripting News: ".../09/29#When:...").
    return (f"//{host}{path}" + (f"?{urlencode(query)}" if query else "")
            + (f"#{parts.fragment}" if parts.fragment else ""))


def _is_tracking(key: str) -> bool:
    k = key.lower()
    return k in TRACKING_PARAMS or k.startswith(TRACKING_PREFIXES)


def arxiv_id(*candidates: str) -> str:
    """The version-less arXiv id found in any of the candidate strings, or ''."""
    for text in candidates:
        if not text:
            continue
        for pattern in ARXIV_PATTERNS:
            m = pattern.search(text)
            if m:
                return m.group(1)
    return ""


_VERSION_RE = re.compile(r"(?:\d{4}\.\d{4,5}|[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7})v(\d+)\b", re.I)


def arxiv_version(*candidates: str) -> int:
    """The arXiv version (the N of vN) in an id, guid or link, or 0 when none is written."""
    for text in candidates:
        m = _VERSION_RE.search(text or "") if text and "v" in text else None
        if m and "arxiv" in text.lower():
            return int(m.group(1))
    return 0


def doi(*candidates: str) -> str:
    """The lower-cased DOI found in any candidate, or '' (arXiv DOIs excluded)."""
    for text in candidates:
        m = DOI_RE.search((text or "").strip())
        if m and not m.group(1).lower().startswith("10.48550/"):
            return m.group(1).rstrip(".,;)").lower()
    return ""


def paper_keys(*candidates: str) -> tuple[str, ...]:
    """The strong keys ("arxiv:ID", "doi:…") of the paper the candidate strings name (links,
    DOIs, ids such as "arXiv:2411.01234v2"), as make_entry keys entries: how a library paper
    is found among the entries whatever its title there."""
    return strong_keys(arxiv_id(*candidates), doi(*candidates))


def strong_keys(aid: str, doi_key: str) -> tuple[str, ...]:
    """The keys an arXiv id and a DOI make ('' for none): what joins a paper for certain."""
    return tuple(k for k in ("arxiv:" + aid if aid else "", "doi:" + doi_key if doi_key else "")
                 if k)


class EmptyEntry(ValueError):
    """An item with no title, no link and no text: nothing a reader could be shown (arXiv's
    legacy API answers a missing id with such a placeholder). Parsers drop and count it."""


def title_key(title: str) -> str:
    """Case, accents, punctuation and spacing removed, for joining the same title across feeds."""
    t = (title or "").casefold()
    if not t.isascii():  # the accent-stripping pass is slow; most titles do not need it
        t = "".join(c for c in unicodedata.normalize("NFKD", t) if not unicodedata.combining(c))
    return " ".join(_WORD_RE.findall(t))


def content_hash(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()


def looks_like_html(text: str) -> bool:
    """True when text contains real HTML markup. RSS descriptions are often plain text with
    literal '<' in them (arXiv abstracts mention <EOS>); those must stay visible."""
    if not text or ("<" not in text and "&" not in text):
        return False
    return bool(HTML_TAG_RE.search(text))


def sanitize_html(fragment: str, base: str = "") -> str:
    """Untrusted feed HTML → safe HTML: no scripts, styles, event handlers, forms, frames,
    javascript:/data: URLs, and no 1×1 tracking images. Relative links are made absolute
    against `base`, since the HTML will be shown far from its site."""
    if not fragment:
        return ""

    def absolute(element: str, attribute: str, value: str) -> str | None:
        if attribute in ("href", "src", "cite") and base:
            try:
                return urljoin(base, value.strip())
            except ValueError:  # "https://a[b": no URL. None drops it; raising here would
                return None     # drop it too, but print a traceback from inside nh3.
        return value

    cleaned = nh3.clean(
        fragment,
        tags=ALLOWED_TAGS,
        clean_content_tags=DROP_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        attribute_filter=absolute,
    )
    # nh3 writes a character reference as its character: "&#1;" comes out as a raw control.
    return strip_controls(IMG_RE.sub(_drop_tracking_image, cleaned)).strip()


def _drop_tracking_image(m: re.Match) -> str:
    tag = m.group(0)
    w = re.search(r'\bwidth="\s*(\d+)', tag)
    h = re.search(r'\bheight="\s*(\d+)', tag)
    if (w and int(w.group(1)) <= 1) or (h and int(h.group(1)) <= 1):
        return ""
    if 'src="' not in tag:
        return ""  # its only URL was unsafe and removed
    return tag


def html_to_text(fragment: str) -> str:
    """Readable plain text of HTML, paragraphs kept as newlines. The input must be sanitized
    HTML (nh3 output), so a plain tag-stripping pass is enough; no script bodies remain."""
    if not fragment:
        return ""
    text = html.unescape(_TAG_RE.sub("", _BLOCK_END_RE.sub("\n", fragment)))
    return tidy_text(text)


def tidy_text(text: str) -> str:
    """Runs of spaces collapsed, blank lines dropped, paragraphs kept as single newlines; no
    control characters (an unescaped "&#1;" gives one)."""
    lines = (" ".join(line.split()) for line in strip_controls(text).splitlines())
    return "\n".join(line for line in lines if line)


# What no XML document may hold (the C0 controls but tab and newlines, a terminal's escape among
# them; lone surrogates; U+FFFE and U+FFFF), plus DEL: a feed's title carrying one made the
# reader's Atom feed invalid XML, which a feed reader refuses whole.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def strip_controls(text: str) -> str:
    """`text` with the characters _CONTROL_RE names turned into spaces."""
    return _CONTROL_RE.sub(" ", text) if text else text


def text_to_html(text: str) -> str:
    """Tidied plain text → escaped HTML paragraphs, one per line."""
    return "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines())


def split_authors(names: list[str]) -> list[str]:
    """Authors as a clean list. One 'A B, C D, E F' string (arXiv RSS dc:creator) is split;
    'Smith, John' is kept whole."""
    out: list[str] = []
    for raw in names:
        raw = " ".join((raw or "").split())
        if not raw:
            continue
        if ";" in raw:  # "Last, First; Last, First"
            out.extend(p.strip() for p in raw.split(";") if p.strip())
            continue
        pieces = [p.strip() for p in re.split(r",|\band\b", raw) if p.strip()]
        if len(pieces) > 1 and all(len(p.split()) >= 2 for p in pieces):
            out.extend(pieces)
        else:
            out.append(raw)
    seen: set[str] = set()
    return [a for a in out if not (a in seen or seen.add(a))]


def make_entry(*, guid: str, link: str, title: str, summary: str, summary_is_html: bool,
               authors: list[str], categories: list[str], published: datetime | None,
               fetched: datetime, popularity: int = 0, extra_ids: tuple[str, ...] = (),
               tldr: str = "", code: str = "", comment: str = "") -> Entry:
    """Build a normalized Entry from one raw item. `extra_ids` are more places an arXiv id may
    hide (a DOI, an HF paper id); `comment` is arXiv's comment line, where code links live."""
    # The summary's controls go in sanitize_html or tidy_text, which see its references too.
    title, tldr, comment = (strip_controls(x or "") for x in (title, tldr, comment))
    authors = [strip_controls(a or "") for a in authors]
    categories = [strip_controls(c or "") for c in categories]
    title = " ".join((html_to_text(sanitize_html(title)) if looks_like_html(title)
                      else title or "").split())
    link = clean_link(link) or clean_link(guid)
    if summary_is_html and looks_like_html(summary):
        summary_html = sanitize_html(summary, base=link)
        summary_text = html_to_text(summary_html)
    else:  # plain text: no sanitizer needed, only escaping
        summary_text = tidy_text(html.unescape(summary or "") if "&" in (summary or "") else
                                 summary or "")
        summary_html = text_to_html(summary_text)

    if guid:
        ident = "guid:" + identity_url(guid)
        # Some feeds reuse one guid for every item; the link then tells them apart.
        if link and identity_url(link) != identity_url(guid):
            ident += " link:" + identity_url(link)
    elif link:
        ident = "link:" + identity_url(link)
    else:
        ident = "hash:" + content_hash(title, summary_text)

    if not (title or link or summary_text):
        raise EmptyEntry("the item has no title, link or text")

    # Every key the item has, strongest first: a copy of the paper on another site may carry
    # only one of them (a daily-papers RSS on its own host has the title, not the arXiv id).
    aid = arxiv_id(link, guid, *extra_ids)
    doi_key = doi(guid, link, *extra_ids)
    tkey = title_key(title)
    # shorter titles ("Weekly update") are too generic to join on
    keys = strong_keys(aid, doi_key) + (
        ("title:" + tkey,) if len(tkey.split()) >= MIN_TITLE_KEY_WORDS else ())

    # Dates in UTC; a missing or future date becomes the fetch time, so a wrong clock in a
    # feed cannot pin an item to the top or make an old item look new.
    when = published.astimezone(UTC) if published else fetched
    if when > fetched + timedelta(days=1):
        when = fetched
    return Entry(ident=ident, keys=keys, title=title or "(untitled)", link=link,
                 summary_html=summary_html, summary_text=summary_text,
                 authors=split_authors(authors), categories=_unique(categories),
                 published=when, popularity=max(0, int(popularity or 0)),
                 version=arxiv_version(guid, link) if aid else 0,
                 tldr=" ".join((tldr or "").split()),
                 code=clean_link(code) or code_link(comment, summary_text),
                 data=data_link(comment, summary_text))


def _unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for x in items:
        x = " ".join((x or "").split())
        if x and x not in seen:
            seen.add(x)
            out.append(x)
    return out
