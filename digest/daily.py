"""The daily pipeline, its stages called in turn: compose (what goes in: compose.py) →
render (how it looks: render.py, a pure view) → message (the email: message.py) → deliver
(send.py, under the ledger's rules). `digest render`, the preview, the Atom feed, chat
channels and `digest send` all take their digests from `render_digests`, so each shows what
the others show."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

from digest.compose import compose
from digest.links import Links
from digest.models import Digest
from digest.render import DigestView, Renderer, digest_view, fit_budget
from digest.settings import Config, UserConfig
from digest.store import Store


@dataclass
class Rendered:
    digest: Digest
    view: DigestView
    html: str
    text: str


def render_digests(config: Config, store: Store, users: list[UserConfig], day: date | None,
                   now: datetime, renderer: Renderer | None = None,
                   last_sent: dict[str, datetime] | None = None,
                   budget: int | None = None, links: Links | None = None) -> Iterator[Rendered]:
    """Compose, then render, each reader's digest of local date `day` (None: their today).
    With a `budget` (an email's), items past it become one "N more" line."""
    renderer = renderer or Renderer(config.digest.templates)
    links = links or Links.of(config)
    for d in compose(config, store, users, day, now, last_sent):
        view = digest_view(config, d, links)
        if budget is None:
            html = renderer.html(view)
        else:
            view, html = fit_budget(view, renderer.html, budget)
        yield Rendered(d, view, html, renderer.text(view))
