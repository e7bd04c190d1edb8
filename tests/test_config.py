from datetime import time
from pathlib import Path

import pytest

from digest.config import load_config
from digest.errors import ConfigError

ROOT = Path(__file__).parent.parent


def problems(project, body: str, extra_digest: str = "") -> list[str]:
    project.write(body, extra_digest=extra_digest)
    with pytest.raises(ConfigError) as e:
        project.config()
    return e.value.problems


def test_root_example_config_is_valid():
    config = load_config(ROOT / "config.toml")
    assert {"lab-notes", "arxiv-sample", "hf-sample"} <= set(config.feeds)
    assert any(f.path is not None for f in config.feeds.values())
    assert any(f.url.startswith("https://") for f in config.feeds.values())
    assert config.users["ada"].interests["style transfer"] == 2


def test_defaults_and_inheritance(project):
    project.write("""
        [feeds.a]
        url = "https://example.org/feed.xml"
        [users.ada]
        email = "ada@example.org"
        interests = ["one phrase"]
    """, extra_digest='timezone = "Europe/Berlin"\nsend_time = "06:45"\nevery = "30m"\n')
    c = project.config()
    assert c.feeds["a"].every == 1800
    assert c.feeds["a"].kind == "auto"
    u = c.users["ada"]
    assert (u.timezone, u.send_time, u.max_items) == ("Europe/Berlin", time(6, 45), 20)
    assert u.feeds == () and u.interests == {"one phrase": 1.0}
    assert c.digest.database == project.root / "digest.db"
    assert c.digest.max_feed_size == 15 * 1024 * 1024
    assert c.smtp is None


def test_config_full_of_mistakes_reports_each_one(project):
    found = problems(project, """
        [smtp]
        host = "smtp.example.org"
        password = "hunter2"
        from = "x@example.org"
        [feeds.both]
        url = "https://example.org/a.xml"
        path = "a.xml"
        [feeds.neither]
        evrey = "1h"
        [feeds.ftp]
        url = "ftp://example.org/feed"
        [feeds.slow]
        url = "https://example.org/s.xml"
        every = "sometimes"
        [users.ada]
        email = "ada@example.org"
        timezone = "Mars/Olympus"
        send_time = "25:00"
        feeds = ["bothh"]
        max_items = "ten"
        [users.bob]
        emial = "bob@example.org"
        [sections]
    """, extra_digest='timeout = "fast"\nkeep = "forever"\n')
    text = "\n".join(found)
    expected = [
        "[smtp] password must not hold a password",  # inline secret
        "password_env",
        "[feeds.both] needs exactly one of url (a web feed) or path (a local file); it has both",
        "[feeds.neither] needs exactly one of url (a web feed) or path (a local file); it has neither",
        "[feeds.neither] has unknown key 'evrey' (did you mean 'every'?)",
        "[feeds.ftp] url is 'ftp://example.org/feed', not an http(s) URL",
        "[feeds.slow] every is 'sometimes', not a duration",
        "[users.ada] timezone is 'Mars/Olympus', not a known time zone",
        "[users.ada] send_time is '25:00', not a time of day",
        "[users.ada] feeds names 'bothh', which is not a feed (did you mean 'both'?)",
        "[users.ada] max_items must be a whole number, not a string",
        "[users.bob] has unknown key 'emial' (did you mean 'email'?)",
        "[users.bob] is missing 'email'",
        "[sections] is not a known section",
        "[digest] timeout must be a number, not a string",
        "[digest] keep is 'forever', not a duration or \"never\"; write e.g. \"180d\"",
    ]
    for e in expected:
        assert e in text, f"missing problem: {e}\n---\n{text}"
    # Each problem is one line naming the file, and says how to fix it.
    for p in found:
        assert "\n" not in p and p.startswith("config.toml: ")
        assert ";" in p or "did you mean" in p or "add" in p


def test_wrong_types_and_minimums(project):
    found = problems(project, """
        [feeds.a]
        path = "feed.xml"
        kind = "rss3"
    """, extra_digest='max_items = 0\nbase_url = "localhost:8750"\ntimeout = true\n')
    text = "\n".join(found)
    assert "max_items is 0, below the minimum 1" in text
    assert "base_url is 'localhost:8750', not an http(s) URL" in text
    assert "timeout must be a number, not true/false" in text
    assert "kind is 'rss3', which is not one of auto, feed, hf-daily-papers, json-feed" in text


def test_sections_are_checked_and_have_a_short_form(project):
    found = problems(project, """
        [feeds.a]
        path = "feed.xml"
        [users.ada]
        email = "ada@example.org"
        serendipity = -1
        [users.ada.sections]
        "No match" = {max = 2}
        "Bad cap" = {match = ["x"], max = 0}
        "Typo" = {match = ["x"], maxx = 2}
    """)
    text = "\n".join(found)
    assert "serendipity is -1, below the minimum 0" in text
    assert "[users.ada] sections 'No match' needs match, a non-empty list" in text
    assert "[users.ada] sections 'Bad cap' has max = 0, not a whole number of at least 1" in text
    assert "[users.ada] sections 'Typo' must be {match = [...], max = N}" in text
    (project.root / "feed.xml").write_text("")
    project.write("""
        [feeds.a]
        path = "feed.xml"
        [users.ada]
        email = "ada@example.org"
        [users.ada.sections]
        "Short" = ["style transfer", "Grace Hopper"]
        "Capped" = {match = "cs.LG", max = 3}
    """)
    (short, capped) = project.config().users["ada"].sections
    assert (short.title, short.match, short.max) == ("Short", ("style transfer", "Grace Hopper"), None)
    assert (capped.match, capped.max) == (("cs.LG",), 3)


def test_toml_syntax_error_shows_the_line(project):
    project.path.write_text('[digest]\ntitle = "ok"\n\n[feeds.a]\nurl = https://example.org\n')
    with pytest.raises(ConfigError) as e:
        project.config()
    (msg,) = e.value.problems
    assert "line 5" in msg and "url = https://example.org" in msg and "fix the syntax" in msg


def test_missing_config_file_and_missing_library(project, tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")
    # A missing library is a warning, not an error: an error would stop every reader's digest
    # for one reader's file (test_send.py: theirs is ranked without it).
    project.write('[users.ada]\nemail = "ada@example.org"\npapers = "library.bib"\n')
    (warning,) = project.config().warnings
    assert "[users.ada] papers file" in warning and "library.bib" in warning
    assert "does not exist" in warning and "ranked without it" in warning


def test_bool_setting_rejects_a_string(project):
    project.path.write_text('[digest]\nallow_private_networks = "yes"\n')
    with pytest.raises(ConfigError, match="allow_private_networks must be true or false, not a string"):
        project.config()


def test_password_env_must_be_a_name_not_a_value(project):
    found = problems(project, """
        [smtp]
        host = "smtp.example.org"
        username = "me"
        password_env = "correct horse battery"
        from = "me@example.org"
    """)
    assert any("not an environment variable name" in p for p in found)


def test_email_with_newline_is_rejected(project):
    found = problems(project, '[users.x]\nemail = "a@example.org\\nBcc: evil@example.org"\n')
    assert any("not an email address" in p for p in found)


def test_check_command_lists_feeds_and_readers(project):
    (project.root / "lib.bib").write_text("@article{a, title={T}}\n")
    project.write("""
        [feeds.papers]
        url = "https://example.org/feed.xml"
        [feeds.local]
        path = "missing.xml"
        [users.ada]
        email = "ada@example.org"
        papers = "lib.bib"
    """)
    r = project.run("check")
    assert r.exit_code == 0, r.output
    assert "papers" in r.stdout and "https://example.org/feed.xml" in r.stdout
    assert "ada@example.org" in r.stdout and "library lib.bib" in r.stdout
    assert "Delivery: outbox folder (no [smtp] section)" in r.stdout
    assert "missing.xml" in r.stderr and "does not exist yet" in r.stderr


def test_check_command_fails_with_one_line_per_problem(project):
    project.write('[feeds.a]\nurl = "https://x.example/f"\nevry = "1h"\n[users.u]\nemail = "bad"\n')
    r = project.run("check")
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("Error: config.toml: ") for line in lines)
    assert "Traceback" not in r.output
