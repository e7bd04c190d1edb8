"""One poll: fetch due feeds concurrently, parse and store each as it arrives, update its state.

Failures are isolated per feed: whatever one feed does, the others are polled, and each feed's
state is saved in `finally`. The schedule arithmetic (backoff, Retry-After, redirects, 410) is
in `next_state`, a pure function, so it is tested without a network.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

from digest.errors import DigestError
from digest.fetch import AddressCheck, Fetcher, FetchLimits, any_address, public_only, read_local
from digest.health import sync_feeds
from digest.models import FeedState, FetchResult, ParsedFeed, PollResult, iso_utc
from digest.parse import parse_feed
from digest.settings import Config, FeedConfig
from digest.store import Store

MAX_RETRY_AFTER = timedelta(days=7)  # a server asking for more is probably misconfigured
TRUSTED_REDIRECT_REPEATS = 2  # a 301/308 must repeat this many polls before the URL changes
PARSE_WORKERS = 2  # the target machine has 2 cores; more workers only add memory
POOL_MIN_FEEDS = 16  # below this, starting worker processes costs more than it saves


def poll(config: Config, store: Store, *, names: list[str] | None = None, force: bool = False,
         now: datetime | None = None, address_allowed: AddressCheck | None = None,
         on_result: Callable[[PollResult], None] | None = None,
         on_start: Callable[[int], None] | None = None, due_only: bool = False) -> list[PollResult]:
    """Poll the due feeds (or `names`, due or not; only if due with `due_only`, as the
    scheduler does, so backoff and Retry-After hold). Returns one result per feed considered."""
    now = now or datetime.now(UTC)
    if address_allowed is None:
        address_allowed = any_address if config.digest.allow_private_networks else public_only
    sync_feeds(config, store)  # the feeds table follows the config here, and only here
    chosen = [config.feeds[n] for n in names] if names else list(config.feeds.values())
    results, due = [], []
    for feed in chosen:
        state = store.feed_state(feed.name)
        if force or (names and not due_only) or _is_due(state, now):
            due.append((feed, state))
        else:
            results.append(PollResult(feed=feed.name, status="skipped" if state.active else "inactive",
                                      total=0, next_poll_at=state.next_poll_at,
                                      error=state.last_error))
    if on_start:
        on_start(len(due))
    results.extend(asyncio.run(_poll_all(config, store, due, now, address_allowed, on_result)))
    totals = store.feed_totals()
    for r in results:
        r.total = totals.get(r.feed, 0)
    order = {n: i for i, n in enumerate(config.feeds)}
    return sorted(results, key=lambda r: order.get(r.feed, 0))


def _is_due(state: FeedState, now: datetime) -> bool:
    return state.active and (not state.next_poll_at or state.next_poll_at <= iso_utc(now))


async def _poll_all(config, store, due, now, address_allowed, on_result) -> list[PollResult]:
    d = config.digest
    limits = FetchLimits(timeout=d.timeout, max_bytes=d.max_feed_size, concurrency=d.concurrency,
                         per_host=d.per_host, user_agent=d.user_agent)
    results = []
    with _parser_pool(len(due)) as pool:
        async with Fetcher(limits, address_allowed) as fetcher:
            tasks = [asyncio.ensure_future(_download(fetcher, pool, feed, state, limits.max_bytes, now))
                     for feed, state in due]
            # Store each feed as soon as it is parsed, while the others download and parse.
            for next_done in asyncio.as_completed(tasks):
                feed, state, outcome, parsed, seconds = await next_done
                result = _ingest(config, store, feed, state, outcome, parsed, now, seconds)
                results.append(result)
                if on_result:
                    on_result(result)
    return results


@contextmanager
def _parser_pool(n_feeds: int):
    """feedparser is pure Python and most of a poll's CPU time. With many feeds and more than
    one core, parse in worker processes so that parsing, downloading and storing overlap."""
    workers = min(PARSE_WORKERS, os.cpu_count() or 1)
    if n_feeds < POOL_MIN_FEEDS or workers < 2:
        yield None
        return
    # forkserver, not fork: the poller has threads (resolver, test servers) and forking a
    # threaded process can deadlock the child.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["digest.parse"])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


async def _download(fetcher: Fetcher, pool, feed: FeedConfig, state: FeedState, max_bytes: int,
                    now: datetime):
    """Fetch and parse one feed. Never raises: failures are returned for _ingest to record."""
    started = time.perf_counter()
    parsed: ParsedFeed | Exception | None = None
    try:
        if feed.path is not None:
            outcome: FetchResult | Exception = read_local(feed.path, max_bytes, state.last_modified)
        else:
            outcome = await fetcher.fetch(state.url, state.etag, state.last_modified)
    except Exception as e:  # noqa: BLE001 - isolate every failure to its feed
        outcome = e
    if isinstance(outcome, FetchResult) and outcome.status == 200:
        args = (outcome.body, outcome.headers, feed.kind, now, outcome.url)
        try:
            if pool is not None:
                try:
                    parsed = await asyncio.get_running_loop().run_in_executor(pool, parse_feed, *args)
                except BrokenProcessPool:  # a worker died (memory?): parse here instead
                    parsed = parse_feed(*args)
            else:
                parsed = parse_feed(*args)
        except Exception as e:  # noqa: BLE001
            parsed = e
    return feed, state, outcome, parsed, time.perf_counter() - started


def _ingest(config: Config, store: Store, feed: FeedConfig, state: FeedState,
            outcome: FetchResult | Exception, parsed: ParsedFeed | Exception | None,
            now: datetime, seconds: float) -> PollResult:
    result = PollResult(feed=feed.name, status="error")
    new_state = state
    started = time.perf_counter()
    try:
        if isinstance(outcome, Exception):
            raise outcome
        result.http_status = outcome.status
        if outcome.status == 200:
            if isinstance(parsed, Exception):
                raise parsed
            result.new, result.seen = store.add_entries(feed.name, parsed.entries, now)
            result.warning = parsed.warning
            result.status = "ok"
            new_state = replace(next_state(state, outcome, now, feed.every,
                                           config.digest.max_backoff),
                                title=parsed.title or state.title)
        else:
            new_state = next_state(state, outcome, now, feed.every, config.digest.max_backoff)
            result.status = ("not-modified" if outcome.not_modified
                             else "gone" if outcome.status == 410 else "error")
            result.error = new_state.last_error
    except DigestError as e:
        result.error = str(e)
        new_state = fail(state, str(e), now, feed.every, config.digest.max_backoff)
    except Exception as e:  # noqa: BLE001 - a bug with one feed must not stop the others
        result.error = f"internal error ({type(e).__name__}: {e}); please report it."
        new_state = fail(state, result.error, now, feed.every, config.digest.max_backoff)
    finally:
        result.seconds = seconds + (time.perf_counter() - started)
        result.next_poll_at = new_state.next_poll_at
        store.record_poll(new_state, result, now)
    return result


def next_state(state: FeedState, res: FetchResult, now: datetime, every: int,
               max_backoff: int) -> FeedState:
    """The feed's state after an HTTP answer (any status)."""
    s = replace(state)
    _track_redirect(s, res, now)
    if res.status in (200, 304):
        s.etag = res.headers.get("etag", s.etag if res.status == 304 else "")
        s.last_modified = res.headers.get("last-modified",
                                          s.last_modified if res.status == 304 else "")
        s.active = True
        s.error_count = 0
        s.last_error = ""
        s.failing_since = ""
        s.last_success_at = iso_utc(now)
        s.next_poll_at = iso_utc(now + timedelta(seconds=every))
        return s
    if res.status == 410:
        s = fail(s, "the server says the feed is gone for good (HTTP 410); it is no longer "
                    "polled: remove it from the config, or fix its URL to resume.",
                 now, every, max_backoff)
        s.active = False
        return s
    status = " ".join(filter(None, (f"HTTP {res.status}", _http_reason(res.status))))
    s = fail(s, f"{status} from {res.url or s.url}; "
                f"{_http_hint(res.status)}", now, every, max_backoff)
    if res.status in (429, 503) and res.retry_after is not None:
        # Clamped as seconds first: a Retry-After of 10^20 seconds overflows a timedelta.
        wait = timedelta(seconds=min(res.retry_after, MAX_RETRY_AFTER.total_seconds()))
        s.next_poll_at = max(s.next_poll_at, iso_utc(now + wait))
    return s


def fail(state: FeedState, error: str, now: datetime, every: int, max_backoff: int) -> FeedState:
    """Record a failure: exponential backoff from the feed's interval, capped."""
    s = replace(state)
    s.error_count += 1
    s.last_error = error
    s.failing_since = s.failing_since or iso_utc(now)
    delay = min(max_backoff, every * 2 ** min(s.error_count - 1, 30))
    s.next_poll_at = iso_utc(now + timedelta(seconds=delay))
    return s


def _track_redirect(s: FeedState, res: FetchResult, now: datetime) -> None:
    """301/308 move the feed only once they repeat on consecutive polls; one odd answer (or a
    302/307) never rewrites the stored URL."""
    target = res.permanent_redirect
    if not target:
        s.redirect_to, s.redirect_seen = "", 0
        return
    if target == s.redirect_to:
        s.redirect_seen += 1
    else:
        s.redirect_to, s.redirect_seen = target, 1
    if s.redirect_seen >= TRUSTED_REDIRECT_REPEATS:
        changes = json.loads(s.url_changes or "[]")
        changes.append({"from": s.url, "to": target, "at": iso_utc(now)})
        s.url, s.url_changes = target, json.dumps(changes)
        s.redirect_to, s.redirect_seen = "", 0


def _http_reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _http_hint(status: int) -> str:
    if status in (401, 403):
        return "the feed needs permission; check the URL or whether it is private."
    if status == 404:
        return "check the feed URL; the site may have moved it."
    if status == 429:
        return "the server rate-limits us; polling less often (every = ...) helps."
    if status >= 500:
        return "the server is failing; digest retries later with backoff."
    return "check the feed URL."

