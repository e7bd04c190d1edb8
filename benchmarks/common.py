"""Shared benchmark helpers: the corpus, synthetic feeds built from it, a loopback feed server
with ETag support, and medians. Benchmarks read ../shared; they exit 0 with a note without it."""

from __future__ import annotations

import concurrent.futures
import ctypes
import functools
import json
import multiprocessing
import os
import signal
import statistics
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

from digest.sentences import split_sentences

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus" / "papers.jsonl"


# prctl(2), looked up before any fork, so a child between fork and exec only calls it.
_PRCTL = getattr(ctypes.CDLL(None), "prctl", None) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before the call: nobody will send the signal
            os._exit(1)


def ends_with_this_process() -> Callable[[], None]:
    """A Popen's preexec_fn that ends the child when this process ends (on Linux): a benchmark
    killed halfway otherwise leaves its workers and servers running, holding cores and ports,
    and the next measurement shares the machine with them."""
    return functools.partial(_die_with, os.getpid())


def fresh_processes(n: int = 1) -> concurrent.futures.ProcessPoolExecutor:
    """`n` newly started (spawned, not forked) processes that end with this one. Submit from
    the thread that lives as long as the pool (the main one): Linux sends the signal when the
    thread that started a process ends, and the pool starts its processes on submit."""
    return concurrent.futures.ProcessPoolExecutor(
        n, mp_context=multiprocessing.get_context("spawn"), initializer=ends_with_this_process())


def in_fresh_process(fn, *args):
    """fn(*args) where what it loads cannot touch the timed process: with the cache full,
    `digest` never imports torch, and torch's idle thread pool slows numpy ~20 % beside it."""
    with fresh_processes() as pool:
        return pool.submit(fn, *args).result()


def load_corpus() -> list[dict]:
    if not CORPUS.is_file():
        print(f"skipped: {CORPUS} is not here (benchmarks need ../shared beside the checkout)")
        sys.exit(0)
    return [json.loads(line) for line in CORPUS.open()]


def paper(papers: list[dict], k: int) -> tuple[str, str]:
    """The k-th entry's title and abstract: a corpus paper's for the first len(papers), then
    the first half of one paper's title and sentences joined to the second half of another's.
    So every entry is different, as a day's pool is: repeating the corpus's 550 abstracts
    made what is worked out once per abstract (a highlight's sentences) look nine times
    cheaper than it is, and copies of one title are one story (one item per digest)."""
    p = papers[k % len(papers)]
    if k < len(papers):
        return p["title"], p["abstract"]
    q = papers[(k * 7 + k // len(papers)) % len(papers)]
    a, b = p["title"].split(), q["title"].split()
    sa, sb = split_sentences(p["abstract"]), split_sentences(q["abstract"])
    return (" ".join(a[:(len(a) + 1) // 2] + b[len(b) // 2:]),
            " ".join(sa[:(len(sa) + 1) // 2] + sb[len(sb) // 2:]))


def build_feeds(papers: list[dict], n_feeds: int, per_feed: int) -> dict[str, bytes]:
    """n_feeds feeds of per_feed entries each, alternating arXiv-style RSS 2.0 and Atom. Every
    entry has its own arXiv-style id and its own text (paper()), so nothing is joined as a
    duplicate."""
    feeds = {}
    base = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
    for f in range(n_feeds):
        items = []
        for j in range(per_feed):
            k = f * per_feed + j
            aid = f"2611.{k:05d}"
            when = base - timedelta(minutes=k)
            title, abstract = map(escape, paper(papers, k))
            if f % 2 == 0:
                items.append(
                    f"<item><title>{title}</title><link>https://arxiv.org/abs/{aid}</link>"
                    f"<description>arXiv:{aid}v1 Announce Type: new\nAbstract: {abstract}</description>"
                    f'<guid isPermaLink="false">oai:arXiv.org:{aid}v1</guid><category>cs.LG</category>'
                    f"<pubDate>{format_datetime(when)}</pubDate>"
                    f"<dc:creator>Author One, Author Two</dc:creator></item>")
            else:
                items.append(
                    f"<entry><id>http://arxiv.org/abs/{aid}v1</id><title>{title}</title>"
                    f"<updated>{when.isoformat()}</updated><published>{when.isoformat()}</published>"
                    f'<link href="https://arxiv.org/abs/{aid}v1" rel="alternate" type="text/html"/>'
                    f"<summary>{abstract}</summary><category term=\"cs.LG\"/>"
                    f"<author><name>Author One</name></author><author><name>Author Two</name></author>"
                    f"</entry>")
        if f % 2 == 0:
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
                    'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
                    f"<title>Feed {f}</title><link>https://example.org/{f}</link>"
                    f"<description>bench</description>{''.join(items)}</channel></rss>")
        else:
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
                    f"<title>Feed {f}</title><id>urn:bench:{f}</id>"
                    f"<updated>{base.isoformat()}</updated>{''.join(items)}</feed>")
        feeds[f"/feed{f}.xml"] = body.encode()
    return feeds


class FeedServer:
    """Serves {path: bytes} on 127.0.0.1 with strong ETags; If-None-Match → 304."""

    def __init__(self, feeds: dict[str, bytes]):
        import hashlib

        etags = {p: '"' + hashlib.sha1(b).hexdigest()[:16] + '"' for p, b in feeds.items()}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = feeds.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("If-None-Match") == etags[self.path]:
                    self.send_response(304)
                    self.send_header("ETag", etags[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                ctype = "application/rss+xml" if b"<rss" in body[:200] else "application/atom+xml"
                self.send_header("Content-Type", ctype)
                self.send_header("ETag", etags[self.path])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 512

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
