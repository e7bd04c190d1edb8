"""The digest as an email body: an MJML + Jinja2 template for HTML, a Jinja2 template for text.

MJML is compiled to HTML once per template version (MRML passes Jinja through where it is
placed inside mj-text and mj-raw), and per reader only Jinja renders the compiled HTML: the
same output as compiling per reader, several times faster (benchmarks/bench_render.py).
Autoescaping is on for every template; the text template turns it off explicitly, since
text/plain has no markup to inject into.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import css_inline
import jinja2
import jinja2.ext
from markupsafe import Markup, escape
from mjml import mjml2html

from digest.links import Links
from digest.models import MORE_FOR_YOU, SURPRISE, TLDR_SOURCE, UPDATED, Digest, Ranked
from digest.settings import Config

# The checkout's templates/ (source or editable install), else the copy inside a wheel.
BUILTIN_TEMPLATES = next(p for p in (Path(__file__).resolve().parent.parent / "templates",
                                     Path(__file__).resolve().parent / "templates")
                         if (p / "digest.mjml").is_file())
HTML_TEMPLATE, TEXT_TEMPLATE, STYLESHEET = "digest.mjml", "digest.txt", "digest.css"
SNIPPET_CHARS = 280
TITLE_CHARS = 300  # a feed can send a 5,000-character title; the link text stays readable
MAX_AUTHORS = 3
SUBJECT_CHARS = 78  # RFC 5322's line length; phones show about 40 of them
PREHEADER_CHARS = 140
EMAIL_BUDGET = 90_000  # bytes of HTML in an email; Gmail clips past about 102 KB
TEXT_WIDTH = 72  # the text part is wrapped here, URLs kept whole


@dataclass
class ItemView:
    number: int  # its place in its section, from 1
    title: str
    link: str  # "" when the feed gave none that is http(s)
    authors: str
    meta: str  # source badges (feed titles), categories, then the date: "arXiv · cs.LG · 2026-11-22"
    snippet: str  # the highlighted sentence (else the abstract's start), plain
    why: str  # the ranker's reasons, joined
    up: str
    down: str
    marked: tuple[tuple[str, bool], ...] = ()  # the snippet as (text, bold) runs, for HTML
    tldr: str = ""  # Hugging Face's AI summary, labelled as such by the templates
    links: tuple[tuple[str, str], ...] = ()  # ("code" | "data", URL): what the paper links to


@dataclass
class SectionView:
    title: str
    items: list[ItemView]


@dataclass
class DigestView:
    """Everything a template may show, already worded: templates only lay it out."""

    title: str
    reader: str
    date: str  # ISO local date
    day: str  # "Sunday, 22 November 2026"
    subject: str
    preheader: str
    sections: list[SectionView]  # the reader's sections (or "For you"), Updated, Trending
    health: str  # "7 feeds, 412 new entries; 1 feed failing since Tuesday: arxiv"
    view_url: str
    unsubscribe_url: str
    feed_url: str  # the reader's digests as an Atom feed
    why: str
    base_url: str
    warnings: list[str] = field(default_factory=list)
    more: int = 0  # items left out to keep the email under its size budget (fit_budget)
    reader_url: str = ""  # the reader's own page: their votes and mutes
    tldr_label: str = TLDR_SOURCE


def shorten_authors(authors: list[str], keep: int = MAX_AUTHORS) -> str:
    """'A, B, C' or 'A, B, C, … +5'."""
    if len(authors) <= keep + 1:
        return ", ".join(authors)
    return ", ".join(authors[:keep]) + f", … +{len(authors) - keep}"


def cut(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary, with an ellipsis if cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip(" ,.;:-") + "…"


@functools.lru_cache(maxsize=32768)  # a pool's titles, and each abstract's few sentences
def wrap(text: str, indent: str = "", first: str | None = None) -> str:
    """Text folded at TEXT_WIDTH with a hanging indent (`first` starts the first line). A word
    too long for a line is broken (a CJK title has no spaces), a URL never: it goes whole on a
    line of its own, so it stays clickable. Cached: readers share titles and abstracts."""
    prefix, text = indent if first is None else first, str(text)
    rest = text if "  " not in text and "\n" not in text else " ".join(text.split())
    if len(prefix) + len(rest) <= TEXT_WIDTH:
        return prefix + rest if rest else ""
    width = max(TEXT_WIDTH - max(len(prefix), len(indent)), 8)
    lines = [a or b or c for a, b, c in _lines(width).findall(rest)]
    return prefix + ("\n" + indent).join(lines)


@functools.lru_cache(maxsize=16384)  # readers with like profiles see the same marks
def bold(runs: tuple[tuple[str, bool], ...]) -> Markup:
    """(text, marked) runs as HTML, the marked ones in <b>: each piece escaped by Markup, so
    a feed's text cannot become markup. A filter rather than a template loop: a loop per item
    cost a third of the whole render (benchmarks/bench_render.py)."""
    html = "".join(f"<b>{escape(t)}</b>" if b else escape(t) for t, b in runs)
    return Markup(html)  # noqa: S704 - every piece of it was escaped just above


@functools.lru_cache(maxsize=16)
def _lines(width: int) -> re.Pattern:
    """One line of greedy word wrap, found by the regex engine rather than a Python loop:
    the most words that fit; else a whole URL; else `width` characters of a long word."""
    return re.compile(rf"(.{{1,{width}}})(?: +|$)|(https?://\S+|mailto:\S+) *|(\S{{{width}}}) *")


def digest_view(config: Config, digest: Digest, links: Links) -> DigestView:
    user = digest.user
    day = digest.day.isoformat()
    labels = digest.labels

    def item(number: int, r: Ranked) -> ItemView:
        h = r.highlight
        snippet = h.text if h else cut(r.summary_text, SNIPPET_CHARS)
        return ItemView(
            number=number, title=cut(r.title, TITLE_CHARS), link=r.link, authors=shorten_authors(r.authors),
            meta=" · ".join(sorted({labels.get(s, s) for s in r.sources}) + r.categories[:3]
                            + ([r.published[:10]] if r.published else [])),
            snippet=snippet, why="; ".join(r.reasons),
            up=links.feedback(user.name, r.id, "up"), down=links.feedback(user.name, r.id, "down"),
            marked=tuple(h.parts()) if h else ((snippet, False),) if snippet else (),
            tldr=cut(r.tldr, SNIPPET_CHARS),
            links=tuple((k, u) for k, u in (("code", r.code), ("data", r.data)) if u))

    order = [s.title for s in user.sections] + [MORE_FOR_YOU, "", SURPRISE]
    grouped: dict[str, list[Ranked]] = {}
    for r in sorted(digest.items, key=lambda r: order.index(r.section)
                    if r.section in order else len(order)):
        grouped.setdefault(r.section, []).append(r)
    parts = [(title or "For you", rs) for title, rs in grouped.items()] or [("For you", [])]
    parts += [(UPDATED, digest.updated), ("Trending", digest.trending)]
    sections = [SectionView(title, [item(n, r) for n, r in enumerate(rs, 1)])
                for k, (title, rs) in enumerate(parts) if rs or k == 0]
    h = digest.health
    health = (f"{h.feeds} feed{'s' * (h.feeds != 1)}, {h.new_entries} new "
              f"entr{'ies' if h.new_entries != 1 else 'y'}")
    if len(h.failing) == 1:
        name, since = h.failing[0]
        health += f"; 1 feed failing since {_when(since, digest.until)}: {name}"
    elif h.failing:
        health += f"; {len(h.failing)} feeds failing: " + ", ".join(
            f"{name} (since {_when(since, digest.until)})" for name, since in h.failing)
    health += "".join(f"; {note}" for note in h.notes)
    why = (f"You get this because {user.email or 'you'} {'is' if user.email else 'are'} a "
           f"reader named {user.name!r} in the digest configuration of this server.")
    titles = [i.title for s in sections for i in s.items]
    return DigestView(
        title=config.digest.title, reader=user.display_name, date=day,
        day=digest.day.strftime("%A, %d %B %Y"),
        subject=subject_line(titles), preheader=preheader_line(titles[1:], health),
        sections=sections, health=health, reader_url=links.reader(user.name),
        view_url=links.view(user.name, day), unsubscribe_url=links.unsubscribe(user.name),
        feed_url=links.feed(user.name),
        why=why, base_url=links.base, warnings=digest.warnings)


def subject_line(titles: list[str]) -> str:
    """What is new, in at most SUBJECT_CHARS: the top title, then "and N more". The title and
    date are not repeated: the inbox shows the sender's name and the date already."""
    if not titles:
        return "A quiet day: nothing above your threshold"
    tail = f" — and {len(titles) - 1} more" if len(titles) > 1 else ""
    return cut(titles[0], SUBJECT_CHARS - 1 - len(tail)) + tail


def preheader_line(next_titles: list[str], health: str) -> str:
    """The inbox's preview line: the titles after the one in the subject, else the health."""
    if next_titles:
        return cut(" · ".join(next_titles[:4]), PREHEADER_CHARS)
    return f"{health}."


def fit_budget(view: DigestView, render_html, budget: int) -> tuple[DigestView, str]:
    """The view and its HTML, with items dropped from the end until the HTML is at most
    `budget` bytes; a `more` count takes their place. Gmail clips a message past about
    102 KB and hides the rest behind a link, the footer and its unsubscribe link with it."""
    html = render_html(view)
    total = sum(len(s.items) for s in view.sections)
    if len(html.encode()) <= budget or not total:
        return view, html

    def keep(k: int) -> DigestView:
        sections, left = [], k
        for s in view.sections:
            if left > 0:
                sections.append(SectionView(s.title, s.items[:left]))
            left -= len(s.items)
        return dataclasses.replace(view, sections=sections, more=view.more + total - k)

    lo, hi, best = 0, total - 1, None  # the most items that fit, by bisection
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = keep(mid)
        out = render_html(candidate)
        if len(out.encode()) <= budget:
            lo, best = mid + 1, (candidate, out)
        else:
            hi = mid - 1
    return best or (keep(0), render_html(keep(0)))


def _when(iso: str, now: datetime) -> str:
    """'Tuesday' within the last week, else '3 Nov'."""
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return "recently"
    return t.strftime("%A") if (now - t).days < 6 else f"{t.day} {t.strftime('%b')}"


class _Compact(jinja2.ext.Extension):
    """Drops line breaks and indentation in the HTML templates (between tags and Jinja tags,
    or as one space inside text), so the template files stay readable while the output has no
    whitespace nodes for MRML to rewrite: that is what makes compiling once and compiling per
    reader produce the same bytes."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        if not name or name.endswith(".txt"):  # unnamed: compiled HTML, already compact
            return source
        return _BREAK.sub(lambda m: m.group(1) + m.group(2) if m.group(1) in ">}" or
                          m.group(2) in "<{" else m.group(1) + " " + m.group(2), source.strip())


_BREAK = re.compile(r"(.)[ \t]*\n\s*(.)")
_COMMENT = re.compile(r"\{#.*?#\}", re.S)


class Renderer:
    """Renders DigestViews. Templates come from `override` first (a folder named in the
    config), then the built-in ones; any file can be overridden on its own."""

    def __init__(self, override: Path | None = None):
        dirs = [str(override)] if override else []
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([*dirs, str(BUILTIN_TEMPLATES)]),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
            lstrip_blocks=True, auto_reload=True, keep_trailing_newline=True,
            extensions=[_Compact])
        self.env.filters["wrap"] = wrap
        self.env.filters["bold"] = bold
        self._compiled: jinja2.Template | None = None
        self._uptodate: list = []

    def compiled(self) -> jinja2.Template:
        """The MJML template compiled to HTML with digest.css inlined, as a Jinja template:
        compiled again only when one of its files changes."""
        if self._compiled is None or not all(check() for check in self._uptodate):
            self._uptodate = []
            html = _mjml(self._source(HTML_TEMPLATE))
            css = self._load(STYLESHEET)
            self._compiled = self.env.from_string(inline_css(html, css))
        return self._compiled

    def _load(self, name: str) -> str:
        source, _, uptodate = self.env.loader.get_source(self.env, name)
        self._uptodate.append(uptodate or (lambda: True))
        return source

    def _source(self, name: str) -> str:
        """What Jinja would hand MRML per reader, minus the values: the same preprocessing,
        Jinja comments (compile-time only) removed, and includes written out, so that the
        CSS is inlined into them too."""
        source = _COMMENT.sub("", self.env.preprocess(self._load(name), name))
        return _INCLUDE.sub(lambda m: self._source(m.group(1)), source)

    def html(self, view: DigestView) -> str:
        return self.compiled().render(v=view)

    def html_compiled_per_reader(self, view: DigestView) -> str:
        """The slow path, kept to check the fast one against: Jinja first, then MJML and
        the inliner."""
        html = _mjml(self.env.get_template(HTML_TEMPLATE).render(v=view))
        return inline_css(html, self.env.loader.get_source(self.env, STYLESHEET)[0])

    def text(self, view: DigestView) -> str:
        return self.env.get_template(TEXT_TEMPLATE).render(v=view)


def markup(html: str) -> list[tuple]:
    """The document as parse events, entities decoded: what must agree between the two paths,
    whose serializers may spell a character differently ("'" or "&#39;")."""
    events: list[tuple] = []

    class Events(HTMLParser):
        def handle_starttag(self, tag, attrs):
            events.append(("start", tag, sorted(attrs)))

        def handle_endtag(self, tag):
            events.append(("end", tag))

        def handle_data(self, data):
            events.append(("text", data))

        def handle_comment(self, data):
            events.append(("comment", data))

    Events(convert_charrefs=True).feed(html)
    return events


_INCLUDE = re.compile(r"""\{%-?\s*include\s+["']([^"']+)["']\s*-?%\}""")
_JINJA_TAG = re.compile(r"\{%.*?%\}", re.S)
_HIDDEN_TAG = re.compile(r"<!--jinja:(\d+)-->")


def inline_css(html: str, css: str) -> str:
    """The stylesheet written into each element's style attribute (css-inline). Jinja's
    {% %} tags ride through the HTML parser as comments: as text between table rows, the
    parser would move them out of the table. MJML's own reset <style> stays as it is."""
    tags: list[str] = []

    def hide(m: re.Match) -> str:
        tags.append(m.group(0))
        return f"<!--jinja:{len(tags) - 1}-->"

    inlined = css_inline.CSSInliner(inline_style_tags=False, keep_style_tags=True,
                                    load_remote_stylesheets=False, extra_css=css,
                                    minify_css=True).inline(_JINJA_TAG.sub(hide, html))
    return _HIDDEN_TAG.sub(lambda m: tags[int(m.group(1))], inlined)


def _mjml(source: str) -> str:
    # fonts={}: MJML would otherwise link Google Fonts for names it knows (Roboto, Ubuntu...);
    # the digest loads nothing remote.
    return mjml2html(source, disable_comments=True, fonts={})
