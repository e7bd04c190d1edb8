"""The web server on a public name, served by real uvicorn on 127.0.0.1 and asked with real
HTTP requests: private pages behind a proxy, the login, trusted proxies, expiring view links,
bad dates, and a slow page that must not hold up the others."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from test_render import NORMAL, NOW, write_project

from digest.links import Links

PRIVATE = ["/", "/archive", "/health", "/search?q=style", "/digest/ada/2026-11-22"]


def web(project, body: str) -> None:
    project.path.write_text(project.path.read_text() + f"\n[web]\n{body}\n")


def get(url, **kw):
    return httpx.get(url, timeout=30, **kw)


def heavy_preview(project, live_preview, loops: int, settings: str) -> str:
    """The preview with a digest.txt override that loops `loops` times: a page that is slow
    for real (seconds of CPU), with no hook in the code."""
    (project.root / "tpl").mkdir()
    (project.root / "tpl" / "digest.txt").write_text(
        f"{{% for i in range({loops}) %}}{{% endfor %}}{{{{ v.reader }}}}\n")
    write_project(project, NORMAL, extra='templates = "tpl"')
    web(project, settings)
    return live_preview(project, now=lambda: NOW)


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-For": "203.0.113.9"},  # a proxy nobody declared, forwarding a stranger
    {"X-Forwarded-For": "127.0.0.1"},  # a forgery, or a proxy that is not trusted
    {"Forwarded": "for=127.0.0.1"},
    {"Host": "digest.example.org"},  # a proxy that passes the public Host and no X-F-F
])
def test_a_proxied_stranger_sees_no_private_page(project, live_preview, headers):
    write_project(project, NORMAL)
    base = live_preview(project, now=lambda: NOW)
    assert "ada@example.org" in get(base + "/").text  # on the server itself: the index
    for path in PRIVATE:
        r = get(base + path, headers=headers)
        assert r.status_code == 403, (path, r.status_code)
        assert "ada@example.org" not in r.text and "ada" not in r.text.replace("ada@", "")


def test_trusted_proxies_and_the_login(project, live_preview, monkeypatch):
    monkeypatch.setenv("DIGEST_WEB_PASSWORD", "correct horse")
    write_project(project, NORMAL)
    web(project, 'trusted_proxies = ["127.0.0.1"]\npassword_env = "DIGEST_WEB_PASSWORD"')
    base = live_preview(project, now=lambda: NOW)
    # Through the trusted proxy, a client on the server itself, and a stranger who forged a hop.
    assert get(base + "/", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
    forged = get(base + "/", headers={"X-Forwarded-For": "127.0.0.1, 203.0.113.9"})
    assert forged.status_code == 401 and forged.headers["www-authenticate"].startswith("Basic")
    assert "ada" not in forged.text
    for auth, status in ((("digest", "wrong"), 401), (("someone", "correct horse"), 401),
                         (("digest", "correct horse"), 200)):
        for path in PRIVATE:
            r = get(base + path, auth=auth, headers={"X-Forwarded-For": "203.0.113.9"})
            assert r.status_code == status, (auth, path)
    index = get(base + "/", auth=("digest", "correct horse"), headers={"X-Forwarded-For": "203.0.113.9"})
    assert "ada@example.org" in index.text


def test_signed_links_work_for_strangers_and_view_links_can_expire(project, live_preview,
                                                                    monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    config = write_project(project, NORMAL)
    web(project, "link_days = 7")
    stranger = {"X-Forwarded-For": "203.0.113.9"}
    links = Links(config.digest.base_url, b"test-secret", link_days=7)
    view = links.view("ada", "2026-11-22").removeprefix(config.digest.base_url)
    assert "e=2026-11-29&" in view
    feedback = links.feedback("ada", "x", "up").removeprefix(config.digest.base_url)
    clock = {"now": NOW}
    base = live_preview(project, now=lambda: clock["now"])
    assert get(base + view, headers=stranger).status_code == 200
    assert get(base + view.replace("e=2026-11-29", "e=2027-11-29"), headers=stranger).status_code == 403
    from datetime import timedelta

    clock["now"] = NOW + timedelta(days=8)  # past its last day: a private page again
    assert get(base + view, headers=stranger).status_code == 403
    clock["now"] = NOW + timedelta(days=400)  # feedback links keep working
    assert get(base + feedback, headers=stranger).status_code == 200


@pytest.mark.parametrize("day", ["0001-01-01", "2026-13-45", "9999-12-31", "yesterday"])
def test_a_bad_date_is_a_400_in_plain_words(project, live_preview, day):
    write_project(project, NORMAL)
    base = live_preview(project, now=lambda: NOW)
    r = get(f"{base}/digest/ada/{day}")
    assert r.status_code == 400 and "is not a date from 1970 on" in r.text
    assert "--date" not in r.text


def test_a_slow_page_does_not_hold_up_the_others(project, live_preview):
    """One digest page made deliberately heavy (a template override that loops for seconds)
    gets a 503 at [web] timeout; the index, asked meanwhile, answers at once."""
    base = heavy_preview(project, live_preview, 60_000_000, "timeout = 1")
    done: dict[str, tuple[float, int]] = {}
    start = time.monotonic()

    def fetch(name, path):
        r = get(base + path)
        done[name] = (time.monotonic() - start, r.status_code)

    heavy = threading.Thread(target=fetch, args=("heavy", "/digest/ada/2026-11-22.txt"))
    heavy.start()
    time.sleep(0.2)  # the heavy page is under way
    fetch("index", "/")
    heavy.join(timeout=60)
    assert done["index"][1] == 200 and done["heavy"][1] == 503
    assert done["index"][0] < done["heavy"][0]  # answered while the heavy page still ran


def test_files_only_the_operator_reads(project, monkeypatch):
    """Database, WAL, key and outbox are created 0600/0700 whatever the umask; `check` warns
    when one is readable by others (an old install, a careless copy)."""
    import os
    import stat

    from test_send import run

    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    old = os.umask(0o022)  # the usual default, which would give 0644 files
    try:
        config = write_project(project, NORMAL)
        run(project, config)
    finally:
        os.umask(old)
    root = project.root
    eml = next((root / "outbox").rglob("*.eml"))
    with project.store() as s:  # the WAL files exist while a connection is open
        s.set_reader("ada", last_error="")
        for path in (root / "digest.db-wal", root / "digest.db-shm"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path, want in ((root / "digest.db", 0o600), (root / "digest.db.key", 0o600),
                       (root / "outbox", 0o700), (eml.parent, 0o700), (eml, 0o600)):
        assert stat.S_IMODE(path.stat().st_mode) == want, path
    assert "can be read by other users" not in project.run("check").output
    (root / "digest.db").chmod(0o644)
    check = project.run("check")
    assert check.exit_code == 0
    assert f"{root / 'digest.db'} can be read by other users of this machine (mode 644)" in check.output
    assert f"chmod 600 {root / 'digest.db'}" in check.output


def test_run_with_web_is_one_process_for_a_deployment(project):
    """`digest run --web`: the scheduler and the web pages in one process; SIGTERM stops both."""
    import signal
    import subprocess
    import sys

    from conftest import free_port

    write_project(project, NORMAL)
    port = free_port()
    web(project, f"port = {port}")
    proc = subprocess.Popen([sys.executable, "-m", "digest", "--config", str(project.path), "run",
                             "--web"], stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # bounded: wait for the web line
        line = proc.stderr.readline()
        lines.append(line)
        if "web pages at" in line or not line:
            break
    try:
        deadline = time.monotonic() + 30
        while True:  # the server binds a moment after the line
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "".join(lines)
                time.sleep(0.05)
        assert r.status_code == 200 and "Feed health" in r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
    log = "".join(lines) + rest
    assert proc.returncode == 0, log
    assert "digest run: started" in log and "digest run: stopped" in log and "Traceback" not in log


def test_pages_that_timed_out_still_count_against_the_bound(project, live_preview):
    """[web] threads bounds the pages being built, abandoned ones included: with one, the
    next page gets a 503 at once until the slow one has really ended, then works again."""
    base = heavy_preview(project, live_preview, 100_000_000, "timeout = 0.5\nthreads = 1")
    slow = get(base + "/digest/ada/2026-11-22.txt")
    assert slow.status_code == 503 and "took longer than 0.5 s" in slow.text
    refused = get(base + "/")
    assert refused.status_code == 503 and "Too many pages" in refused.text
    deadline = time.monotonic() + 120
    while get(base + "/").status_code == 503:  # bounded: until the slow page's thread ends
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert get(base + "/").status_code == 200
    big = httpx.post(base + "/unsubscribe/ada?s=x", content=b"a=" + b"b" * 10000, timeout=30)
    assert big.status_code == 413


def test_a_trusted_proxy_that_is_no_address_is_a_config_error(project):
    write_project(project, NORMAL)
    web(project, 'trusted_proxies = ["127.0.0.1", "my-proxy"]')
    check = project.run("check")
    assert check.exit_code == 1
    assert "[web] trusted_proxies holds 'my-proxy', not an address or network" in check.output
    assert "Traceback" not in check.output
