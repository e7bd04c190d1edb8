"""The digest as an email body: an MJML + Jinja2 template for HTML, a Jinja2 template for text.

MJML is compiled to HTML once per template version (MRML passes Jinja through where it is
placed inside mj-text and mj-raw), and per reader only Jinja renders the compiled HTML: the
same output as compiling per reader, several times faster (benchmarks/bench_render.py).
Autoescaping is on for every template; the text template turns it off explicitly, since
text/plain has no markup to inject into.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import jinja2
import jinja2.ext
from mjml import mjml2html

from digest.compose import Digest, compose
from digest.config import Config, UserConfig
from digest.links import Links, load_secret
from digest.models import Ranked
from digest.store import Store

# The checkout's templates/ (source or editable install), else the copy inside a wheel.
BUILTIN_TEMPLATES = next(p for p in (Path(__file__).resolve().parent.parent / "templates",
                                     Path(__file__).resolve().parent / "templates")
                         if (p / "digest.mjml").is_file())
HTML_TEMPLATE, TEXT_TEMPLATE = "digest.mjml", "digest.txt"
SNIPPET_CHARS = 280
TITLE_CHARS = 300  # a feed can send a 5,000-character title; the link text stays readable
MAX_AUTHORS = 3


@dataclass
class ItemView:
    number: int  # its place in its section, from 1
    title: str
    link: str  # "" when the feed gave none that is http(s)
    authors: str
    tags: list[str]  # source badges (feed titles), categories, then the date
    snippet: str
    why: str  # the ranker's reasons, joined
    up: str
    down: str


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
    sections: list[SectionView]  # "For you", then "Trending" when there is any
    health: str  # "7 feeds, 412 new entries; 1 feed failing since Tuesday: arxiv"
    view_url: str
    unsubscribe_url: str
    why: str
    base_url: str
    warnings: list[str] = field(default_factory=list)


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


def digest_view(config: Config, digest: Digest, links: Links) -> DigestView:
    user = digest.user
    day = digest.day.isoformat()
    labels = digest.labels

    def item(number: int, r: Ranked) -> ItemView:
        return ItemView(
            number=number, title=cut(r.title, TITLE_CHARS), link=r.link, authors=shorten_authors(r.authors),
            tags=sorted({labels.get(s, s) for s in r.sources}) + r.categories[:3]
            + ([r.published[:10]] if r.published else []),
            snippet=cut(r.summary_text, SNIPPET_CHARS), why="; ".join(r.reasons),
            up=links.feedback(user.name, r.id, "up"), down=links.feedback(user.name, r.id, "down"))

    items = [item(n, r) for n, r in enumerate(digest.items, 1)]
    trending = [item(n, r) for n, r in enumerate(digest.trending, 1)]
    h = digest.health
    health = (f"{h.feeds} feed{'s' * (h.feeds != 1)}, {h.new_entries} new "
              f"entr{'ies' if h.new_entries != 1 else 'y'}")
    if len(h.failing) == 1:
        name, since = h.failing[0]
        health += f"; 1 feed failing since {_when(since, digest.until)}: {name}"
    elif h.failing:
        health += f"; {len(h.failing)} feeds failing: " + ", ".join(
            f"{name} (since {_when(since, digest.until)})" for name, since in h.failing)
    title = config.digest.title
    top = items[0].title if items else "nothing above your threshold today"
    subject = " ".join(f"{title} {day}: {cut(top, 120)}".split())
    n = len(items)
    preheader = (f"{n} item{'s' * (n != 1)} for you" + (f", led by {cut(items[0].title, 80)}"
                                                        if items else "") + f". {health}.")
    why = (f"You get this because {user.email} is a reader named {user.name!r} in the digest "
           f"configuration of this server.")
    return DigestView(
        title=title, reader=user.display_name, date=day, day=digest.day.strftime("%A, %d %B %Y"),
        subject=subject, preheader=preheader,
        sections=[SectionView("For you", items)]
        + ([SectionView("Trending", trending)] if trending else []),
        health=health,
        view_url=links.view(user.name, day), unsubscribe_url=links.unsubscribe(user.name),
        why=why, base_url=links.base, warnings=digest.warnings)


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
        self._compiled: tuple[jinja2.Template, jinja2.Template] | None = None

    def compiled(self) -> jinja2.Template:
        """The MJML template compiled to HTML, as a Jinja template: compiled again only when
        the template file changes (Jinja's loader notices, by modification time)."""
        mjml_template = self.env.get_template(HTML_TEMPLATE)
        if self._compiled is None or self._compiled[0] is not mjml_template:
            source, _, _ = self.env.loader.get_source(self.env, HTML_TEMPLATE)
            # MRML gets what Jinja would hand it per reader, minus the values: the same
            # preprocessing, and Jinja comments (compile-time only) removed.
            mjml_source = _COMMENT.sub("", self.env.preprocess(source, HTML_TEMPLATE))
            self._compiled = (mjml_template, self.env.from_string(_mjml(mjml_source)))
        return self._compiled[1]

    def html(self, view: DigestView) -> str:
        return self.compiled().render(v=view)

    def html_compiled_per_reader(self, view: DigestView) -> str:
        """The slow path, kept to check the fast one against: Jinja first, then MJML."""
        return _mjml(self.env.get_template(HTML_TEMPLATE).render(v=view))

    def text(self, view: DigestView) -> str:
        return self.env.get_template(TEXT_TEMPLATE).render(v=view)


def _mjml(source: str) -> str:
    # fonts={}: MJML would otherwise link Google Fonts for names it knows (Roboto, Ubuntu...);
    # the digest loads nothing remote.
    return mjml2html(source, disable_comments=True, fonts={})


@dataclass
class Rendered:
    digest: Digest
    view: DigestView
    html: str
    text: str


def render_digests(config: Config, store: Store, users: list[UserConfig], day: str | None,
                   now: datetime, renderer: Renderer | None = None,
                   last_sent: dict[str, datetime] | None = None) -> Iterator[Rendered]:
    """Compose, then render, each reader's digest: what `render`, the preview and delivery
    all show."""
    renderer = renderer or Renderer(config.digest.templates)
    links = Links(config.digest.base_url, load_secret(config.digest.database),
                  config.web.link_days)
    for d in compose(config, store, users, day, now, last_sent):
        view = digest_view(config, d, links)
        yield Rendered(d, view, renderer.html(view), renderer.text(view))
