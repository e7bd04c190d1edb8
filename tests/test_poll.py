"""Polling over real HTTP on 127.0.0.1: conditional GET, redirects, errors, limits, isolation."""

import gzip
import json
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import time_machine
from conftest import fixture_bytes
from werkzeug import Response

from digest.fetch import parse_retry_after
from digest.models import FeedState, FetchResult
from digest.poll import fail, next_state, poll

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
RSS = "application/rss+xml"


def run_poll(project, **kw):
    with project.store() as store:
        return {r.feed: r for r in poll(project.config(), store, **kw)}


def feed_state(project, name):
    with project.store() as store:
        return store.feed_state(name)


def test_poll_every_format_over_http_and_join_duplicates(project, httpserver):
    for name, ctype in [("rss20.xml", RSS), ("atom.xml", "application/atom+xml"),
                        ("arxiv_rss.xml", RSS), ("arxiv_api.xml", "application/atom+xml"),
                        ("rss10.rdf", "application/rdf+xml"), ("rss091.xml", "text/xml"),
                        ("hf_daily.json", "application/json"), ("jsonfeed.json", "application/feed+json")]:
        httpserver.expect_request(f"/{name}").respond_with_data(fixture_bytes(name), content_type=ctype)
    feeds = "".join(f'[feeds.{n.split(".")[0]}]\nurl = "{httpserver.url_for("/" + n)}"\n'
                    for n in ["rss20.xml", "atom.xml", "arxiv_rss.xml", "arxiv_api.xml", "rss10.rdf",
                              "rss091.xml", "hf_daily.json", "jsonfeed.json"])
    project.write(feeds)
    r = project.run("poll")
    assert r.exit_code == 0, r.output
    for name in ("rss20", "atom", "arxiv_rss", "arxiv_api", "rss10", "rss091", "hf_daily", "jsonfeed"):
        assert name in r.stdout
    with project.store() as store:
        totals = store.feed_totals()
        assert totals == {"rss20": 2, "atom": 2, "arxiv_rss": 1, "arxiv_api": 2, "rss10": 1,
                          "rss091": 1, "hf_daily": 2, "jsonfeed": 2}
        # 2611.01234 arrives from the arXiv RSS, the arXiv API and HF: one item, three sources.
        (tiny,) = [store.entry(i) for i in store.entry_ids()
                   if store.entry(i).canonical == "arxiv:2611.01234"]
        assert sorted(tiny.sources) == ["arxiv_api", "arxiv_rss", "hf_daily"]
        assert tiny.popularity == 57
        assert store.count_entries() == 13 - 2


def test_304_means_no_parse_and_no_new_rows(project, httpserver):
    seen_headers = []

    def handler(request):
        seen_headers.append(dict(request.headers))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(fixture_bytes("rss20.xml"), content_type=RSS,
                        headers={"ETag": '"v1"', "Last-Modified": "Fri, 20 Nov 2026 05:00:00 GMT"})

    httpserver.expect_request("/feed").respond_with_handler(handler)
    project.write(f'[feeds.blog]\nurl = "{httpserver.url_for("/feed")}"\n')
    first = run_poll(project, now=T0)["blog"]
    assert (first.status, first.new) == ("ok", 2)
    second = run_poll(project, now=T0 + timedelta(hours=2))["blog"]
    assert (second.status, second.new, second.http_status) == ("not-modified", 0, 304)
    assert seen_headers[1]["If-None-Match"] == '"v1"'
    assert seen_headers[1]["If-Modified-Since"] == "Fri, 20 Nov 2026 05:00:00 GMT"
    assert seen_headers[0]["User-Agent"].startswith("digest/")
    state = feed_state(project, "blog")
    assert state.error_count == 0 and state.etag == '"v1"'
    with project.store() as store:
        assert [row.status for row in store.poll_log("blog")] == ["not-modified", "ok"]


def test_permanent_redirect_moves_the_feed_only_after_it_repeats(project, httpserver):
    new_url = httpserver.url_for("/new")
    httpserver.expect_request("/old").respond_with_response(
        Response(status=301, headers={"Location": new_url}))
    httpserver.expect_request("/new").respond_with_data(fixture_bytes("rss20.xml"), content_type=RSS)
    old_url = httpserver.url_for("/old")
    project.write(f'[feeds.blog]\nurl = "{old_url}"\n')
    assert run_poll(project, now=T0)["blog"].status == "ok"  # the redirect is followed...
    assert feed_state(project, "blog").url == old_url  # ...but one 301 is not trusted yet
    run_poll(project, now=T0 + timedelta(hours=2))
    state = feed_state(project, "blog")
    assert state.url == new_url
    assert json.loads(state.url_changes)[0]["from"] == old_url
    r = project.run("feeds")
    assert "moved from" in r.stdout and old_url in r.stdout


def test_temporary_redirect_never_moves_the_feed(project, httpserver):
    httpserver.expect_request("/old").respond_with_response(
        Response(status=302, headers={"Location": httpserver.url_for("/tmp")}))
    httpserver.expect_request("/tmp").respond_with_data(fixture_bytes("rss20.xml"), content_type=RSS)
    project.write(f'[feeds.blog]\nurl = "{httpserver.url_for("/old")}"\n')
    for hours in (0, 2, 4):
        assert run_poll(project, now=T0 + timedelta(hours=hours))["blog"].status == "ok"
    assert feed_state(project, "blog").url == httpserver.url_for("/old")


def test_410_deactivates_the_feed(project, httpserver):
    httpserver.expect_request("/gone").respond_with_data("", status=410)
    project.write(f'[feeds.dead]\nurl = "{httpserver.url_for("/gone")}"\n')
    r = project.run("poll")
    assert r.exit_code == 1 and "gone" in r.stdout
    assert not feed_state(project, "dead").active
    later = run_poll(project, now=datetime.now(UTC) + timedelta(days=30))["dead"]
    assert later.status == "inactive"
    assert len(httpserver.log) == 1  # never fetched again
    assert "gone" in project.run("feeds").stdout


def test_429_retry_after_is_honoured(project, httpserver):
    httpserver.expect_request("/busy").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "7200"}))
    project.write(f'[feeds.busy]\nurl = "{httpserver.url_for("/busy")}"\nevery = "15m"\n')
    result = run_poll(project, now=T0)["busy"]
    assert result.status == "error" and "429" in result.error
    assert feed_state(project, "busy").next_poll_at == (T0 + timedelta(hours=2)).isoformat()
    assert run_poll(project, now=T0 + timedelta(minutes=90))["busy"].status == "skipped"
    assert run_poll(project, now=T0 + timedelta(minutes=121))["busy"].status == "error"
    assert len(httpserver.log) == 2


def test_retry_after_http_date():
    now = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    assert parse_retry_after("Fri, 20 Nov 2026 06:10:00 GMT", now) == 600
    assert parse_retry_after("120") == 120
    assert parse_retry_after("soon") is None


def test_failing_feed_backs_off_exponentially_with_a_cap(project, httpserver):
    httpserver.expect_request("/broken").respond_with_data("oops", status=500)
    project.write(f'[feeds.broken]\nurl = "{httpserver.url_for("/broken")}"\nevery = "1h"\n',
                  extra_digest='max_backoff = "6h"\n')
    now, waits = T0, []
    for _ in range(5):
        result = run_poll(project, now=now)["broken"]
        assert result.status == "error" and "HTTP 500" in result.error
        nxt = datetime.fromisoformat(feed_state(project, "broken").next_poll_at)
        waits.append((nxt - now) / timedelta(hours=1))
        now = nxt
    assert waits == [1, 2, 4, 6, 6]
    state = feed_state(project, "broken")
    assert state.error_count == 5 and state.failing_since == T0.isoformat()
    assert "HTTP 500" in state.last_error


def test_success_resets_the_error_state():
    s = fail(FeedState(name="f", url="u"), "boom", T0, 3600, 86400)
    s = next_state(s, FetchResult(status=200, headers={"etag": "x"}), T0, 3600, 86400)
    assert (s.error_count, s.last_error, s.failing_since, s.etag) == (0, "", "", "x")


def test_poll_cli_uses_the_clock_and_skips_feeds_not_due(project, httpserver):
    httpserver.expect_request("/f").respond_with_data(fixture_bytes("rss20.xml"), content_type=RSS)
    project.write(f'[feeds.blog]\nurl = "{httpserver.url_for("/f")}"\nevery = "1h"\n')
    with time_machine.travel(T0, tick=False):
        assert project.run("poll").exit_code == 0
    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        r = project.run("poll")
        assert "skipped" in r.stdout and "next poll 2026-11-20T07:00:00+00:00" in r.stdout
        assert "skipped" not in project.run("poll", "--feed", "blog").stdout  # --feed forces
    assert len(httpserver.log) == 2


class FeedHandler(BaseHTTPRequestHandler):
    """A quiet handler with a helper to answer 200 with a feed body."""

    def send_feed(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", RSS)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Trickle(FeedHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", RSS)
        self.end_headers()
        try:
            for _ in range(100):  # 100 bytes over 20 s: each read is quick, the whole is not
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass


@pytest.fixture
def loopback_server():
    servers = []

    def start(handler, tls=None):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        srv.daemon_threads = True
        if tls is not None:
            srv.socket = tls.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"{'https' if tls else 'http'}://127.0.0.1:{srv.server_port}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


class OddHeaders(FeedHandler):
    """What some servers send: Latin-1 validators, a Retry-After past any clock (each was an
    internal error; the first, stored, on every later poll too), a redirect to no URL."""

    seen: ClassVar[list] = []  # the validators each request carried

    def do_GET(self):
        OddHeaders.seen.append((self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")))
        if self.path == "/latin1":
            body = fixture_bytes("rss20.xml")
            self.send_response(200)
            self.send_header("ETag", '"caf\u00e9"')
            self.send_header("Last-Modified", "lundi 1 d\u00e9cembre")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path == "/later":
            self.send_response(429)
            self.send_header("Retry-After", "9" * 25)
        else:
            self.send_response(301)
            self.send_header("Location", "http://[::1/feed")
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_validators_no_header_can_carry_are_not_sent_back(project, loopback_server):
    base = loopback_server(OddHeaders)
    OddHeaders.seen = []
    project.write(f'[feeds.odd]\nurl = "{base}/latin1"\n')
    assert run_poll(project, now=T0)["odd"].status == "ok"
    again = run_poll(project, now=T0 + timedelta(days=1))["odd"]
    assert again.status == "ok" and again.error == "", again.error
    assert OddHeaders.seen == [(None, None), (None, None)]


def test_a_retry_after_past_any_clock_waits_the_longest_wait(project, loopback_server):
    base = loopback_server(OddHeaders)
    project.write(f'[feeds.later]\nurl = "{base}/later"\n')
    result = run_poll(project, now=T0)["later"]
    assert result.status == "error" and "HTTP 429" in result.error
    assert feed_state(project, "later").next_poll_at == (T0 + timedelta(days=7)).isoformat()


def test_a_redirect_to_no_url_is_the_feeds_error_said_once(project, loopback_server):
    base = loopback_server(OddHeaders)
    project.write(f'[feeds.nowhere]\nurl = "{base}/nowhere"\n')
    error = run_poll(project)["nowhere"].error
    assert "Invalid URL in location header" in error and "internal error" not in error
    assert error.startswith(f"{base}/nowhere: ") and error.count(base) == 1


class Anything:
    """A raw TCP server answering each request with what broken servers send: bad status
    lines and headers, lying encodings and lengths, Latin-1 and oversized validators, huge
    Retry-After values, bodies cut short, dropped connections. Each answer is drawn from the
    request's path and how often it was asked (seeded), so a run is repeatable."""

    STATUS = (b"200 OK",) * 6 + (b"301 Moved", b"302 Found", b"304 Not Modified", b"404 Nope",
                                 b"410 Gone", b"429 Slow", b"503 Later", b"999 What", b"20O OK", b"")
    HEADERS = (b'ETag: "abc"', b"ETag: \xe9t\xe9", b"ETag: " + b"x" * 9000, b"Last-Modified: junk",
               b"Last-Modified: \xff\xfe", b"Content-Type: text/xml; charset=bogus",
               b"Content-Type: application/json", b"Location: /elsewhere", b"Location: \xe9",
               b"Location: ftp://x/y", b"Location: http://[::1/x", b"Retry-After: " + b"9" * 25,
               b"Retry-After: -5", b"Retry-After: \xc2\xb2", b"Content-Length: -1",
               b"Content-Length: 99999999", b"Content-Length: \xc2\xb2", b"Bad Header Line",
               b"Content-Encoding: gzip", b"Content-Encoding: br")

    def __init__(self, bodies: list[bytes]):
        import random

        self.bodies, self.asked, self.random = bodies, {}, random.Random
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        try:
            conn.settimeout(5)
            path = conn.recv(65536).split(b" ")[1].decode()
            n = self.asked[path] = self.asked.get(path, 0) + 1
            rnd = self.random(f"{path}:{n}")
            body = rnd.choice(self.bodies)
            if rnd.random() < 0.2:
                body = body[:rnd.randrange(len(body) + 1)]
            if rnd.random() < 0.1:
                body = gzip.compress(body)
            head = rnd.sample(self.HEADERS, rnd.randint(0, 4))
            if not any(h.startswith(b"Content-Length") for h in head):
                head.append(b"Content-Length: %d" % len(body))
            answer = (b"HTTP/1.1 " + rnd.choice(self.STATUS) + b"\r\n" + b"\r\n".join(head)
                      + b"\r\nConnection: close\r\n\r\n" + body)
            conn.sendall(answer[:rnd.randrange(len(answer))] if rnd.random() < 0.05 else answer)
        except (OSError, IndexError, UnicodeDecodeError):
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


def test_whatever_a_server_answers_is_the_feeds_result_never_an_internal_error(project):
    """Bounded: 12 feeds polled 6 times (72 answers, a few seconds). Every poll ends ok,
    not modified, gone or with its error in one sentence; none is an internal error (a Latin-1
    ETag, stored, was one at every later poll; a Retry-After past any clock, another)."""
    server = Anything([fixture_bytes(n) for n in ("rss20.xml", "atom.xml", "hf_daily.json",
                                                  "jsonfeed.json", "malformed.xml")])
    try:
        project.write("".join(f'[feeds.f{i}]\nurl = "{server.url}/feed{i}"\n' for i in range(12)))
        seen = set()
        for day in range(6):
            for r in run_poll(project, force=True, now=T0 + timedelta(days=day)).values():
                seen.add(r.status)
                assert "internal error" not in r.error, r.error
                assert r.status != "error" or r.error.endswith((".", ")")), r.error
                assert "  " not in r.error, r.error  # "HTTP 999  from": no reason phrase
        assert {"ok", "error"} <= seen
    finally:
        server.close()


def test_trickling_server_hits_the_total_timeout(project, loopback_server):
    base = loopback_server(Trickle)
    project.write(f'[feeds.slow]\nurl = "{base}/feed"\n', extra_digest="timeout = 1\n")
    started = time.perf_counter()
    result = run_poll(project)["slow"]
    assert time.perf_counter() - started < 5
    assert result.status == "error" and "gave up after 1 s" in result.error


def test_gzip_bomb_is_refused(project, httpserver):
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000
    httpserver.expect_request("/bomb").respond_with_response(
        Response(bomb, content_type=RSS, headers={"Content-Encoding": "gzip"}))
    project.write(f'[feeds.bomb]\nurl = "{httpserver.url_for("/bomb")}"\n')  # default 15 MiB cap
    result = run_poll(project)["bomb"]
    assert result.status == "error" and "after decompression" in result.error
    assert result.error.count(httpserver.url_for("/bomb")) == 1  # said once, not per layer


def test_declared_oversize_body_is_refused_before_download(project, httpserver):
    httpserver.expect_request("/big").respond_with_data(b"x" * 3000, content_type=RSS)
    project.write(f'[feeds.big]\nurl = "{httpserver.url_for("/big")}"\n',
                  extra_digest='max_feed_size = "2KiB"\n')
    result = run_poll(project)["big"]
    assert "over the 2,048-byte limit" in result.error


def test_loopback_is_refused_unless_allowed(project, httpserver):
    httpserver.expect_request("/f").respond_with_data(fixture_bytes("rss20.xml"), content_type=RSS)
    url = httpserver.url_for("/f")
    project.write(f'[feeds.a]\nurl = "{url}"\n[feeds.b]\nurl = "{url.replace("127.0.0.1", "localhost")}"\n',
                  private=False)
    results = run_poll(project)
    for name in "ab":
        assert results[name].status == "error"
        assert "non-public address 127.0.0.1" in results[name].error
        assert "allow_private_networks = true" in results[name].error
    assert len(httpserver.log) == 0


def test_redirect_to_a_private_address_is_refused(project, httpserver):
    httpserver.expect_request("/hop").respond_with_response(
        Response(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    httpserver.expect_request("/file").respond_with_response(
        Response(status=301, headers={"Location": "file:///etc/passwd"}))
    project.write(f'[feeds.meta]\nurl = "{httpserver.url_for("/hop")}"\n'
                  f'[feeds.file]\nurl = "{httpserver.url_for("/file")}"\n', private=False)
    only_this_server = lambda ip: str(ip) == "127.0.0.1"  # noqa: E731 - stands in for "public"
    results = run_poll(project, address_allowed=only_this_server)
    assert "non-public address 169.254.169.254" in results["meta"].error
    assert "only http and https" in results["file"].error


def test_one_bad_feed_never_stops_the_others(project, httpserver):
    httpserver.expect_request("/good").respond_with_data(fixture_bytes("rss20.xml"), content_type=RSS)
    httpserver.expect_request("/missing").respond_with_data("no", status=404)
    httpserver.expect_request("/html").respond_with_data(fixture_bytes("not_a_feed.html"),
                                                         content_type="text/html")
    project.write(f'[feeds.missing]\nurl = "{httpserver.url_for("/missing")}"\n'
                  f'[feeds.html]\nurl = "{httpserver.url_for("/html")}"\n'
                  f'[feeds.nofile]\npath = "nowhere.xml"\n'
                  f'[feeds.refused]\nurl = "http://127.0.0.1:9/closed"\n'
                  f'[feeds.good]\nurl = "{httpserver.url_for("/good")}"\n')
    r = project.run("poll")
    assert r.exit_code == 1
    assert "Error: 4 of 5 feeds failed: missing, html, nofile, refused" in r.stderr
    assert "Traceback" not in r.output
    results = run_poll(project, force=True)
    assert results["good"].status == "not-modified" or results["good"].status == "ok"
    assert "HTTP 404" in results["missing"].error and "check the feed URL" in results["missing"].error
    assert "not an RSS, Atom or JSON feed" in results["html"].error
    assert "cannot read the feed file" in results["nofile"].error
    assert "cannot download" in results["refused"].error
    with project.store() as store:
        assert store.feed_totals() == {"good": 2}


def test_latin1_over_http(project, httpserver):
    body = ('<rss version="2.0"><channel><title>Caf\xe9</title><item><title>Cr\xe8me br\xfbl\xe9e '
            'as a model of phase separation</title><link>http://x.example/1</link></item>'
            '</channel></rss>').encode("latin-1")
    httpserver.expect_request("/l").respond_with_data(
        body, headers={"Content-Type": "application/rss+xml; charset=ISO-8859-1"})
    project.write(f'[feeds.latin]\nurl = "{httpserver.url_for("/l")}"\n')
    run_poll(project)
    with project.store() as store:
        (eid,) = store.entry_ids()
        assert store.entry(eid).title == "Crème brûlée as a model of phase separation"


class Counting(FeedHandler):
    lock = threading.Lock()
    active = 0
    peak = 0

    def do_GET(self):
        cls = type(self)
        with cls.lock:
            cls.active += 1
            cls.peak = max(cls.peak, cls.active)
        time.sleep(0.3)  # hold the request open so overlapping downloads are visible
        body = fixture_bytes("rss20.xml").replace(b"bees-blue", self.path.encode().strip(b"/"))
        with cls.lock:
            cls.active -= 1
        self.send_feed(body)


@pytest.mark.parametrize("per_host", [1, 3])
def test_per_host_concurrency_limit(project, loopback_server, per_host):
    Counting.active = Counting.peak = 0
    base = loopback_server(Counting)
    project.write("".join(f'[feeds.f{i}]\nurl = "{base}/p{i}"\n' for i in range(6)),
                  extra_digest=f"per_host = {per_host}\nconcurrency = 8\n")
    results = run_poll(project)
    assert all(r.status == "ok" for r in results.values())
    assert Counting.peak == per_host


def test_local_path_feed_and_unchanged_file_counts_as_304(project):
    (project.root / "feed.xml").write_bytes(fixture_bytes("atom.xml"))
    project.write('[feeds.local]\npath = "feed.xml"\n')
    assert run_poll(project, now=T0)["local"].new == 2
    assert run_poll(project, now=T0, force=True)["local"].status == "not-modified"


def test_unknown_feed_name_is_a_clear_error(project):
    project.write('[feeds.blog]\npath = "x.xml"\n')
    r = project.run("poll", "--feed", "blgo")
    assert r.exit_code == 1 and "no feed named 'blgo'" in r.stderr


def test_python_dash_m_digest_runs(project):
    project.write('[feeds.blog]\npath = "x.xml"\n')
    r = subprocess.run([sys.executable, "-m", "digest", "--config", str(project.path), "check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "1 feeds" in r.stdout


def test_closed_port_fails_fast(project):
    with socket.socket() as s:  # find a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    project.write(f'[feeds.x]\nurl = "http://127.0.0.1:{port}/f"\n')
    result = run_poll(project)["x"]
    assert result.status == "error" and result.seconds < 5


def test_many_feeds_parse_in_worker_processes_with_the_same_result(project, monkeypatch):
    import digest.poll

    names = ["rss20.xml", "atom.xml", "arxiv_rss.xml", "hf_daily.json", "jsonfeed.json", "rss10.rdf"]
    body = ""
    for i in range(digest.poll.POOL_MIN_FEEDS + 2):
        name = names[i % len(names)]
        (project.root / f"{i}-{name}").write_bytes(fixture_bytes(name))
        body += f'[feeds.f{i}]\npath = "{i}-{name}"\n'
    project.write(body)

    def snapshot():
        with project.store() as store:
            return sorted((store.entry(i).canonical, store.entry(i).title,
                           tuple(sorted(store.entry(i).sources))) for i in store.entry_ids())

    pooled = run_poll(project, now=T0)
    assert all(r.status == "ok" for r in pooled.values())
    with_pool = snapshot()
    (project.root / "digest.db").unlink()
    monkeypatch.setattr(digest.poll, "POOL_MIN_FEEDS", 10**6)
    run_poll(project, now=T0)
    assert snapshot() == with_pool and len(with_pool) > 5


def test_feeds_command_shows_health(project, httpserver):
    httpserver.expect_request("/ok").respond_with_data(fixture_bytes("rss20.xml"), content_type=RSS)
    httpserver.expect_request("/bad").respond_with_data("no", status=500)
    project.write(f'[feeds.good]\nurl = "{httpserver.url_for("/ok")}"\n'
                  f'[feeds.bad]\nurl = "{httpserver.url_for("/bad")}"\n[feeds.later]\npath = "x.xml"\n')
    run_poll(project, names=["good", "bad"])
    out = project.run("feeds").stdout
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "ok" in rows["good"] and "failing" in rows["bad"] and "HTTP 500" in rows["bad"]
    assert "new" in rows["later"] and "never" in rows["later"]


def test_corrupt_database_is_one_clear_sentence(project):
    (project.root / "digest.db").write_text("not sqlite at all" * 100)
    project.write('[feeds.a]\npath = "a.xml"\n')
    r = project.run("poll")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.startswith("Error: cannot use the database") and r.stderr.count("\n") == 1


@pytest.fixture
def tls_server(loopback_server):
    """HTTPS on 127.0.0.1 with a certificate from a test CA that the poller does not trust."""
    import ssl

    trustme = pytest.importorskip("trustme")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("localhost", "127.0.0.1").configure_cert(ctx)

    class Handler(FeedHandler):
        def do_GET(self):
            self.send_feed(fixture_bytes("rss20.xml"))

    base = loopback_server(Handler, tls=ctx)
    return base.replace("127.0.0.1", "localhost") + "/feed.xml"


def test_https_goes_through_the_checked_dialer_and_verifies_certificates(project, tls_server):
    # The address check dials the IP; TLS must still verify the certificate against the name.
    project.write(f'[feeds.tls]\nurl = "{tls_server}"\n')
    result = run_poll(project)["tls"]
    assert result.status == "error" and "CERTIFICATE_VERIFY_FAILED" in result.error
    project.write(f'[feeds.tls]\nurl = "{tls_server}"\n', private=False)
    assert "non-public address" in run_poll(project, force=True)["tls"].error


LEGACY_API = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title type="html">ArXiv Query: id_list=...</title>
  <id>http://arxiv.org/api/q</id><updated>2026-11-20T00:00:00-05:00</updated>
  <entry><category term="" scheme="http://arxiv.org/schemas/atom"/></entry>
  <entry><id>http://arxiv.org/abs/2611.04321v1</id><updated>2026-11-19T18:00:00Z</updated>
    <title>Scaling Sparse Attention to Million Token Contexts</title>
    <summary>We scale block-sparse attention.</summary>
    <link href="http://arxiv.org/abs/2611.04321v1" rel="alternate" type="text/html"/></entry>
  <entry><category term="" scheme="http://arxiv.org/schemas/atom"/></entry>
  <entry><category term="" scheme="http://arxiv.org/schemas/atom"/></entry>
</feed>"""
DAILY_RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Daily papers mirror</title>
  <item><title>Scaling sparse attention to million-token contexts</title>
    <link>https://papers.mirror.example/p/8812</link><guid>https://papers.mirror.example/p/8812</guid></item>
</channel></rss>"""
DAY_LOG = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Day log</title>
  <item><guid>http://log.example.org/2026/11/20#When:9:01:00AM</guid><description>Morning.</description></item>
  <item><guid>http://log.example.org/2026/11/20#When:6:52:02PM</guid><description>Evening.</description></item>
</channel></rss>"""


def test_polled_feeds_lose_nothing_and_join_every_copy(project, httpserver):
    for path, body in (("/api", LEGACY_API), ("/daily", DAILY_RSS), ("/log", DAY_LOG)):
        httpserver.expect_request(path).respond_with_data(body, content_type="application/xml")
    project.write("".join(f'[feeds.{n}]\nurl = "{httpserver.url_for("/" + n)}"\n'
                          for n in ("api", "daily", "log")))
    r = project.run("poll")
    assert r.exit_code == 0, r.output
    with project.store() as store:
        (api_log,) = store.poll_log("api", limit=1)
        assert "dropped 3 empty entries" in api_log.warning
        assert store.feed_totals() == {"api": 1, "daily": 1, "log": 2}
        entries = [store.entry(i) for i in store.entry_ids()]
        assert sorted(len(e.sources) for e in entries) == [1, 1, 2]
        (joined,) = [e for e in entries if len(e.sources) == 2]
        assert sorted(joined.sources) == ["api", "daily"] and joined.canonical == "arxiv:2611.04321"
        assert not any(e.title == "(untitled)" and not e.summary_text for e in entries)


def test_a_moved_feed_starts_over_the_same_in_every_view_and_after_polling(project):
    """A feed whose configured address changes is a different feed: its errors, validators and
    backoff are dropped (its title and last success stay). The views show it that way at once,
    without writing; polling writes exactly what they showed."""
    from digest.health import feed_states, sync_feeds

    (project.root / "good.xml").write_bytes(fixture_bytes("rss20.xml"))
    project.write('[feeds.f]\npath = "good.xml"\n[users.u]\nemail = "u@example.org"\n')
    with time_machine.travel(T0, tick=False):
        assert run_poll(project)["f"].status == "ok"
        (project.root / "good.xml").unlink()  # now gone: the poll fails
        assert run_poll(project, force=True)["f"].status == "error"
    failing = feed_state(project, "f")
    assert failing.error_count == 1 and failing.last_success_at and failing.next_poll_at
    project.path.write_text(project.path.read_text().replace("good.xml", "moved.xml"))
    config = project.config()
    with project.store() as store:
        shown = feed_states(config, store)["f"]
        assert store.feed_state("f") == failing  # a view wrote nothing
        assert (shown.error_count, shown.last_error, shown.next_poll_at, shown.etag) == (0, "", "", "")
        assert shown.config_url.endswith("moved.xml") and shown.health == "ok"
        assert (shown.title, shown.last_success_at) == (failing.title, failing.last_success_at)
        sync_feeds(config, store)
        assert store.feed_state("f") == shown  # polling starts from what the views showed
        sync_feeds(config, store)  # and again changes nothing
        assert store.feed_state("f") == shown


def test_a_failure_to_embed_ahead_is_a_warning_and_the_poll_still_counts(project, monkeypatch):
    """The work after a poll (warm.py) is an optimisation of the send: if it fails (a broken
    model install, a full disk), `digest poll` says so in one line and still succeeds; the
    entries are stored and the send works out what it needs."""
    def broken(*_):
        raise RuntimeError("the model's weights are truncated")
    monkeypatch.setattr("digest.warm.warm", broken)
    (project.root / "feed.xml").write_bytes(fixture_bytes("atom.xml"))
    project.write('[feeds.local]\npath = "feed.xml"\n')
    r = project.run("poll")
    assert r.exit_code == 0 and "Traceback" not in r.output
    assert "preparing the next send failed (the model's weights are truncated)" in r.stderr
    with project.store() as s:
        assert s.count_entries() == 2


def test_the_scheduler_logs_a_failure_to_prepare_ahead_and_keeps_the_entries(project, monkeypatch,
                                                                             caplog):
    """`digest run`'s poll tick, the same: a warning in the log, not a failed job."""
    import logging

    from digest import schedule

    def broken(*_):
        raise RuntimeError("database or disk is full")
    monkeypatch.setattr(schedule, "warm", broken)
    (project.root / "feed.xml").write_bytes(fixture_bytes("atom.xml"))
    project.write('[feeds.local]\npath = "feed.xml"\n')
    with caplog.at_level(logging.INFO, logger="digest"):
        schedule.poll_tick(project.config())
    failed = [r for r in caplog.records if "preparing the next send failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == logging.WARNING
    assert "(database or disk is full); the send will work out what it needs" in failed[0].getMessage()
    with project.store() as s:
        assert s.count_entries() == 2
