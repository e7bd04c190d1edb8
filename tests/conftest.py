"""Shared test helpers: config files in tmp_path, a loopback HTTP server, the CLI runner."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import load_config
from digest.store import Store

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def httpserver_listen_address():
    return ("127.0.0.1", 0)  # loopback only, never "localhost" (could be ::1 or elsewhere)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class Project:
    """A config.toml in a temp directory, with helpers to load it and run the CLI on it."""

    def __init__(self, root: Path):
        self.root = root
        self.path = root / "config.toml"

    def write(self, body: str, *, private: bool = True, extra_digest: str = "") -> Project:
        head = f'[digest]\ndatabase = "digest.db"\nallow_private_networks = {str(private).lower()}\n'
        self.path.write_text(head + textwrap.dedent(extra_digest) + "\n" + textwrap.dedent(body))
        return self

    def config(self):
        return load_config(self.path)

    def store(self) -> Store:
        return Store(self.root / "digest.db")

    def run(self, *args: str, **kw):
        return CliRunner().invoke(cli, ["--config", str(self.path), *args], catch_exceptions=False,
                                  **kw)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)
