"""The commands that serve pages: preview, and demo (which serves one when it is done)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from digest.cli.base import (
    CliError,
    check_port,
    cli,
    load,
    url_host,
)
from digest.errors import DigestError


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


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; keep the default unless you put a proxy in front.")
@click.option("--port", default=8750, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.pass_context
def preview(ctx: click.Context, host: str, port: int) -> None:
    """Serve the digests in a browser, exactly as emailed, with feed health."""

    from digest.preview import create_app

    config = load(ctx)  # fail now, in the terminal, rather than on the first page
    _serve(create_app(config.path, host), host, port,
           f"Previewing {config.path.name} at http://{url_host(host)}:{port}/ (Ctrl-C stops).")


def _serve(app, host: str, port: int, banner: str) -> None:
    """Run the preview; a busy port is a one-sentence error, not uvicorn's exit status 3."""
    import uvicorn

    check_port(host, port)
    click.echo(banner)
    uvicorn.run(app, host=host, port=port, log_level="warning")



