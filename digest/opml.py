"""OPML subscription lists → [feeds.NAME] tables, added to config.toml with its comments kept.

OPML comes from other programs and the web, so it is parsed with defusedxml (no entity
expansion, no external entities). Nested outlines (folders) are flattened; feeds already in the
config (same URL) are left out; names are made from titles and kept unique.
"""

from __future__ import annotations

import re
from pathlib import Path

import tomlkit
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from digest.errors import ConfigError


def read_opml(path: Path) -> list[tuple[str, str]]:
    """(title, xmlUrl) of every feed outline, in order."""
    try:
        root = ElementTree.parse(path).getroot()
    except OSError as e:
        raise ConfigError([f"cannot read {path} ({e.strerror}); check the file name."]) from None
    except ElementTree.ParseError as e:
        raise ConfigError([f"{path} is not valid OPML ({e}); export it again from your feed "
                           "reader."]) from None
    except LookupError as e:  # <?xml encoding="…"?> naming no codec Python has
        raise ConfigError([f"{path} is not valid OPML ({e}); export it again from your feed "
                           "reader, or fix the encoding its first line declares."]) from None
    except DefusedXmlException:
        raise ConfigError([f"{path} declares XML entities, which OPML never needs; export it "
                           "again from your feed reader."]) from None
    if root.tag.lower() != "opml" or root.find("body") is None:
        raise ConfigError([f"{path} is XML but not OPML (no <opml><body>); export the "
                           "subscription list as OPML."])
    feeds = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url:
            title = (outline.get("title") or outline.get("text") or "").strip()
            feeds.append((" ".join(title.split()), url))
    return feeds


def add_feeds(config_text: str, feeds: list[tuple[str, str]]) -> tuple[str, list[str], list[str]]:
    """Config text with the new feeds appended; (text, names added, URLs already present)."""
    doc = tomlkit.parse(config_text)
    section = doc.get("feeds")
    if section is None:
        section = tomlkit.table(is_super_table=True)
        doc["feeds"] = section
    known = {str(t.get("url", "")).rstrip("/") for t in section.values() if hasattr(t, "get")}
    added, skipped = [], []
    for title, url in feeds:
        if url.rstrip("/") in known:
            skipped.append(url)
            continue
        name = _unique(_slug(title or url), section)
        table = tomlkit.table()
        table["url"] = url
        if title:
            table["title"] = title
        table.add(tomlkit.nl())
        section[name] = table
        known.add(url.rstrip("/"))
        added.append(name)
    return tomlkit.dumps(doc), added, skipped


def _slug(text: str) -> str:
    text = re.sub(r"^https?://(www\.)?", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:40].rstrip("-") or "feed"


def _unique(name: str, existing) -> str:
    candidate, n = name, 2
    while candidate in existing:
        candidate, n = f"{name}-{n}", n + 1
    return candidate
