"""The command line: thin click commands over the library. The only place that turns
DigestError into click exceptions and exit codes."""

from __future__ import annotations

import difflib
import json
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from digest import __version__
from digest.config import base_url_problem, load_config
from digest.dates import parse_day
from digest.errors import DigestError
from digest.settings import Config
from digest.store import Store
from digest.values import DURATION_RE, DURATION_UNITS


class CliError(click.ClickException):
    """One or more one-sentence problems, each printed on its own `Error:` line."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

    def show(self, file=None) -> None:
        for p in self.problems:
            click.echo(f"Error: {p}", err=True)


class Commands(click.Group):
    """The one place a library error becomes a command-line one: its sentences, exit 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DigestError as e:
            raise CliError(e.problems) from None


def _load(ctx: click.Context) -> Config:
    return load_config(ctx.obj["config_path"])


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    """--date, parsed once here: everything inward takes a date."""
    return parse_day(value, where="--date") if value else None


def _out() -> Console:
    # A pipe gets plain text, wide enough that table rows are not wrapped mid-URL.
    # markup=False: feed titles and errors contain [brackets] that are not rich markup.
    return Console(highlight=False, markup=False, width=None if sys.stdout.isatty() else 160)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", envvar="DIGEST_CONFIG",
              default="config.toml", show_default=True,
              help="Config file (or set DIGEST_CONFIG).")
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config_path: str) -> None:
    """Personalized feed → email digests."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = Path(config_path)


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the config; list feeds and readers. Exit 1 on any error. No network."""
    from digest.checks import check as check_config

    config = _load(ctx)
    report = check_config(config)
    out = _out()
    out.print(f"{config.path}: OK")
    feeds = Table("feed", "source", "kind", "every", title=f"{len(config.feeds)} feeds",
                  title_justify="left")
    for f in config.feeds.values():
        feeds.add_row(f.name, f.location, f.kind, _duration(f.every))
    out.print(feeds)
    users = Table("reader", "email", "sends at", "feeds", "profile",
                  title=f"{len(config.users)} readers", title_justify="left")
    for u in config.users.values():
        profile = [f"{len(u.interests)} interests"] if u.interests else []
        profile += [f"library {u.papers.name}"] if u.papers else []
        profile += [f"{len(u.authors)} authors"] if u.authors else []
        users.add_row(u.name, u.email, f"{u.send_time:%H:%M} {u.timezone}",
                      ", ".join(u.feeds) or "all", "; ".join(profile) or "none (popularity only)")
    out.print(users)
    smtp = config.smtp
    out.print(f"Delivery: SMTP {smtp.host}:{smtp.port} ({smtp.security})" if smtp
              else "Delivery: outbox folder (no [smtp] section)")
    out.print(f"Ranking: {report.ranking}")
    for reader, papers, file in report.libraries:
        out.print(f"Library of {reader}: {papers} papers from {file}")
    for w in report.warnings:
        click.echo(f"Warning: {w}", err=True)


@cli.command()
@click.option("--feed", "names", multiple=True, metavar="NAME",
              help="Poll only this feed, due or not (repeatable).")
@click.option("--force", is_flag=True, help="Poll every feed now, ignoring schedules.")
@click.pass_context
def poll(ctx: click.Context, names: tuple[str, ...], force: bool) -> None:
    """Fetch due feeds once, store new entries, print a summary per feed. Exit 1 if any failed."""
    from digest.poll import poll as run_poll

    config = _load(ctx)
    unknown = [n for n in names if n not in config.feeds]
    if unknown:
        raise CliError([f"there is no feed named {n!r} in {config.path.name}; `digest check` "
                        "lists the feeds." for n in unknown])
    out = _out()
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
    failed = [r for r in results if r.status in ("error", "gone")]
    if failed:
        raise CliError(f"{len(failed)} of {len(results)} feeds failed: "
                       f"{', '.join(r.feed for r in failed)}; see the error column above.")


@cli.command()
@click.argument("user")
@click.option("--date", "day", metavar="YYYY-MM-DD", callback=_day,
              help="The digest of this local date.")
@click.option("--all", "everything", is_flag=True,
              help="Rank every stored entry of the reader's feeds, no window, floor or limit.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list of {id, title, link, score, reasons, sources, ...}.")
@click.pass_context
def rank(ctx: click.Context, user: str, day: date | None, everything: bool, limit: int | None,
         as_json: bool) -> None:
    """The reader's ranked entries with scores and reasons. Without --all: what their digest
    would hold (new entries in the window, above the score floor, near-duplicates collapsed)."""
    from digest.compose import ranking

    config = _load(ctx)
    if day and everything:
        raise CliError("--date and --all do not go together; pick one.")
    reader = _reader(config, user)
    with Store(config.digest.database) as store:
        ranked, warnings = ranking(config, store, reader, day, datetime.now(UTC), everything, limit)
    for w in warnings:
        click.echo(f"Warning: {w}", err=True)
    if as_json:
        click.echo(json.dumps([r.as_json() for r in ranked], ensure_ascii=False, indent=1))
        return
    table = Table("#", "score", "title", "why", "sources")
    for i, r in enumerate(ranked, 1):
        table.add_row(str(i), f"{r.score:.3f}", r.title + (" (trending)" if r.trending else ""),
                      "; ".join(r.reasons), ", ".join(r.sources))
    _out().print(table if ranked else "Nothing new in this window.")


@cli.command()
@click.argument("user")
@click.option("--date", "day", metavar="YYYY-MM-DD", callback=_day,
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

    config = _load(ctx)
    reader = _reader(config, user)
    now = datetime.now(UTC)
    if fmt == "atom":
        if day:
            raise CliError("--date and --format atom do not go together: the feed holds every "
                           "delivered digest; drop --date.")
        return _write(_atom(config, reader, now), out, f"the Atom feed of {reader.name}")
    with Store(config.digest.database) as store:
        (done,) = render_digests(config, store, [reader], day, now, budget=EMAIL_BUDGET)
    for w in done.digest.warnings:
        click.echo(f"Warning: {w}", err=True)
    if fmt == "eml":
        data = bytes(build_message(config, reader, done.view, done.html, done.text, now))
    else:
        data = (done.html if fmt == "html" else done.text).encode()
    _write(data, out, f"the {fmt} digest of {user} for {done.view.date}")


def _atom(config: Config, reader, now: datetime) -> bytes:
    from digest.atom import digest_feed
    from digest.daily import links_for

    with Store(config.digest.database) as store:
        return digest_feed(config, store, reader, links_for(config), now).body


def _write(data: bytes, out: str | None, what: str) -> None:
    """To stdout, or to the file --out names."""
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        Path(out).write_bytes(data)
    except OSError as e:
        raise CliError(f"cannot write {out} ({e.strerror}); choose another --out.") from None
    click.echo(f"Wrote {what} to {out}.", err=True)


@cli.command()
@click.argument("users", nargs=-1, metavar="[USER]...")
@click.option("--date", "day", metavar="YYYY-MM-DD", callback=_day,
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
    from digest.send import send_digests

    config = _load(ctx)
    readers = [_reader(config, u) for u in users] if users else list(config.users.values())
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
    words = {"sent": f"sent to {where}", "would-send": "would be sent",
             "already": "already done for this date; nothing sent", "skipped": "skipped",
             "busy": "another run is sending it; nothing sent", "failed": "FAILED",
             "unconfirmed": "UNCONFIRMED"}
    for r in results:
        detail = f" ({r.detail})" if r.detail and r.state != "already" else ""
        sent = (f"sent to {r.detail}" if r.state == "sent" and r.detail.startswith("notify:")
                else words[r.state])
        click.echo(f"{r.reader} {r.day}: {sent}, {r.items} items"
                   f"{'' if sent != words[r.state] else detail}")
    if resend and not results:
        click.echo("Nothing to resend: no digest" + (f" of {day}" if day else "")
                   + " is unconfirmed.")
    if results and all(r.state == "already" for r in results):
        click.echo("Nothing to send: every digest of this date went out already.")
    failed = [r.reader for r in results if r.state == "failed"]
    unsure = [f"{r.reader} ({r.day})" for r in results if r.state == "unconfirmed"]
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


@cli.command()
@click.option("--dir", "folder", default="digest-demo", show_default=True, metavar="DIR",
              type=click.Path(file_okay=False), help="Folder for the demo's files (made fresh).")
@click.option("--no-serve", is_flag=True, help="Do not start the preview afterwards.")
def demo(folder: str, no_serve: bool) -> None:
    """Offline demo: sample feeds, three readers, one digest each into DIR/outbox, then the
    preview. Ignores --config."""
    from digest import demo as sample

    root = Path(folder).resolve()
    try:
        results = sample.run(root, datetime.now(UTC))
    except (DigestError, OSError) as e:
        raise CliError(f"the demo failed in {root} ({e}); choose another --dir.") from None
    for r in results:
        path = root / "outbox" / r.day / f"{r.reader}.eml"
        click.echo(f"{r.reader}: {r.items} items → {path}" if r.state == "sent"
                   else f"{r.reader}: {r.state} ({r.detail})")
    cfg = root / "config.toml"
    # --all: the digests just sent moved every reader's window past today's entries.
    click.echo(f"\nTry: digest --config {cfg} rank ada --all\n     digest --config {cfg} render "
               "grace --format text")
    if no_serve:
        return

    from digest.preview import create_app

    _serve(create_app(cfg), "127.0.0.1", 8750, "Preview: http://127.0.0.1:8750/ (Ctrl-C stops)")


@cli.command(name="run")
@click.option("--web", is_flag=True,
              help="Serve the web pages ([web] host and port) in the same process.")
@click.pass_context
def run_cmd(ctx: click.Context, web: bool) -> None:
    """The daily schedule: poll each feed on its interval, send each reader's digest at their
    local send time, catch up after downtime. One per database; SIGTERM/Ctrl-C stop it."""
    import logging

    from digest import schedule

    config = _load(ctx)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S%z")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    serve = None
    if web:
        import uvicorn

        from digest.preview import create_app

        host, port = config.web.host, config.web.port
        _check_port(host, port)
        server = uvicorn.Server(uvicorn.Config(create_app(config.path, host), host=host, port=port,
                                               log_level="warning", lifespan="off"))

        def serve() -> None:
            logging.getLogger("digest.run").info("digest run: web pages at http://%s:%d/",
                                                 _url_host(host), port)
            server.run()
    schedule.run(config, serve=serve)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; keep the default unless you put a proxy in front.")
@click.option("--port", default=8750, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.pass_context
def preview(ctx: click.Context, host: str, port: int) -> None:
    """Serve the digests in a browser, exactly as emailed, with feed health."""

    from digest.preview import create_app

    config = _load(ctx)  # fail now, in the terminal, rather than on the first page
    _serve(create_app(config.path, host), host, port,
           f"Previewing {config.path.name} at http://{_url_host(host)}:{port}/ (Ctrl-C stops).")


def _serve(app, host: str, port: int, banner: str) -> None:
    """Run the preview; a busy port is a one-sentence error, not uvicorn's exit status 3."""
    import uvicorn

    _check_port(host, port)
    click.echo(banner)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _check_port(host: str, port: int) -> None:
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        raise CliError(f"cannot listen on {host}:{port} ({e.strerror}); pass --port with a "
                       "free port (or set [web] port), or stop what uses it.") from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _reader(config: Config, name: str):
    if name not in config.users:
        close = difflib.get_close_matches(name, list(config.users), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise CliError(f"there is no reader named {name!r}{hint} in {config.path.name}; "
                       "`digest check` lists the readers.")
    return config.users[name]


@cli.command()
@click.argument("query", nargs=-1)
@click.option("--reader", metavar="NAME", help="Only entries of this reader's feeds, and their digests.")
@click.option("--author", default="", metavar="NAME", help="Only entries with this author.")
@click.option("--since", metavar="DURATION", help="Only entries published this recently (e.g. 30d).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list of {id, title, link, authors, published, sources, digests}.")
@click.pass_context
def search(ctx: click.Context, query: tuple[str, ...], reader: str | None, author: str,
           since: str | None, limit: int, as_json: bool) -> None:
    """Search every stored entry (title, authors, abstract), best first: words and
    "quoted phrases" must all match; each hit names the digests that held it."""
    from digest.search import search as find

    config = _load(ctx)
    user = _reader(config, reader) if reader else None
    after = datetime.now(UTC) - _duration_option("--since", since) if since else None
    with Store(config.digest.database) as store:
        hits = find(config, store, " ".join(query), reader=user, author=author, since=after,
                    limit=limit)
    if as_json:
        click.echo(json.dumps([h.as_json() for h in hits], ensure_ascii=False, indent=1))
        return
    table = Table("title", "authors", "published", "in digests")
    for h in hits:
        table.add_row(h.title, ", ".join(h.authors[:3]), h.published[:10],
                      ", ".join(f"{r} {d}" for r, d in h.digests[:3]) or "–")
    _out().print(table if hits else "No stored entry matches.")


@cli.group(invoke_without_command=True)
@click.pass_context
def feeds(ctx: click.Context) -> None:
    """Health of each feed (last success, errors, next poll, URL changes), refused readers and
    digests that may not have arrived."""
    if ctx.invoked_subcommand:
        return
    from digest.health import health, reader_trouble

    config = _load(ctx)
    with Store(config.digest.database) as store:
        report = health(config, store, datetime.now(UTC))
    table = Table("feed", "state", "entries", "last success", "errors", "next poll",
                  "url / last error")
    for r in report.feeds:
        table.add_row(r.name, r.state, str(r.entries), r.last_success or "never", str(r.errors),
                      r.next_poll or "now", (r.last_error or r.url)
                      + (f" ({r.moved})" if r.moved else ""))
    out = _out()
    out.print(table)
    for sentence in [reader_trouble(r) for r in report.readers] + report.lost:
        out.print(sentence[0].upper() + sentence[1:])


@cli.group()
def readers() -> None:
    """Change a reader's subscription state."""


@readers.command()
@click.argument("name")
@click.pass_context
def resubscribe(ctx: click.Context, name: str) -> None:
    """Undo an unsubscribe: NAME gets the digest again from the next one on."""
    config = _load(ctx)
    reader = _reader(config, name)
    with Store(config.digest.database) as store:
        was = store.reader_state(reader.name).unsubscribed_at
        if was:
            store.set_reader(reader.name, unsubscribed_at="")
    click.echo(f"{reader.name} is subscribed again (unsubscribed since {was})." if was
               else f"{reader.name} was not unsubscribed; nothing changed.")


@feeds.command(name="import")
@click.argument("opml_file", metavar="FILE.opml", type=click.Path(dir_okay=False))
@click.option("--print", "print_only", is_flag=True,
              help="Print the TOML to add instead of writing it into the config.")
@click.pass_context
def feeds_import(ctx: click.Context, opml_file: str, print_only: bool) -> None:
    """Add the feeds of an OPML subscription list to the config, keeping its comments."""
    from digest.opml import add_feeds, read_opml

    config = _load(ctx)
    found = read_opml(Path(opml_file))
    before = config.path.read_text()
    after, added, skipped = add_feeds(before, found)
    if print_only:
        click.echo(after[len(before):] if after.startswith(before) else after)
    else:
        config.path.write_text(after)
        _load(ctx)  # the result must still be a valid config
    click.echo(f"{'Would add' if print_only else 'Added'} {len(added)} feeds"
               f"{': ' + ', '.join(added) if added else ''}; {len(skipped)} already in "
               f"{config.path.name}.", err=True)


@cli.command()
@click.argument("folder", default=".", metavar="[DIR]", type=click.Path(file_okay=False))
def init(folder: str) -> None:
    """Write a commented config.toml to start from (never over an existing one), and
    config.schema.json beside it for editors."""
    from importlib.resources import files

    from digest.schema import schema_json

    target = Path(folder) / "config.toml"
    if target.exists():
        raise CliError(f"{target} exists already; edit it, or run init in another folder.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((files("digest") / "samples" / "config.toml").read_text())
        (target.parent / SCHEMA_FILE).write_text(schema_json())
    except OSError as e:
        raise CliError(f"cannot write {target} ({e.strerror}); choose another folder.") from None
    click.echo(f"Wrote {target} and {SCHEMA_FILE} (for your editor). Next: edit the readers and "
               f"feeds, then `digest --config {target} check`.")


SCHEMA_FILE = "config.schema.json"  # named on the first line of the config init writes


@cli.command()
def schema() -> None:
    """Print the JSON Schema of config.toml, for editors that complete and check TOML (Taplo,
    Even Better TOML): save it and name it on the config's first line, `#:schema ./FILE`."""
    from digest.schema import schema_json

    click.echo(schema_json(), nl=False)


@cli.command()
@click.option("--older-than", default="180d", show_default=True, metavar="DURATION",
              help="Delete entry content older than this (e.g. 90d).")
@click.pass_context
def prune(ctx: click.Context, older_than: str) -> None:
    """Delete old entry content. Identities are kept, so old items never come back as new."""
    cutoff = datetime.now(UTC) - _duration_option("--older-than", older_than)
    config = _load(ctx)
    with Store(config.digest.database) as store:
        removed = store.prune(cutoff)
    click.echo(f"Pruned {removed} entries older than {older_than}.")


def _duration_option(option: str, value: str) -> timedelta:
    """A command-line duration (30d, 12w, 6h)."""
    m = DURATION_RE.match(value)
    if not m:
        raise CliError(f"{option} {value!r} is not a duration; write e.g. 90d or 12w.")
    return timedelta(seconds=float(m.group(1)) * DURATION_UNITS[m.group(2)])


def _duration(seconds: int) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds % DURATION_UNITS[unit] == 0:
            return f"{seconds // DURATION_UNITS[unit]}{unit}"
    return f"{seconds}s"


def main() -> None:
    """Console-script entry point. A traceback is a bug, so none reaches the user unless
    DIGEST_DEBUG is set."""
    try:
        cli.main(prog_name="digest")
    except Exception as e:
        if os.environ.get("DIGEST_DEBUG"):
            raise
        click.echo(f"Error: internal error ({type(e).__name__}: {e}); rerun with DIGEST_DEBUG=1 "
                   "and report the traceback.", err=True)
        sys.exit(2)
