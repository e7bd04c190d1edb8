"""`digest demo`: a self-contained, offline run in a folder of its own.

It writes sample feeds in the real formats (RSS 2.0, Atom, arXiv-style RSS, Hugging Face daily
papers JSON), dated relative to today so the demo looks the same whenever it runs, a config with
three readers (one with a BibTeX library) and the outbox backend, then polls, ranks, renders and
"sends" one .eml per reader into the outbox. The content is our own, written for this demo.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from digest.config import load_config
from digest.deliver import Outbox
from digest.poll import poll
from digest.send import SendResult, send_digests
from digest.store import Store


@dataclass
class Item:
    key: str
    title: str
    abstract: str
    authors: list[str]
    categories: list[str]
    hours_ago: int
    arxiv: str = ""  # an arXiv id: the item is a paper (in the arXiv feed, maybe on HF too)
    upvotes: int = 0  # > 0: also on the Hugging Face daily papers list
    tldr: str = ""  # Hugging Face's AI summary of it
    code: str = ""  # its repository, as Hugging Face lists it


PAPERS = [
    Item("nfst", "Normalization-Free Style Transfer with Learned Feature Statistics",
         "Instance normalization discards content statistics that matter for faithful "
         "reconstruction. We learn per-channel feature statistics with a small hypernetwork and "
         "drop normalization layers, improving content fidelity on three style transfer "
         "benchmarks.", ["Lena Okafor", "Hiroshi Tanabe", "Priya Raman"], ["cs.CV", "cs.LG"], 20,
         arxiv="2611.90417", upvotes=42,
         tldr="A hypernetwork's learned feature statistics replace instance normalization in "
              "style transfer, with better content fidelity.",
         code="https://github.com/okafor-lab/nfst-demo"),
    Item("bsa", "Block-Sparse Attention Without Retraining for 128k-Token Documents",
         "We convert dense attention layers of a pretrained language model into block-sparse "
         "ones at inference time, keeping accuracy on long-document question answering while "
         "cutting memory by a factor of six.", ["Tomasz Wierzbicki", "Ana Lucía Ferreira"],
         ["cs.CL", "cs.LG"], 14, arxiv="2611.90433"),
    Item("flood", "Graph Networks for River Flood Forecasting from Sparse Gauges",
         "Message passing over the river network turns a few hundred gauges into six-hour flood "
         "forecasts for every reach, beating hydrological baselines on five basins. The gauge "
         "records are at https://zenodo.org/records/7000001.",
         ["Grace Liu", "Samuel Adeyemi"], ["cs.LG", "physics.geo-ph"], 30, arxiv="2611.90451",
         upvotes=9),
    Item("rec", "Small Recurrent Models Beat Transformers on Streaming Sensor Data",
         "On twelve streaming sensor benchmarks a 3M-parameter gated recurrent model outperforms "
         "transformer baselines ten times its size at a fraction of the energy.", ["Yusuf Demir"],
         ["cs.LG"], 26, arxiv="2611.90470", upvotes=17),
    Item("med", "Style Transfer for Harmonizing Multi-Site Medical Imaging",
         "Scanner differences hurt segmentation models; we harmonize MRI across sites with a "
         "style transfer network and measure the effect on downstream segmentation.",
         ["Priya Raman", "Jonas Weber"], ["eess.IV", "cs.CV"], 8, arxiv="2611.90488"),
]
BLOG = [
    Item("plateau", "Why our style transfer baseline stopped improving",
         "We swapped batch normalization for instance normalization in our style transfer "
         "network and the plateau vanished. This post walks through the ablation.",
         ["Mira Castellanos"], ["computer vision"], 40),
    Item("reading", "Reading group: sparse attention for long documents",
         "Notes from this week's reading group on block-sparse attention patterns, with a small "
         "benchmark on 64k-token legal documents.", ["Tomasz Wierzbicki"], ["nlp"], 52),
]
FIELD_NOTES = [
    Item("gauges", "What a year of river gauge data taught us",
         "Missing values, drifting sensors and a flood that broke three of them: notes from "
         "operating a forecasting model on real gauges.", ["Grace Liu"], ["hydrology"], 18),
    Item("energy", "Measuring the energy of a training run, honestly",
         "Wall-socket meters, GPU counters and what each misses; a checklist for reporting "
         "energy in papers.", ["Samuel Adeyemi"], ["methods"], 60),
]
LIBRARY = """% Grace's seed papers, as Zotero exports them (written for this demo).
@article{liu2025gauges,
  title = {Learning River Dynamics from Sparse Gauge Networks},
  author = {Liu, Grace and Adeyemi, Samuel},
  year = {2025},
  abstract = {We model river discharge with message passing over the river network and
              forecast floods from a few hundred gauges.},
  keywords = {flood forecasting, graph neural networks, hydrology}
}
@inproceedings{adeyemi2024rain,
  title = {Rainfall Nowcasting with Recurrent Graph Models},
  author = {Adeyemi, Samuel},
  year = {2024},
  abstract = {Recurrent graph networks nowcast rainfall over catchments from radar and gauges.}
}
"""
CONFIG = """# digest demo: written by `digest demo`; edit it and run the commands it printed.
[digest]
title = "Demo digest"
database = "digest.db"
base_url = "http://127.0.0.1:{port}"
outbox = "outbox"                 # no [smtp]: digests are written here as .eml files

[ranking]
lookback = "7d"
# Embeddings (the [semantic] extra) would add a model load of several seconds to the demo.
semantic_mode = "off"

[feeds.arxiv]
path = "feeds/arxiv.xml"
title = "arXiv"

[feeds.hf-daily]
path = "feeds/hf-daily.json"
kind = "hf-daily-papers"
title = "HF daily papers"

[feeds.lab-notes]
path = "feeds/lab-notes.xml"

[feeds.field-notes]
path = "feeds/field-notes.atom"

[users.ada]
email = "ada@example.org"
timezone = "Europe/Berlin"
authors = ["Lena Okafor"]
exclude = ["medical imaging"]
serendipity = 1                   # one popular item from outside her profile, marked
[users.ada.interests]
"style transfer" = 2
"instance normalization" = 1
[users.ada.sections]              # in this order; the rest goes to "More for you"
"Style transfer" = {{match = ["style transfer"], max = 2}}

[users.grace]
email = "grace@example.org"
timezone = "America/New_York"
papers = "grace.bib"               # a BibTeX export: her own papers steer the ranking
categories = ["physics.geo-ph"]

[users.alan]
email = "alan@example.org"
timezone = "Asia/Tokyo"
authors = ["Tomasz Wierzbicki"]
[users.alan.interests]
"sparse attention" = 2
"long documents" = 1
"""


def write(folder: Path, now: datetime, port: int = 8750) -> Path:
    """Write the demo's config, library and feeds into `folder`; return the config path."""
    feeds = folder / "feeds"
    feeds.mkdir(parents=True, exist_ok=True)
    (feeds / "arxiv.xml").write_text(_arxiv_rss(PAPERS, now))
    (feeds / "hf-daily.json").write_text(_hf_json([p for p in PAPERS if p.upvotes], now))
    (feeds / "lab-notes.xml").write_text(_rss("Lab Notes", "https://lab-notes.example.org/", BLOG, now))
    (feeds / "field-notes.atom").write_text(
        _atom("Field Notes", "https://field-notes.example.org/", FIELD_NOTES, now))
    (folder / "grace.bib").write_text(LIBRARY)
    config = folder / "config.toml"
    config.write_text(CONFIG.format(port=port))
    return config


def run(folder: Path, now: datetime, port: int = 8750) -> list[SendResult]:
    """A fresh demo in `folder`: sample files, then poll, rank, render and send to the outbox."""
    for stale in ("digest.db", "digest.db-wal", "digest.db-shm"):
        (folder / stale).unlink(missing_ok=True)
    shutil.rmtree(folder / "outbox", ignore_errors=True)
    config = load_config(write(folder, now, port))
    with Store(config.digest.database) as store:
        poll(config, store, now=now)
        return send_digests(config, store, list(config.users.values()), None, now,
                            Outbox(config.digest.outbox))


def _when(now: datetime, item: Item) -> datetime:
    return (now - timedelta(hours=item.hours_ago)).replace(microsecond=0)


def _rss(title: str, site: str, items: list[Item], now: datetime) -> str:
    body = "".join(f"""
    <item>
      <title>{escape(i.title)}</title>
      <link>{site}{i.key}/</link>
      <guid isPermaLink="true">{site}{i.key}/</guid>
      <pubDate>{format_datetime(_when(now, i))}</pubDate>
      <dc:creator>{escape(", ".join(i.authors))}</dc:creator>
      {"".join(f"<category>{escape(c)}</category>" for c in i.categories)}
      <description><![CDATA[<p>{escape(i.abstract)}</p>]]></description>
    </item>""" for i in items)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>{escape(title)}</title>
    <link>{site}</link>
    <description>A sample blog written for the digest demo.</description>{body}
  </channel>
</rss>
"""


def _arxiv_rss(items: list[Item], now: datetime) -> str:
    body = "".join(f"""
    <item>
      <title>{escape(i.title)}</title>
      <link>https://arxiv.org/abs/{i.arxiv}</link>
      <description>arXiv:{i.arxiv}v1 Announce Type: new
Abstract: {escape(i.abstract)}</description>
      <guid isPermaLink="false">oai:arXiv.org:{i.arxiv}v1</guid>
      {"".join(f"<category>{c}</category>" for c in i.categories)}
      <pubDate>{format_datetime(_when(now, i))}</pubDate>
      <arxiv:announce_type>new</arxiv:announce_type>
      <dc:creator>{escape(", ".join(i.authors))}</dc:creator>
    </item>""" for i in items)
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">
  <channel>
    <title>cs.LG updates on arXiv.org (demo sample)</title>
    <link>http://rss.arxiv.org/rss/cs.LG</link>
    <description>A sample in the arXiv RSS format, written for the digest demo.</description>{body}
  </channel>
</rss>
"""


def _hf_json(items: list[Item], now: datetime) -> str:
    return json.dumps([{
        "paper": {"id": i.arxiv, "title": i.title, "summary": i.abstract, "upvotes": i.upvotes,
                  "authors": [{"name": a, "hidden": False} for a in i.authors],
                  **({"ai_summary": i.tldr} if i.tldr else {}),
                  "githubRepo": i.code or None,
                  "publishedAt": _when(now, i).isoformat().replace("+00:00", "Z")},
        "title": i.title, "publishedAt": _when(now, i).isoformat().replace("+00:00", "Z"),
        "numComments": 0} for i in items], indent=1)


def _atom(title: str, site: str, items: list[Item], now: datetime) -> str:
    body = "".join(f"""
  <entry>
    <title>{escape(i.title)}</title>
    <link href="{site}{i.key}"/>
    <id>tag:{site.split("//")[1].rstrip("/")},2026:{i.key}</id>
    <updated>{_when(now, i).isoformat()}</updated>
    <author><name>{escape(i.authors[0])}</name></author>
    {"".join(f'<category term="{escape(c)}"/>' for c in i.categories)}
    <summary>{escape(i.abstract)}</summary>
  </entry>""" for i in items)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>{escape(title)}</title>
  <link href="{site}"/>
  <id>{site}</id>
  <updated>{now.replace(microsecond=0).isoformat()}</updated>{body}
</feed>
"""
