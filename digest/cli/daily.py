"""The daily pipeline's commands: poll, rank, render, send, and run (all of them on a schedule)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from digest.cli.base import (
    CliError,
    check_port,
    cli,
    console,
    day_option,
    load,
    reader_named,
    unlogged,
    url_host,
    write,
)
from digest.config import base_url_problem
from digest.models import UPDATED
from digest.settings import Config
from digest.store import Store


@cli.command()
@click.option("--feed", "names", multiple=True, metavar="NAME",
              help="Poll only this feed, due or not (repeatable).")
@click.option("--force", is_flag=True, help="Poll every feed now, ignoring schedules.")
@click.pass_context
def poll(ctx: click.Context, names: tuple[str, ...], force: bool) -> None:
    """Fetch due feeds once, store new entries, print a summary per feed. Exit 1 if any failed."""
    from digest.poll import poll as run_poll

    config = load(ctx)
    unknown = [n for n in names if n not in config.feeds]
    if unknown:
        raise CliError([f"there is no feed named {n!r} in {config.path.name}; `digest check` "
                        "lists the feeds." for n in unknown])
    out = console()
    with Store(config.digest.database) as store:
        if sys.stderr.isatty():
            with Progress(TextColumn("polling"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.description}"), TimeElapsedColumn(),
                          console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("", total=None)
                results = run_poll(
                    config, store, names=list(names) or None, force=force,
                    on_start=lambda n: bar.update(task, total=n),
                    on_result=lambda r: bar.update(task, advance=1, description=r.feed))
        else:
            results = run_poll(config, store, names=list(names) or None, force=force)
        table = Table("feed", "status", "new", "total", "seconds", "error / warning")
        for r in results:
            table.add_row(r.feed, r.status, str(r.new), str(r.total), f"{r.seconds:.2f}",
                          r.error or r.warning or (f"next poll {r.next_poll_at}"
                                                   if r.status == "skipped" else ""))
        out.print(table)
        if any(r.new for r in results):
            _warm(config, store)
    failed = [r for r in results if r.status in ("error", "gone")]
    if failed:
        raise CliError(f"{len(failed)} of {len(results)} feeds failed: "
                       f"{', '.join(r.feed for r in failed)}; see the error column above.")


def _warm(config: Config, store: Store) -> None:
    """The next send's work (warm.py), after the table: with the semantic extra it can take
    minutes. A failure is the send's to report (it works out what is missing); the poll
    itself succeeded."""
    from digest.warm import warm

    try:
        done = warm(config, store, datetime.now(UTC))
    except Exception as e:  # noqa: BLE001 - e.g. a broken model install: say so, keep the poll
        click.echo(f"Warning: preparing the next send failed ({e}); the send will work out "
                   "what it needs.", err=True)
        return
    if done:
        click.echo(f"Ahead of the next send: {done}.")


@cli.command()
@click.argument("user")
@click.option("--date", "day", metavar="YYYY-MM-DD", callback=day_option,
              help="The digest of this local date.")
@click.option("--all", "everything", is_flag=True,
              help="Rank every stored entry of the reader's feeds, no window, floor or limit.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list of {id, title, link, score, reasons, sources, section, "
              "highlight, tldr, code, data, ...}.")
@click.pass_context
def rank(ctx: click.Context, user: str, day: date | None, everything: bool, limit: int | None,
         as_json: bool) -> None:
    """The reader's ranked entries with scores and reasons. Without --all: what their digest
    would hold (new entries in the window, above the score floor, near-duplicates collapsed;
    then its Updated section)."""
    from digest.compose import ranking

    config = load(ctx)
    if day and everything:
        raise CliError("--date and --all do not go together; pick one.")
    reader = reader_named(config, user)
    with Store(config.digest.database) as store, unlogged("digest.rank"):  # said below, once
        ranked, warnings = ranking(config, store, reader, day, datetime.now(UTC), everything, limit)
    for w in warnings:
        click.echo(f"Warning: {w}", err=True)
    if as_json:
        click.echo(json.dumps([r.as_json() for r in ranked], ensure_ascii=False, indent=1))
        return
    table = Table("#", "score", "title", "why", "sources")
    for i, r in enumerate(ranked, 1):
        where = "trending" if r.trending else r.section
        score = "" if r.section == UPDATED else f"{r.score:.3f}"  # told of, not ranked
        table.add_row(str(i), score, r.title + (f" ({where})" if where else ""),
                      "; ".join(r.reasons), ", ".join(r.sources))
    console().print(table if ranked else "Nothing new in this window.")


@cli.command()
@click.argument("user")
@click.option("--date", "day", metavar="YYYY-MM-DD", callback=day_option,
              help="The digest of this local date (default: today, up to now).")
@click.option("--format", "fmt", type=click.Choice(["html", "text", "eml", "atom"]), default="html",
              show_default=True, help="HTML body, text/plain twin, the whole email (RFC 5322), "
              "or the reader's last 30 delivered digests as an Atom feed.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write to FILE instead of stdout.")
@click.pass_context
def render(ctx: click.Context, user: str, day: date | None, fmt: str, out: str | None) -> None:
    """The reader's digest exactly as it would be emailed."""
    from digest.daily import render_digests
    from digest.message import build_message
    from digest.render import EMAIL_BUDGET

    config = load(ctx)
    reader = reader_named(config, user)
    now = datetime.now(UTC)
    if fmt == "atom":
        if day:
            raise CliError("--date and --format atom do not go together: the feed holds every "
                           "delivered digest; drop --date.")
        return write(_atom(config, reader, now), out, f"the Atom feed of {reader.name}")
    with Store(config.digest.database) as store:
        (done,) = render_digests(config, store, [reader], day, now, budget=EMAIL_BUDGET)
    for w in done.digest.warnings:
        click.echo(f"Warning: {w}", err=True)
    if fmt == "eml":
        data = bytes(build_message(config, reader, done.view, done.html, done.text, now))
    else:
        data = (done.html if fmt == "html" else done.text).encode()
    write(data, out, f"the {fmt} digest of {user} for {done.view.date}")


def _atom(config: Config, reader, now: datetime) -> bytes:
    from digest.atom import digest_feed
    from digest.links import Links

    with Store(config.digest.database) as store:
        return digest_feed(config, store, reader, Links.of(config), now).body


@cli.command()
@click.argument("users", nargs=-1, metavar="[USER]...")
@click.option("--date", "day", metavar="YYYY-MM-DD", callback=day_option,
              help="Send the digests of this local date (default: each reader's today).")
@click.option("--dry-run", is_flag=True, help="Rank and render, say what would be sent, send nothing.")
@click.option("--resend-unconfirmed", "resend", is_flag=True,
              help="Send the unconfirmed digests again, as first composed (of --date, or of "
                   "every date). The one way to send a digest twice: ask the reader first.")
@click.pass_context
def send(ctx: click.Context, users: tuple[str, ...], day: date | None, dry_run: bool,
         resend: bool) -> None:
    """Rank, render and deliver each reader's digest, once per reader and local date."""
    from digest.deliver import backend_for
    from digest.send import Outcome, send_digests

    config = load(ctx)
    readers = [reader_named(config, u) for u in users] if users else list(config.users.values())
    now = datetime.now(UTC)
    if problem := base_url_problem(config.digest, config.smtp):
        click.echo(f"Warning: {problem}", err=True)
    backend = backend_for(config)
    with Store(config.digest.database) as store:
        results = send_digests(config, store, readers, day, now, backend, dry_run=dry_run,
                               resend=resend)
        if not dry_run and not resend and any(u.notify or u.notify_env for u in readers):
            from digest.notify import notify_digests

            results += notify_digests(config, store, readers, day, now)
    where = (f"SMTP {config.smtp.host}" if config.smtp else f"the outbox {config.digest.outbox}")
    words = {Outcome.SENT: f"sent to {where}", Outcome.WOULD_SEND: "would be sent",
             Outcome.ALREADY: "already done for this date; nothing sent",
             Outcome.SKIPPED: "skipped", Outcome.BUSY: "another run is sending it; nothing sent",
             Outcome.FAILED: "FAILED", Outcome.UNCONFIRMED: "UNCONFIRMED"}
    for r in results:
        detail = f" ({r.detail})" if r.detail and r.state != Outcome.ALREADY else ""
        sent = (f"sent to {r.detail}" if r.state == Outcome.SENT and r.detail.startswith("notify:")
                else words[r.state])
        click.echo(f"{r.reader} {r.day}: {sent}, {r.items} items"
                   f"{'' if sent != words[r.state] else detail}")
    if resend and not results:
        click.echo("Nothing to resend: no digest" + (f" of {day}" if day else "")
                   + " is unconfirmed.")
    if results and all(r.state == Outcome.ALREADY for r in results):
        click.echo("Nothing to send: every digest of this date went out already.")
    failed = [r.reader for r in results if r.state == Outcome.FAILED]
    unsure = [f"{r.reader} ({r.day})" for r in results if r.state == Outcome.UNCONFIRMED]
    problems = []
    if failed:
        problems.append(f"{len(failed)} of {len(results)} digests failed: {', '.join(failed)}; "
                        "the others were delivered, and `digest send` (or `digest run`, "
                        "after a wait) retries the failed ones.")
    if unsure:
        problems.append(f"{len(unsure)} digests are unconfirmed: {', '.join(unsure)}; they may "
                        "have arrived, so they are not sent again by themselves: ask the "
                        "readers, then `digest send --resend-unconfirmed` sends them again.")
    if problems:
        raise CliError(problems)


@cli.command(name="run")
@click.option("--web", is_flag=True,
              help="Serve the web pages ([web] host and port) in the same process.")
@click.pass_context
def run_cmd(ctx: click.Context, web: bool) -> None:
    """The daily schedule: poll each feed on its interval, send each reader's digest at their
    local send time, catch up after downtime. One per database; SIGTERM/Ctrl-C stop it."""
    import logging

    from digest import schedule

    config = load(ctx)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S%z")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    serve = None
    if web:
        import uvicorn

        from digest.preview import create_app

        host, port = config.web.host, config.web.port
        check_port(host, port)
        server = uvicorn.Server(uvicorn.Config(create_app(config.path, host), host=host, port=port,
                                               log_level="warning", lifespan="off"))

        def serve() -> None:
            logging.getLogger("digest.run").info("digest run: web pages at http://%s:%d/",
                                                 url_host(host), port)
            server.run()
    schedule.run(config, serve=serve)


