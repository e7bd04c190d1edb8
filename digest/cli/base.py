"""What every command shares: the group, the one place a library error becomes a
command-line one, and the parsing of what a user types (--date, durations, reader names)."""

from __future__ import annotations

import contextlib
import difflib
import logging
import sys
from datetime import date, timedelta
from pathlib import Path

import click
from rich.console import Console

from digest import __version__
from digest.config import load_config
from digest.dates import parse_day
from digest.errors import DigestError
from digest.settings import Config
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


def load(ctx: click.Context) -> Config:
    return load_config(ctx.obj["config_path"])


def day_option(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    """--date, parsed once here: everything inward takes a date."""
    return parse_day(value, where="--date") if value else None


def console() -> Console:
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



def reader_named(config: Config, name: str):
    """The reader a command names, or a sentence naming the readers there are."""
    if name not in config.users:
        close = difflib.get_close_matches(name, list(config.users), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise CliError(f"there is no reader named {name!r}{hint} in {config.path.name}; "
                       "`digest check` lists the readers.")
    return config.users[name]



@contextlib.contextmanager
def unlogged(name: str):
    """The logger `name` held to errors: for a command that says its warnings itself, so the
    operator's log line does not repeat them."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def write(data: bytes, out: str | None, what: str) -> None:
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


def duration_option(option: str, value: str) -> timedelta:
    """A command-line duration (30d, 12w, 6h)."""
    m = DURATION_RE.match(value)
    if not m:
        raise CliError(f"{option} {value!r} is not a duration; write e.g. 90d or 12w.")
    return timedelta(seconds=float(m.group(1)) * DURATION_UNITS[m.group(2)])


def duration(seconds: int) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds % DURATION_UNITS[unit] == 0:
            return f"{seconds // DURATION_UNITS[unit]}{unit}"
    return f"{seconds}s"


def check_port(host: str, port: int) -> None:
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        raise CliError(f"cannot listen on {host}:{port} ({e.strerror}); pass --port with a "
                       "free port (or set [web] port), or stop what uses it.") from None


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
