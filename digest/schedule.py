"""`digest run`: the daily schedule. Thin glue over poll and send (APScheduler 3).

- A poll tick a minute polls the feeds that are due: each comes due on its own `every`
  interval (or later, under backoff or Retry-After), and all due feeds are fetched
  concurrently, as `digest poll` does. Jobs have max_instances=1 and coalesce: a slow poll never
  overlaps itself, and ticks missed while busy or asleep collapse into one.
- A poll that brings new entries then embeds, with the semantic extra, what the next sends
  will rank (warm.py), so that work is not done while a digest waits.
- One send tick a minute asks, per reader, which local dates are due (`due_digests`): a date
  is due once its send instant (dates.send_instant: one per local date, whatever DST does)
  has passed, until `catch_up` later. The ledger (reader, local date) makes it exactly once,
  across ticks, restarts and overlapping runs. The first tick runs at start-up: that is the
  catch-up after downtime.
- A prune a day, the first at start-up (`[digest] keep`): entry content older than that goes,
  as `digest prune` deletes it, so an unattended database does not grow for ever.
- One `digest run` per database (an exclusive lock next to it); SIGTERM and SIGINT let the
  running jobs finish, then exit 0.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import base_url_problem
from digest.dates import passed_send_days
from digest.deliver import backend_for
from digest.errors import DigestError
from digest.ledger import FAILED, PENDING, SKIPPED, lost_report
from digest.models import iso_utc
from digest.poll import poll
from digest.retention import prune
from digest.send import Outcome, send_digests, settle
from digest.settings import Config, UserConfig
from digest.store import Store
from digest.warm import warm

log = logging.getLogger("digest.run")
TICK = 60  # seconds between send checks


class AlreadyRunning(DigestError):
    pass


@dataclass
class Due:
    user: UserConfig
    local: date  # the reader's local date
    late: timedelta

    @property
    def day(self) -> str:  # as the ledger keys it
        return self.local.isoformat()


def due_digests(config: Config, store: Store, now: datetime) -> tuple[list[Due], list[Due]]:
    """(due now, missed beyond catch_up), for the readers' local today and yesterday. Left
    out: dates the ledger settled, rows another run holds, and failed rows before their
    retry time (a refused address is tried hourly, not every minute)."""
    grace = timedelta(seconds=config.digest.catch_up)
    due, missed = [], []
    for u in config.users.values():
        if not u.email:  # chat channels only: due_days and notify.py
            continue
        for day, at in passed_send_days(u, now):
            row = store.delivery(u.name, day.isoformat())
            if row and (row.state not in (PENDING, FAILED) or row.held(now)):
                continue
            if now - at > grace:
                if row is None or row.state == PENDING:  # a failed one stays failed, reported
                    missed.append(Due(u, day, now - at))
            elif row is None or row.state == PENDING or row.retry_at <= iso_utc(now):
                due.append(Due(u, day, now - at))
    return due, missed


def due_days(config: Config, now: datetime) -> list[tuple[UserConfig, date]]:
    """(reader, local date) whose send instant has passed within catch_up, on their send
    days: what a chat channel is due for (the ledger says which it has had)."""
    grace = timedelta(seconds=config.digest.catch_up)
    return [(u, day) for u in config.users.values() for day, at in passed_send_days(u, now)
            if now <= at + grace]


def _notify(config: Config, store: Store, now: datetime, due: list[tuple[UserConfig, date]],
            sleep) -> None:
    wanted = [(u, d) for u, d in due if u.notify or u.notify_env]
    if not wanted:
        return
    from digest.notify import notify_digests

    for u, d in wanted:
        for r in notify_digests(config, store, [u], d, now, sleep=sleep, retry_now=False):
            level = logging.ERROR if r.state == Outcome.FAILED else logging.INFO
            log.log(level, "notify %s %s: %s, %d items (%s)", r.reader, r.day, r.state,
                    r.items, r.detail)


class Stopping(Exception):
    """`digest run` is stopping during an SMTP retry wait."""


def _wait_unless(stop: threading.Event | None):
    """A retry wait that ends, raising Stopping, as soon as `stop` is set: a shutdown must not
    sit out a backoff of minutes. The digest stays pending, so the next start sends it."""
    def wait(seconds: float) -> None:
        if stop is None:
            time.sleep(seconds)
        elif stop.wait(seconds):
            raise Stopping
    return wait


def send_tick(config: Config, now: datetime | None = None,
              stop: threading.Event | None = None) -> None:
    now = now or datetime.now(UTC)
    with Store(config.digest.database) as store:
        settle(store, backend_for(config))  # an outbox file cut off by a crash is due again
        due, missed = due_digests(config, store, now)
        for m in missed:
            if store.record_delivery(m.user.name, m.day, SKIPPED, now,
                                     detail=f"missed: the scheduler was down until "
                                            f"{_hours(m.late)} after the send time, past "
                                            "[digest] catch_up"):
                log.warning("send %s %s: missed (%s late), recorded as skipped", m.user.name,
                            m.day, _hours(m.late))
        by_day: dict[date, list[UserConfig]] = {}
        for d in due:
            by_day.setdefault(d.local, []).append(d.user)
        try:
            for day, users in sorted(by_day.items()):
                for r in send_digests(config, store, users, day, now, backend_for(config),
                                      sleep=_wait_unless(stop)):
                    level = (logging.ERROR if r.state in (Outcome.FAILED, Outcome.UNCONFIRMED)
                             else logging.INFO)
                    log.log(level, "send %s %s: %s, %d items%s", r.reader, r.day, r.state,
                            r.items, f" ({r.detail})" if r.detail else "")
            _notify(config, store, now, due_days(config, now), _wait_unless(stop))
        except Stopping:
            log.info("send: stopped during a retry wait; the digest stays pending and is sent "
                     "at the next start")


def poll_tick(config: Config) -> None:
    with Store(config.digest.database) as store:
        results = poll(config, store)
        for r in results:
            if r.status not in ("skipped", "inactive"):
                log.log(logging.WARNING if r.error else logging.INFO, "poll %s: %s, %d new%s",
                        r.feed, r.status, r.new, f" ({r.error})" if r.error else "")
        # Here, not at send time, where every reader's digest would wait for it.
        if any(r.new for r in results):
            try:
                done = warm(config, store, datetime.now(UTC))
            except Exception as e:  # noqa: BLE001 - an optimisation of the send: the poll stands
                log.warning("poll: preparing the next send failed (%s); the send will work out "
                            "what it needs", e)
                return
            if done:
                log.info("poll: ahead of the next send, %s", done)


def prune_tick(config: Config, now: datetime | None = None) -> None:
    keep = config.digest.keep
    if keep is None:  # "never"
        return
    now = now or datetime.now(UTC)
    with Store(config.digest.database) as store:
        done = prune(store, now - timedelta(seconds=keep))
    log.info("prune: %d entries older than %g days, %d cached embeddings nothing uses",
             done.entries, keep / 86400, done.vectors)


def lock(database: Path):
    """An exclusive lock on <database>.run.lock, held for the life of the process."""
    path = database.with_name(database.name + ".run.lock")
    f = open(path, "a+")  # noqa: SIM115 - held open until the process exits
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        pid = f.read().strip() or "?"
        f.close()
        raise AlreadyRunning(f"another `digest run` (pid {pid}) is already using {database}; "
                             "stop it first, or point this one at another database.") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def run(config: Config, stop: threading.Event | None = None,
        serve: Callable[[], None] | None = None) -> None:
    """Run until SIGTERM/SIGINT (or `stop` is set). Jobs under way finish first. `serve`, when
    given (`digest run --web`), serves the web pages in this thread until a signal stops it."""
    held = lock(config.digest.database)
    stop = stop or threading.Event()
    scheduler = BackgroundScheduler(timezone=UTC, executors={"default": ThreadPoolExecutor(2)},
                                    job_defaults={"max_instances": 1, "coalesce": True,
                                                  "misfire_grace_time": None})
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    if problem := base_url_problem(config.digest, config.smtp):
        log.warning("%s", problem)
    with Store(config.digest.database) as store:  # create or migrate it once, before any job
        for row in store.lost_deliveries(datetime.now(UTC)):
            log.error("send %s %s: %s", row.reader, row.day, lost_report(row))
    log.info("digest run: %d feeds, %d readers; catch-up window %s", len(config.feeds),
             len(config.users), _hours(timedelta(seconds=config.digest.catch_up)))
    _logged(poll_tick)(config)  # fresh entries first: a catch-up digest should include them
    now = datetime.now(UTC)
    scheduler.add_job(_logged(poll_tick), IntervalTrigger(seconds=TICK), args=[config],
                      id="poll", next_run_time=now + timedelta(seconds=TICK))
    scheduler.add_job(_logged(send_tick), IntervalTrigger(seconds=TICK), args=[config],
                      kwargs={"stop": stop}, id="send", next_run_time=now)
    scheduler.add_job(_logged(prune_tick), IntervalTrigger(days=1), args=[config], id="prune",
                      next_run_time=now)
    scheduler.start()
    log.info("digest run: started %s", iso_utc(now))
    try:
        if serve is not None:
            serve()  # returns on SIGTERM/SIGINT (the server's own handlers), or if it fails
            stop.set()
        # Not a bare stop.wait(): a SIGTERM the kernel hands to another thread does not wake
        # the main thread, and Python runs signal handlers only there.
        while not stop.wait(0.5):
            pass
    finally:
        log.info("digest run: stopping after the jobs under way")
        scheduler.shutdown(wait=True)
        for s, h in previous.items():
            signal.signal(s, h)
        held.close()
        log.info("digest run: stopped")


def _hours(d: timedelta) -> str:
    minutes = int(d.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _logged(job):
    """A job's failure is logged as one line and the schedule goes on."""
    def wrapper(*args, **kwargs):
        try:
            job(*args, **kwargs)
        except DigestError as e:
            log.error("%s: %s", job.__name__, e)
        except Exception as e:  # a bug; still keep the schedule alive
            log.exception("%s failed: %s", job.__name__, e)
    wrapper.__name__ = job.__name__
    return wrapper
