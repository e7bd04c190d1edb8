"""The operator's commands: check, feeds, readers, search, init, schema, prune."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from digest.cli.base import (
    CliError,
    cli,
    console,
    duration,
    duration_option,
    load,
    reader_named,
)
from digest.store import Store


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the config; list feeds and readers. Exit 1 on any error. No network."""
    from digest.checks import check as check_config

    config = load(ctx)
    report = check_config(config)
    out = console()
    out.print(f"{config.path}: OK")
    feeds = Table("feed", "source", "kind", "every", title=f"{len(config.feeds)} feeds",
                  title_justify="left")
    for f in config.feeds.values():
        feeds.add_row(f.name, f.location, f.kind, duration(f.every))
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
        out.print(f"Library of {reader}: {papers} paper{'' if papers == 1 else 's'} from {file}")
    for reader, muted in report.mutes.items():
        out.print(f"Muted by {reader}: {'; '.join(muted)}", markup=False)
    for w in report.warnings:
        click.echo(f"Warning: {w}", err=True)


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

    config = load(ctx)
    user = reader_named(config, reader) if reader else None
    after = datetime.now(UTC) - duration_option("--since", since) if since else None
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
    console().print(table if hits else "No stored entry matches.")


@cli.group(invoke_without_command=True)
@click.pass_context
def feeds(ctx: click.Context) -> None:
    """Health of each feed (last success, errors, next poll, URL changes), refused readers and
    digests that may not have arrived."""
    if ctx.invoked_subcommand:
        return
    from digest.health import health, reader_trouble

    config = load(ctx)
    with Store(config.digest.database) as store:
        report = health(config, store, datetime.now(UTC))
    table = Table("feed", "state", "entries", "last success", "errors", "next poll",
                  "url / last error")
    for r in report.feeds:
        table.add_row(r.name, r.state, str(r.entries), r.last_success or "never", str(r.errors),
                      r.next_poll or "now", (r.last_error or r.url)
                      + (f" ({r.moved})" if r.moved else ""))
    out = console()
    out.print(table)
    notes = []  # the sources' calendars: a quiet day once, each stalled feed
    for r in report.feeds:
        notes += [n for n in r.note.split("; ") if n and n not in notes]
    for sentence in [reader_trouble(r) for r in report.readers] + report.lost:
        notes.append(sentence[0].upper() + sentence[1:])
    for sentence in notes:
        out.print(sentence, markup=False)


@cli.group()
def readers() -> None:
    """Change a reader's subscription state."""


@readers.command()
@click.argument("name")
@click.pass_context
def resubscribe(ctx: click.Context, name: str) -> None:
    """Undo an unsubscribe: NAME gets the digest again from the next one on."""
    config = load(ctx)
    reader = reader_named(config, name)
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

    config = load(ctx)
    found = read_opml(Path(opml_file))
    before = config.path.read_text()
    after, added, skipped = add_feeds(before, found)
    if print_only:
        click.echo(after[len(before):] if after.startswith(before) else after)
    else:
        config.path.write_text(after)
        load(ctx)  # the result must still be a valid config
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
@click.option("--older-than", default=None, metavar="DURATION",
              help="Delete entry content older than this (e.g. 90d); default: [digest] keep.")
@click.pass_context
def prune(ctx: click.Context, older_than: str | None) -> None:
    """Delete old entry content, and the cached embeddings no entry, library or 👍 item needs.
    What a reader voted on stays; identities are kept, so old items never come back as new."""
    from digest.retention import prune as prune_store

    config = load(ctx)
    if older_than is None:
        if config.digest.keep is None:
            raise CliError('[digest] keep is "never": nothing is old enough to prune; pass '
                           "--older-than (e.g. 180d) to prune all the same.")
        older_than = duration(config.digest.keep)
    cutoff = datetime.now(UTC) - duration_option("--older-than", older_than)
    with Store(config.digest.database) as store:
        done = prune_store(store, cutoff)
    click.echo(f"Pruned {done.entries} entries older than {older_than}, and {done.vectors} "
               "cached embeddings nothing uses.")


