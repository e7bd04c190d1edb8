"""A reader's digests as an Atom feed (RFC 4287): one entry per delivered digest, newest
first, each holding the digest's HTML as it was emailed, so a feed reader shows what the inbox
got. Built with ElementTree (the serializer escapes everything) from the ledger's record of
what each digest held; served at a signed per-reader URL with ETag and Last-Modified."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime

from digest.daily import render_digests
from digest.links import Links
from digest.normalize import strip_controls
from digest.render import Renderer
from digest.settings import Config, UserConfig
from digest.store import Store

ATOM = "http://www.w3.org/2005/Atom"
FEED_ENTRIES = 30
ET.register_namespace("", ATOM)


@dataclass
class Feed:
    body: bytes
    etag: str  # quoted, as the header carries it
    updated: datetime | None  # the newest digest's delivery time; None for an empty feed


def digest_feed(config: Config, store: Store, user: UserConfig, links: Links, now: datetime,
                renderer: Renderer | None = None) -> Feed:
    delivered = store.delivered(user.name, limit=FEED_ENTRIES)
    renderer = renderer or Renderer(config.digest.templates)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "title", f"{config.digest.title} for {user.display_name}")
    _text(feed, "id", f"{links.base}/feed/{user.name}.atom")
    _link(feed, links.feed(user.name), "self", "application/atom+xml")
    _link(feed, links.base + "/", "alternate", "text/html")
    newest = max((datetime.fromisoformat(at) for _, at in delivered), default=None)
    _text(feed, "updated", (newest or now).isoformat())
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", config.digest.title)
    for day, at in delivered:
        (done,) = render_digests(config, store, [user], date.fromisoformat(day), now, renderer,
                                 links=links)
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "title", done.view.subject)
        _text(entry, "id", f"{links.base}/digest/{user.name}/{day}")  # stable: no signature
        _text(entry, "updated", datetime.fromisoformat(at).isoformat())
        _text(entry, "published", datetime.fromisoformat(at).isoformat())
        _link(entry, links.view(user.name, day), "alternate", "text/html")
        _text(entry, "summary", done.view.preheader)
        _text(entry, "content", done.html).set("type", "html")
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return Feed(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', newest)


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM}}}{tag}")
    el.text = strip_controls(text)  # entries stored before ingest stripped them too
    return el


def _link(parent: ET.Element, href: str, rel: str, kind: str) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}link", href=href, rel=rel, type=kind)
