"""The web pages: digests in a browser exactly as emailed, feed health, the archive and its
search, and (readerpages.py) the pages the emails link to. `digest preview`, or `digest run
--web`.

Starlette on uvicorn: a small, well-kept ASGI pair with no template or ORM layer of its own to
fight (Jinja2 and our store are already here), a test client, and middleware for the Host
check. Rules:
- Nothing changes on GET or HEAD: links only open pages; their buttons POST, accepted from our
  own pages or from no page (RFC 8058 one-click), never from a foreign Origin.
- Private pages (index, archive, health, unsigned digests) need this machine or the [web]
  login (access.py); signed links open from anywhere.
- Every page is built in a bounded thread pool with [web] timeout: a slow one answers 503 and
  the event loop never waits on SQLite, ranking or rendering.
- Every response carries a CSP that allows no scripts, no remote loads and no framing, plus
  nosniff; a Host other than ours gets a 400 (DNS rebinding cannot reach it).
Config and templates are re-read when their files change, so edits show on the next reload.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.to_thread
import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest import access
from digest.atom import digest_feed
from digest.config import load_config
from digest.daily import render_digests
from digest.dates import local_today, parse_day
from digest.errors import DigestError
from digest.health import health
from digest.links import Links
from digest.readerpages import ReaderPages
from digest.render import BUILTIN_TEMPLATES, Renderer
from digest.search import search as find
from digest.settings import Config
from digest.store import Store

CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "X-Frame-Options": "DENY",
                    # Not no-referrer: under it a browser sends "Origin: null" with our own form
                    # POSTs, and the Origin check could not tell them from a foreign page's.
                    "Referrer-Policy": "same-origin",
                    "Cache-Control": "no-store"}
INDEX_DAYS = 7


@dataclass
class _Loaded:
    stamp: tuple
    config: Config
    renderer: Renderer
    links: Links
    password: str  # for the private pages' login ([web] password_env), read at load


class Preview(ReaderPages):
    """Holds the config and renderer, reloaded when config.toml changes. Templates reload on
    their own (Jinja checks their modification times)."""

    def __init__(self, config_path: Path, now=None):
        self.config_path = Path(config_path)
        self.now = now or (lambda: datetime.now(UTC))
        self._loaded: _Loaded | None = None
        self._slots: threading.BoundedSemaphore | None = None  # pages being built
        self.pages = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(BUILTIN_TEMPLATES / "preview")), autoescape=True,
            undefined=jinja2.StrictUndefined, auto_reload=True)

    def loaded(self) -> _Loaded:
        st = self.config_path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if self._loaded is None or self._loaded.stamp != stamp:
            config = load_config(self.config_path)
            password = os.environ.get(config.web.password_env, "") if config.web.password_env else ""
            self._loaded = _Loaded(stamp, config, Renderer(config.digest.templates),
                                   Links.of(config), password)
        return self._loaded

    def private(self, request: Request, lo: _Loaded) -> Response | None:
        """None when the caller may see a private page (access.py), else the answer."""
        web = lo.config.web
        peer = request.client.host if request.client else ""
        if access.from_this_machine(peer, request.headers.get("host", ""), request.headers,
                                    web.trusted_proxies):
            return None
        password = lo.password
        if access.logged_in(request.headers.get("authorization", ""), web.username, password):
            return None
        if password:
            return PlainTextResponse("Log in to see this page.", 401,
                                     headers={"WWW-Authenticate": 'Basic realm="digest"'})
        return self.page("message.html", 403, title="Private", message=(
            "This page is only shown on the server itself. To open it from elsewhere, set "
            "[web] password_env and log in."))

    def endpoint(self, handler):
        """An ASGI endpoint for a plain handler(request, form): the work (SQLite, ranking,
        rendering) runs in a worker thread with [web] timeout, so one slow page answers 503
        instead of holding up every other one. At most [web] threads run at once, counted
        until they really end (a page that timed out still runs to its end in its thread);
        past that, 503 at once."""
        async def run(request: Request) -> Response:
            form = await _small_form(request) if request.method == "POST" else {}
            if form is None:
                return PlainTextResponse("That form is too large.", 413)
            lo = await anyio.to_thread.run_sync(self.loaded)
            if self._slots is None:
                self._slots = threading.BoundedSemaphore(lo.config.web.threads)
            slots = self._slots

            def work() -> Response:
                # Taken and given back in the worker itself: a job abandoned before it started
                # cannot leak its slot.
                if not slots.acquire(blocking=False):
                    return self.busy("Too many pages are being built right now")
                try:
                    return handler(request, form)
                finally:
                    slots.release()

            try:
                with anyio.fail_after(lo.config.web.timeout):
                    return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
            except TimeoutError:
                return self.busy(f"This page took longer than {lo.config.web.timeout:g} s")
        return run

    def busy(self, why: str) -> Response:
        return self.page("message.html", 503, title="Busy", message=f"{why}; try again in a "
                         "minute.")

    def page(self, name: str, status: int = 200, **values) -> HTMLResponse:
        return HTMLResponse(self.pages.get_template(name).render(**values), status_code=status)

    # -- routes -----------------------------------------------------------------------------

    def index(self, request: Request, form: dict[str, str]) -> Response:
        lo = self.loaded()
        if denied := self.private(request, lo):
            return denied
        cfg = lo.config
        now = self.now()
        readers = []
        for u in cfg.users.values():
            today = local_today(u, now)
            days = [(today - timedelta(days=k)).isoformat() for k in range(INDEX_DAYS)]
            readers.append((u, days))
        feeds = {u: lo.links.feed(u).removeprefix(lo.links.base) for u in cfg.users}
        return self.page("index.html", title=cfg.digest.title, readers=readers,
                         reader_names=list(cfg.users), feeds=feeds)

    def digest(self, request: Request, form: dict[str, str]) -> Response:
        lo = self.loaded()
        reader, day = request.path_params["reader"], request.path_params["day"]
        fmt = "text" if day.endswith(".txt") else "html"
        day = day.removesuffix(".txt")
        user = lo.config.users.get(reader)
        q = request.query_params
        # A signed link opens its digest from anywhere; anything else is a private page.
        signed = user is not None and lo.links.verify_view(
            q.get("s", ""), reader, day, q.get("e", ""), self.now().date())
        if not signed and (denied := self.private(request, lo)):
            return denied
        if user is None:
            return self.page("message.html", 404, title="Not found",
                             message="There is no such digest here.")
        try:
            local = parse_day(day, where="the date")
            with Store(lo.config.digest.database) as store:
                (done,) = render_digests(lo.config, store, [user], local, self.now(), lo.renderer)
        except DigestError as e:
            return self.page("message.html", 400, title="Cannot show this digest",
                             message=str(e))
        if fmt == "text":
            return PlainTextResponse(done.text)
        return HTMLResponse(done.html)

    def feed(self, request: Request, form: dict[str, str]) -> Response:
        """A reader's digests as Atom, at the signed URL their emails show. A feed reader polls
        it: an unchanged feed answers 304 to If-None-Match or If-Modified-Since."""
        lo = self.loaded()
        name = request.path_params["name"]
        reader = name.removesuffix(".atom")
        user = lo.config.users.get(reader)
        if (user is None or not name.endswith(".atom")
                or not lo.links.verify(request.query_params.get("s", ""), "feed", reader)):
            return self.page("message.html", 404, title="Not found", message="This link is not valid.")
        with Store(lo.config.digest.database) as store:
            feed = digest_feed(lo.config, store, user, lo.links, self.now(), lo.renderer)
        headers = {"ETag": feed.etag, "Cache-Control": "private, max-age=300"}
        if feed.updated:
            headers["Last-Modified"] = format_datetime(feed.updated.astimezone(UTC), usegmt=True)
        if _not_modified(request, feed.etag, feed.updated):
            return Response(status_code=304, headers=headers)
        return Response(feed.body, media_type="application/atom+xml; charset=utf-8", headers=headers)

    def archive(self, request: Request, form: dict[str, str]) -> Response:
        lo = self.loaded()
        if denied := self.private(request, lo):
            return denied
        cfg = lo.config
        with Store(cfg.digest.database) as store:
            rows = store.deliveries(limit=500)
        return self.page("archive.html", title="Delivered digests", rows=rows,
                         reader_names=list(cfg.users))

    def search(self, request: Request, form: dict[str, str]) -> Response:
        lo = self.loaded()
        if denied := self.private(request, lo):
            return denied
        cfg = lo.config
        text = request.query_params.get("q", "")[:500]
        name = request.query_params.get("reader", "")
        reader = cfg.users.get(name)
        hits, problem = [], ""
        if text:
            try:
                with Store(cfg.digest.database) as store:
                    hits = find(cfg, store, text, reader=reader, limit=50)
            except DigestError as e:
                problem = str(e)
        return self.page("search.html", title="Search", q=text, reader=reader.name if reader
                         else "", reader_names=list(cfg.users), hits=hits, problem=problem)

    def health(self, request: Request, form: dict[str, str]) -> Response:
        lo = self.loaded()
        if denied := self.private(request, lo):
            return denied
        with Store(lo.config.digest.database) as store:
            report = health(lo.config, store, self.now())
        return self.page("health.html", title=lo.config.digest.title, health=report)


def _not_modified(request: Request, etag: str, updated: datetime | None) -> bool:
    """RFC 9110: If-None-Match decides when present; else If-Modified-Since."""
    match = request.headers.get("if-none-match")
    if match is not None:
        return match.strip() == "*" or etag in (t.strip().removeprefix("W/") for t in match.split(","))
    since = request.headers.get("if-modified-since")
    if not since or updated is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    return when.tzinfo is not None and updated.replace(microsecond=0) <= when


async def _small_form(request: Request, limit: int = 4096) -> dict[str, str] | None:
    """An urlencoded form of a field or two, read no further than `limit` bytes (these forms
    are tiny; a larger body is not ours: None)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def create_app(config_path: Path, host: str = "127.0.0.1", now=None) -> Starlette:
    preview = Preview(config_path, now)
    e = preview.endpoint
    routes = [Route("/", e(preview.index)), Route("/health", e(preview.health)),
              Route("/archive", e(preview.archive)), Route("/search", e(preview.search)),
              Route("/digest/{reader}/{day}", e(preview.digest)),
              Route("/feed/{name}", e(preview.feed)),
              Route("/feedback/{reader}/{entry}/{vote}", e(preview.feedback),
                    methods=["GET", "POST"]),
              Route("/reader/{reader}", e(preview.reader), methods=["GET", "POST"]),
              Route("/unsubscribe/{reader}", e(preview.unsubscribe), methods=["GET", "POST"]),
              Route("/resubscribe/{reader}", e(preview.resubscribe), methods=["POST"])]
    # The links in emails arrive with base_url's host; a wildcard bind address is not a name
    # anyone should send as Host.
    public = urlsplit(preview.loaded().config.digest.base_url).hostname or "127.0.0.1"
    allowed = sorted({host, public, "127.0.0.1", "localhost", "::1", "[::1]"}
                     - {"0.0.0.0", "::"})  # noqa: S104

    async def problem(request: Request, exc: Exception) -> Response:
        # A config or database problem (say, a typo saved while previewing): say what it is.
        return preview.page("message.html", 500, title="digest cannot show this",
                            message=str(exc))

    app = Starlette(routes=routes, exception_handlers={DigestError: problem}, middleware=[
        Middleware(TrustedHostMiddleware, allowed_hosts=allowed)])
    return _SecurityHeaders(app)


class _SecurityHeaders:
    """ASGI wrapper adding SECURITY_HEADERS to every response, errors and 400s included."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.decode().lower() not in {h.lower() for h in SECURITY_HEADERS}]
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
