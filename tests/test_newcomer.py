"""The newcomer path: `digest demo`, `digest init` and `digest feeds import` on our own OPML."""

from __future__ import annotations

import shlex
import shutil
from email import message_from_bytes, policy

from click.testing import CliRunner
from conftest import FIXTURES

from digest.cli import cli

OPML = FIXTURES / "opml"


def test_demo_writes_one_email_per_reader(tmp_path):
    folder = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--dir", str(folder), "--no-serve"])
    assert result.exit_code == 0, result.output
    # By reader: their local dates (folders) differ during part of the day (time zones).
    emails = sorted(folder.glob("outbox/*/*.eml"), key=lambda p: p.stem)
    assert [p.stem for p in emails] == ["ada", "alan", "grace"]
    for path in emails:
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert text.strip() and "<html" in html and "Why:" in text
    grace = (folder / "outbox").glob("*/grace.eml").__next__().read_text()
    assert "similar to your paper" in grace  # her BibTeX library drives her ranking
    ada = message_from_bytes(next(folder.glob("outbox/*/ada.eml")).read_bytes(), policy=policy.default)
    assert "Normalization-Free Style Transfer" in ada["Subject"]
    assert "HF daily papers · arXiv" in ada.get_body(("plain",)).get_content()  # two feeds, one paper
    for line in result.output.splitlines():  # the suggested next commands work as printed
        if "digest --config" in line:
            args = shlex.split(line.split("digest ", 1)[1])
            tried = CliRunner().invoke(cli, args)
            assert tried.exit_code == 0 and "Nothing new" not in tried.output, (args, tried.output)
            assert "Normalization-Free Style Transfer" in tried.output or args[2] != "rank"
    again = CliRunner().invoke(cli, ["demo", "--dir", str(folder), "--no-serve"])
    assert again.exit_code == 0 and len(list(folder.glob("outbox/*/*.eml"))) == 3  # fresh each time


def test_init_writes_a_valid_commented_config_once(tmp_path):
    runner = CliRunner()
    first = runner.invoke(cli, ["init", str(tmp_path / "new")])
    assert first.exit_code == 0
    config = tmp_path / "new" / "config.toml"
    assert config.read_text().count("\n#") > 10
    assert runner.invoke(cli, ["--config", str(config), "check"]).exit_code == 0
    second = runner.invoke(cli, ["init", str(tmp_path / "new")])
    assert second.exit_code == 1 and "exists already" in second.output


def test_feeds_import_keeps_comments_and_skips_known_feeds(tmp_path):
    runner = CliRunner()
    runner.invoke(cli, ["init", str(tmp_path)])
    config = tmp_path / "config.toml"
    before = config.read_text()
    result = runner.invoke(cli, ["--config", str(config), "feeds", "import", str(OPML / "subscriptions.opml")])
    assert result.exit_code == 0, result.output
    assert "Added 3 feeds: lab-notes, lab-notes-2, field-notes-data; 1 already in config.toml." in result.output
    after = config.read_text()
    assert after.startswith(before.split("[users.me]")[0].rstrip()[:200])
    assert all(line in after for line in before.splitlines() if line.startswith("#"))
    assert '[feeds.field-notes-data]\nurl = "https://field-notes.example.org/atom"\ntitle = "Field Notes & Data"' in after
    assert runner.invoke(cli, ["--config", str(config), "check"]).exit_code == 0
    again = runner.invoke(cli, ["--config", str(config), "feeds", "import", str(OPML / "subscriptions.opml")])
    assert "Added 0 feeds; 4 already in config.toml." in again.output and config.read_text() == after


def test_feeds_import_print_only(tmp_path):
    runner = CliRunner()
    runner.invoke(cli, ["init", str(tmp_path)])
    config = tmp_path / "config.toml"
    before = config.read_text()
    result = runner.invoke(cli, ["--config", str(config), "feeds", "import", "--print",
                                 str(OPML / "subscriptions.opml")])
    assert result.exit_code == 0 and config.read_text() == before
    assert '[feeds.lab-notes]\nurl = "https://lab-notes.example.org/feed.xml"' in result.output


def test_feeds_import_rejects_bad_files_in_one_sentence(tmp_path):
    runner = CliRunner()
    runner.invoke(cli, ["init", str(tmp_path)])
    config = tmp_path / "config.toml"
    before = config.read_text()
    shutil.copy(OPML / "malformed.opml", tmp_path / "m.opml")
    (tmp_path / "enc.opml").write_text('<?xml version="1.0" encoding="UTF-9"?>\n<opml version="2.0">'
                                       '<body><outline xmlUrl="https://a.example.org/feed"/></body></opml>')
    cases = {
        "m.opml": "is not valid OPML (",
        "enc.opml": "fix the encoding its first line declares",
        str(OPML / "entities.opml"): "declares XML entities, which OPML never needs",
        str(OPML / "not_opml.xml"): "is XML but not OPML",
        "missing.opml": "cannot read",
    }
    for name, message in cases.items():
        path = name if name.startswith("/") else str(tmp_path / name)
        result = runner.invoke(cli, ["--config", str(config), "feeds", "import", path])
        assert result.exit_code == 1, result.output
        assert message in result.output and "Traceback" not in result.output
    assert config.read_text() == before
