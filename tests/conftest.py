"""Shared test helpers: config files in tmp_path, a loopback HTTP server, the CLI runner."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
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


def mangled(rnd, body: bytes, snippets: list[bytes], edits: int = 5) -> bytes:
    """A seeded fuzz's mutant of `body`: 1 to `edits` edits, each a snippet inserted, a run
    deleted, the rest cut off or a byte flipped, at random places."""
    out = bytearray(body)
    for _ in range(rnd.randint(1, edits)):
        at, op = rnd.randrange(len(out) + 1), rnd.random()
        if op < 0.45:
            out[at:at] = rnd.choice(snippets)
        elif op < 0.7:
            del out[at:at + rnd.randint(1, 80)]
        elif op < 0.8:
            del out[at:]
        elif out:
            out[at % len(out)] = rnd.randrange(256)
    return bytes(out)


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


class LiveServer:
    """An ASGI app served by uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, app):
        import threading

        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        import time

        deadline = time.monotonic() + 10
        while not self.server.started:  # startup takes milliseconds; bounded anyway
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the preview server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_preview():
    """Start the preview for a project's config: live_preview(project) → base URL."""
    from digest.preview import create_app

    servers = []

    def start(project, now=None):
        servers.append(LiveServer(create_app(project.path, now=now)))
        return servers[-1].url

    yield start
    for s in servers:
        s.stop()


# -- a real SMTP server on 127.0.0.1 (aiosmtpd) ----------------------------------------------

class Recorder:
    """An SMTP handler that accepts, or answers DATA with the scripted replies in turn."""

    def __init__(self):
        self.messages: list[bytes] = []
        self.replies: list[str] = []
        self.sessions = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        if self.replies:
            reply = self.replies.pop(0)
            if not reply.startswith("250"):
                return reply
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()
