"""The command line: thin click commands over the library, one module per kind of command
(base.py holds what they share). Each command parses, calls the library, prints."""

from __future__ import annotations

import os
import sys

import click

from digest.cli import admin, daily, web  # noqa: F401 - importing a module registers its commands
from digest.cli.base import cli


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


__all__ = ["cli", "main"]
