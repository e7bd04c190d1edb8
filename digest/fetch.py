"""Downloading feeds politely and safely. Knows HTTP, not feeds.

- Every request has connect/read timeouts and a total deadline, so a trickling server cannot
  hold a scheduled job forever.
- Bodies are capped after decompression (gzip bombs are refused mid-stream).
- Addresses are checked where the connection is made (a network backend under httpx), on the
  very IP that is dialled: a public URL cannot bounce the poller onto loopback, the LAN or a
  cloud metadata address by a redirect, nor by DNS answering differently the second time
  (rebinding). Redirects are followed by hand, so each hop's scheme is checked too.
- Conditional GET (ETag / If-Modified-Since); statuses are returned, not interpreted: what a
  404 or a 301 means for a feed's schedule is poll.py's business.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from digest import __version__
from digest.errors import FetchError
from digest.models import FetchResult

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
PERMANENT = (301, 308)
ACCEPT = ("application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
          "application/feed+json;q=0.9, application/json;q=0.8, application/xml;q=0.8, "
          "text/xml;q=0.8, */*;q=0.5")
DEFAULT_USER_AGENT = f"digest/{__version__} (self-hosted personal feed digest; httpx/{httpx.__version__})"

AddressCheck = Callable[[ipaddress.IPv4Address | ipaddress.IPv6Address], bool]


def public_only(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Default policy: only globally routable unicast addresses."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def any_address(ip) -> bool:
    return True


@dataclass(frozen=True)
class FetchLimits:
    timeout: float = 30.0  # total seconds per feed, all hops included
    max_bytes: int = 15 * 1024 * 1024
    concurrency: int = 8
    per_host: int = 2
    user_agent: str = DEFAULT_USER_AGENT


class Fetcher:
    """Async HTTP fetcher with bounded concurrency overall and per host. Use as
    `async with Fetcher(...) as f: await f.fetch(url)`."""

    def __init__(self, limits: FetchLimits, address_allowed: AddressCheck = public_only):
        self.limits = limits
        self.address_allowed = address_allowed
        self._all = asyncio.Semaphore(limits.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        t = limits.timeout
        pool_limits = httpx.Limits(max_connections=limits.concurrency * 2,
                                   max_keepalive_connections=limits.concurrency)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(t, connect=min(10.0, t), read=min(20.0, t)),
            follow_redirects=False,
            headers={"User-Agent": limits.user_agent or DEFAULT_USER_AGENT, "Accept": ACCEPT},
            transport=_checked_transport(pool_limits, address_allowed),
            trust_env=False,  # an ambient proxy would bypass the address checks
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc) -> None:
        await self._client.aclose()

    async def fetch(self, url: str, etag: str = "", last_modified: str = "") -> FetchResult:
        """GET url (following redirects). Raises FetchError for transport problems; any HTTP
        status is returned in the result."""
        host = (urlsplit(url).hostname or "").lower()
        sem = self._hosts.setdefault(host, asyncio.Semaphore(self.limits.per_host))
        async with self._all, sem:
            try:
                async with asyncio.timeout(self.limits.timeout):
                    return await self._follow(url, etag, last_modified)
            except TimeoutError:
                raise FetchError(f"{url}: gave up after {self.limits.timeout:g} s without a "
                                 "complete response; the server is too slow, or raise [digest] "
                                 "timeout.") from None

    async def _follow(self, url: str, etag: str, last_modified: str) -> FetchResult:
        # Validators go back as the server sent them, unless no header could carry them (a
        # server's Latin-1 ETag, stored once, failed every later poll with an encoding error).
        headers = {name: value for name, value in (("If-None-Match", etag),
                                                   ("If-Modified-Since", last_modified))
                   if value and value.isascii() and value.isprintable() and len(value) <= 1024}
        permanent = ""
        chain_permanent = True
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            _check_url(current)
            try:
                async with self._client.stream("GET", current, headers=headers) as resp:
                    if resp.status_code in REDIRECTS and resp.headers.get("location"):
                        target = urljoin(current, resp.headers["location"])
                        chain_permanent = chain_permanent and resp.status_code in PERMANENT
                        if chain_permanent:
                            permanent = target
                        current = target
                        continue
                    body = b""
                    if resp.status_code == 200:
                        body = await self._read_capped(resp)
                    return FetchResult(
                        status=resp.status_code, body=body,
                        headers={k.lower(): v for k, v in resp.headers.items()},
                        url=current, permanent_redirect=permanent,
                        retry_after=parse_retry_after(resp.headers.get("retry-after", "")))
            except httpx.TimeoutException as e:
                raise FetchError(f"{current}: timed out ({type(e).__name__}); the server did not "
                                 "answer in time.") from None
            except httpx.TransportError as e:
                raise FetchError(f"{current}: cannot download ({_reason(e)}); check the URL or "
                                 "the server.") from None
            except httpx.InvalidURL as e:
                raise FetchError(f"{current}: invalid URL ({e}); fix the feed URL.") from None
            except FetchError as e:  # this hop's: the body's cap, or _CheckedBackend's address
                raise FetchError(f"{current}: {e}") from None
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects; point the feed at the "
                         "final URL.")

    async def _read_capped(self, resp: httpx.Response) -> bytes:
        """The body, refused past the cap; its errors are prefixed with the URL by _follow."""
        cap = self.limits.max_bytes
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap and "content-encoding" not in resp.headers:
            raise FetchError(f"the feed is {int(declared):,} bytes, over the "
                             f"{cap:,}-byte limit; raise [digest] max_feed_size if it is genuine.")
        chunks, size = [], 0
        try:
            async for chunk in resp.aiter_bytes():  # decompressed bytes: the cap sees bombs
                size += len(chunk)
                if size > cap:
                    raise FetchError(f"the feed grew past the {cap:,}-byte limit after "
                                     "decompression; refused (raise [digest] max_feed_size if "
                                     "it is genuine).")
                chunks.append(chunk)
        except httpx.DecodingError as e:
            raise FetchError(f"the compressed body is corrupt ({e}); the server sent "
                             "broken data.") from None
        return b"".join(chunks)


def _check_url(url: str) -> None:
    """The scheme and host of every hop; its address is checked when it is dialled."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"{url}: only http and https are fetched; use path = for local files.")
    if not parts.hostname:
        raise FetchError(f"{url}: the URL has no host; fix the feed URL.")


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses it if any of its addresses is not allowed, and dials
    the checked IP, so what was checked is what is connected to. TLS still verifies (and sends
    SNI for) the host name: httpcore passes it to start_tls separately."""

    def __init__(self, address_allowed: AddressCheck):
        self._inner = httpcore.AnyIOBackend()
        self.address_allowed = address_allowed

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                                     type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as e:
                raise FetchError(f"cannot resolve host {host!r} ({e}); check the URL and the "
                                 "network.") from None
            addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        for ip in addresses:
            if not self.address_allowed(ip):
                raise FetchError(f"refused {host}: it is at the non-public address {ip}; set "
                                 "[digest] allow_private_networks = true if you trust this feed.")
        return await self._inner.connect_tcp(str(addresses[0]), port, timeout, local_address,
                                             socket_options)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise FetchError("unix sockets are not fetched.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _checked_transport(limits: httpx.Limits, address_allowed: AddressCheck) -> httpx.AsyncHTTPTransport:
    """httpx's transport over a pool that dials through _CheckedBackend. httpx has no public
    hook for a network backend, so the pool is swapped in; tests/test_poll.py fails if an httpx
    release changes that."""
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_CheckedBackend(address_allowed))
    return transport


def parse_retry_after(value: str, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # not "²", which isdigit() too
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def read_local(path: Path, max_bytes: int, last_seen: str) -> FetchResult:
    """A `path =` feed. Unchanged size and mtime count as 304, like a conditional GET."""
    try:
        st = path.stat()
    except OSError as e:
        raise FetchError(f"{path}: cannot read the feed file ({e.strerror}); fix [feeds] path.") \
            from None
    stamp = f"{st.st_mtime_ns}:{st.st_size}"
    if stamp == last_seen:
        return FetchResult(status=304, url=str(path), headers={"last-modified": stamp})
    if st.st_size > max_bytes:
        raise FetchError(f"{path}: the file is {st.st_size:,} bytes, over the {max_bytes:,}-byte "
                         "limit; raise [digest] max_feed_size if it is genuine.")
    try:
        body = path.read_bytes()
    except OSError as e:
        raise FetchError(f"{path}: cannot read the feed file ({e.strerror}).") from None
    return FetchResult(status=200, body=body, url=str(path), headers={"last-modified": stamp})


def _reason(e: Exception) -> str:
    text = str(e).strip()
    if not text and e.__cause__ is not None:
        text = str(e.__cause__)
    return (text or type(e).__name__).split("\n")[0][:160]
