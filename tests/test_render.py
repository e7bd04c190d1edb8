"""The digest email: golden files, hostile content, compile-once ≡ compile-per-reader, the
message, template overrides and `digest render`."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from html.parser import HTMLParser
from pathlib import Path

import pytest
import time_machine

from digest.daily import render_digests
from digest.health import sync_feeds
from digest.normalize import make_entry
from digest.render import Renderer, markup

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)
CONFIG = """
[digest]
title = "Morning papers"
database = "digest.db"
base_url = "https://digest.example.org"
{extra}
[ranking]
semantic_mode = "off"
[feeds.arxiv]
path = "arxiv.xml"
title = "arXiv"
[feeds.blog]
path = "blog.xml"
title = "Lab notes"
[users.ada]
email = "ada@example.org"
timezone = "Europe/Berlin"
authors = ["Grace Hopper"]
[users.ada.interests]
"style transfer" = 2
"sparse attention" = 1
"""


@pytest.fixture(autouse=True)
def fixed_secret(monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")


def entry(key, title, summary="", authors=("Ann Author",), link=None, published=NOW, **kw):
    return make_entry(guid=f"urn:{key}", link=link if link is not None else f"https://papers.example.org/{key}",
                      title=title, summary=summary, summary_is_html=kw.pop("html", False),
                      authors=list(authors), categories=kw.pop("categories", ["cs.LG"]),
                      published=published, fetched=NOW - timedelta(hours=1), **kw)


def write_project(project, entries, extra=""):
    project.path.write_text(CONFIG.format(extra=extra))
    (project.root / "arxiv.xml").write_text("")
    (project.root / "blog.xml").write_text("")
    with project.store() as s:
        s.add_entries("arxiv", [e for feed, e in entries if feed == "arxiv"], NOW - timedelta(hours=1))
        s.add_entries("blog", [e for feed, e in entries if feed == "blog"], NOW - timedelta(hours=1))
    return project.config()


NORMAL = [
    ("arxiv", entry("st", "Fast style transfer for video", "We make style transfer run in real "
                    "time on video, with a temporal loss. " * 4, authors=[f"Author {i}" for i in range(8)],
                    popularity=40, tldr="Real-time video style transfer with a temporal loss.",
                    code="https://github.com/example/fast-style")),
    ("arxiv", entry("sa", "Sparse attention for long documents", "Block-sparse attention scales.",
                    authors=["Grace Hopper", "Alan Turing"])),
    ("blog", entry("st-blog", "What we learned about style transfer", "A lab note.",
                   categories=[])),
    ("arxiv", entry("bees", "Bees prefer blue flowers", "Field study.", popularity=90)),
]


def rendered(project, entries, extra="", user="ada"):
    config = write_project(project, entries, extra)
    with project.store() as s, time_machine.travel(NOW, tick=False):
        (done,) = render_digests(config, s, [config.users[user]], None, NOW)
    return config, done


def test_golden_html_and_text(project):
    _, done = rendered(project, NORMAL)
    for name, body in (("digest.html", done.html), ("digest.txt", done.text)):
        path = GOLDEN / name
        if os.environ.get("DIGEST_UPDATE_GOLDEN"):
            path.parent.mkdir(exist_ok=True)
            path.write_text(body)
        assert body == path.read_text(), (
            f"{name} differs from tests/golden/{name}; if the change is intended, rerun with "
            "DIGEST_UPDATE_GOLDEN=1 and review the diff")


def test_content_of_the_digest(project):
    _, done = rendered(project, NORMAL)
    html, text = done.html, done.text
    titles = [i.title for s in done.view.sections for i in s.items]
    assert titles[:2] == ["Sparse attention for long documents", "Fast style transfer for video"]
    assert "Bees prefer blue flowers" in titles
    assert [s.title for s in done.view.sections] == ["For you", "Trending"]
    assert "Author 0, Author 1, Author 2, … +5" in html and "Author 0, Author 1, Author 2, … +5" in text
    # Badges are words with real separators: nothing runs together where styles are dropped.
    assert ">arXiv · cs.LG · 2026-11-22</td>" in html and ">Lab notes · 2026-11-22</td>" in html
    assert "Why: matches &#34;style transfer&#34; in the title" in html
    assert "by Grace Hopper" in text
    assert "<title>Sparse attention for long documents — and 3 more</title>" in html
    assert "2 feeds, 4 new entries" in text  # health: a quiet day looks different from a broken one
    up = re.findall(r'href="(https://digest\.example\.org/feedback/ada/[0-9a-f]+/up\?s=[0-9a-f]{32})"', html)
    down = re.findall(r'href="(https://digest\.example\.org/feedback/ada/[0-9a-f]+/down\?s=[0-9a-f]{32})"', html)
    assert len(up) == len(down) == len(titles)
    assert 'href="https://digest.example.org/unsubscribe/ada?s=' in html
    assert 'href="https://digest.example.org/digest/ada/2026-11-22?s=' in html
    assert "googleapis" not in html and "<img" not in html  # no remote fonts or images
    assert "prefers-color-scheme: dark" in html
    # The snippet is the abstract's sentence about the reader, their phrase in bold in HTML
    # and unmarked in text.
    snippet = done.view.sections[0].items[1].snippet
    assert snippet == "We make style transfer run in real time on video, with a temporal loss."
    assert "We make <b>style transfer</b> run in real time" in html
    assert "   We make style transfer run in real time on video" in text


def test_failing_feed_is_named_in_the_footer(project):
    config = write_project(project, NORMAL)
    with project.store() as s:
        sync_feeds(config, s)
        state = s.feed_state("blog")
        state.error_count, state.failing_since = 3, "2026-11-17T06:00:00+00:00"
        s._save_feed_state(state)
        s.db.conn.commit()
        (done,) = render_digests(config, s, [config.users["ada"]], None, NOW)
    assert "2 feeds, 4 new entries; 1 feed failing since Tuesday: blog" in done.text
    assert "1 feed failing since Tuesday: blog" in done.html


def test_quiet_day_says_so(project):
    _, done = rendered(project, [])
    assert "Nothing new scored above your threshold today" in done.text
    assert "2 feeds, 0 new entries" in done.html
    assert done.view.subject == "A quiet day: nothing above your threshold"


class _Balance(HTMLParser):
    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"})

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def test_hostile_entries_render_inert_and_well_formed(project):
    long_title = "Overlong " * 600  # ~5,400 characters
    hostile = [
        ("arxiv", entry("x1", 'Style transfer <script>alert(1)</script><img src=x onerror="alert(2)">',
                        '<p onclick="evil()">style transfer <script>steal()</script>'
                        '<a href="javascript:alert(3)">click</a></p>', html=True)),
        ("arxiv", entry("x2", "style transfer " + long_title, "")),
        ("arxiv", entry("x3", "نقل النمط style transfer 🎨 للفيديو", "ملخص 🚀", authors=[])),
        ("arxiv", entry("x4", "Style transfer, no link", "", link="javascript:alert(4)")),
        ("blog", entry("x5", "Style transfer with no date and no authors", "", authors=[],
                       published=None)),
    ]
    config = write_project(project, hostile)
    with project.store() as s:  # past the feed-side cleaning: the template must escape it too
        s.db.execute("UPDATE entries SET title = ? WHERE title = 'Style transfer'",
                     ['Style transfer <script>alert(1)</script><img src=x onerror="alert(2)">'])
        # ...and the highlighted sentence, whose matched words are bolded piece by piece.
        s.db.execute("UPDATE entries SET summary_text = ? WHERE title LIKE 'Style transfer <script>%'",
                     ["Our style transfer <script>steal()</script> & <b>more</b>."])
        s.db.conn.commit()
        (done,) = render_digests(config, s, [config.users["ada"]], None, NOW)
    html = done.html
    assert len([i for s in done.view.sections for i in s.items]) == 5
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text, not run
    assert "Our <b>style transfer</b> &lt;script&gt;steal()&lt;/script&gt; &amp; &lt;b&gt;more" in html
    parser = _Balance()
    parser.feed(html)
    assert parser.errors == [] and parser.stack == []
    assert "script" not in {tag for tag, _ in parser.tags}
    for tag, attrs in parser.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        if tag == "a":
            assert attrs.get("href", "").startswith(("http://", "https://")), attrs
    long = next(i for s in done.view.sections for i in s.items if i.title.startswith("style transfer Overlong"))
    assert len(long.title) <= 301 and long.title.endswith("…")
    assert '">نقل النمط style transfer 🎨 للفيديو</a>' in html
    assert re.search(r'<span class="title" dir="auto" style="[^"]*">Style transfer, no link</span>', html)
    assert "alert(1)" in done.text  # the text twin shows the title as written, unescaped


def test_compiled_once_renders_exactly_like_compiling_per_reader(project):
    renderer = Renderer()
    _, normal = rendered(project, NORMAL)
    _, empty = rendered(project, [])
    for done in (normal, empty):
        # The same document; the serializer may spell an entity differently ("'" or "&#39;").
        assert markup(renderer.html(done.view)) == markup(renderer.html_compiled_per_reader(done.view))


def test_a_config_templates_folder_overrides_file_by_file(project):
    custom = project.root / "mytemplates"
    (custom / "partials").mkdir(parents=True)
    (custom / "digest.txt").write_text("{{ v.reader }} has {{ v.sections[0]['items'] | length }} items\n")
    (custom / "partials" / "footer.html").write_text("<p>Custom footer for {{ v.reader }}</p>")
    _, done = rendered(project, NORMAL, extra='templates = "mytemplates"')
    assert done.text == "ada has 3 items\n"
    assert "<p>Custom footer for ada</p>" in done.html
    assert "Fast style transfer for video" in done.html  # the built-in digest.mjml still used


def test_templates_setting_must_be_a_folder(project):
    project.path.write_text(CONFIG.format(extra='templates = "nowhere"'))
    result = project.run("check")
    assert result.exit_code == 1
    assert "[digest] templates 'nowhere' is not a folder" in result.output.replace(str(project.root) + "/", "")


def test_render_command_formats(project):
    write_project(project, NORMAL)
    with time_machine.travel(NOW, tick=False):
        html = project.run("render", "ada")
        text = project.run("render", "ada", "--format", "text")
        out = project.root / "ada.eml"
        eml = project.run("render", "ada", "--format", "eml", "--out", str(out))
    assert html.exit_code == 0 and html.output.lower().startswith("<!doctype html>")
    assert text.exit_code == 0 and text.output.startswith("Morning papers · Sunday, 22 November 2026")
    assert eml.exit_code == 0 and "Wrote the eml digest of ada for 2026-11-22" in eml.output
    msg = message_from_bytes(out.read_bytes(), policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert msg["Subject"] == "Sparse attention for long documents — and 3 more"
    assert msg["To"] == "ada <ada@example.org>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Unsubscribe"].startswith("<https://digest.example.org/unsubscribe/ada?s=")
    assert re.fullmatch(r"<2026-11-22\.[0-9a-f]{24}@localhost>", msg["Message-ID"])
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == text.output


def test_render_errors_are_one_sentence(project):
    write_project(project, NORMAL)
    unknown = project.run("render", "adaa")
    assert unknown.exit_code == 1
    assert "there is no reader named 'adaa' (did you mean 'ada'?)" in unknown.output
    bad = project.run("render", "ada", "--date", "22/11/2026")
    assert bad.exit_code == 1 and "--date '22/11/2026' is not a date from 1970 on; write it as YYYY-MM-DD." in bad.output
    assert "Traceback" not in unknown.output + bad.output


@pytest.mark.parametrize("title", [
    "Style transfer\r\nBcc: victim@example.org",
    "Style transfer =?utf-8?q?=0D=0ABcc:_victim@example.org?=",
    "Style transfer\u2028Bcc: victim@example.org",
])
def test_no_header_injection_from_titles(project, title):
    write_project(project, [("arxiv", entry("inj", "x"))])
    with project.store() as s:
        s.db.execute("UPDATE entries SET title = ?", [title])  # past any feed-side cleaning
        s.db.conn.commit()
    out = project.root / "d.eml"
    with time_machine.travel(NOW, tick=False):
        result = project.run("render", "ada", "--format", "eml", "--out", str(out))
    assert result.exit_code == 0, result.output
    raw = out.read_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^bcc:", head, re.I | re.M)
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["Bcc"] is None and "victim@example.org" in msg["Subject"]
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]


def _eml(project, name="d.eml"):
    out = project.root / name
    with time_machine.travel(NOW, tick=False):
        result = project.run("render", "ada", "--format", "eml", "--out", str(out))
    assert result.exit_code == 0, result.output
    return message_from_bytes(out.read_bytes(), policy=policy.default)


@pytest.mark.parametrize("smtp_from", ["", "Papers, daily <digest@example.org>",
                                       '"Papers, daily" <digest@example.org>'])
def test_a_comma_in_the_sender_name_is_still_one_address(project, smtp_from):
    smtp = (f'[smtp]\nhost = "127.0.0.1"\nfrom = {smtp_from!r}\n' if smtp_from else "")
    write_project(project, NORMAL)
    project.path.write_text(project.path.read_text().replace('title = "Morning papers"', 'title = "Papers, daily"')
                            .replace("[ranking]", smtp + "[ranking]"))
    msg = _eml(project)
    (address,) = msg["From"].addresses
    assert address.display_name == "Papers, daily"
    assert address.addr_spec == ("digest@example.org" if smtp_from else "digest@localhost")
    assert msg["List-Id"].startswith('"Papers, daily" <digest.')


def test_a_sender_that_is_no_address_is_a_config_error(project):
    write_project(project, NORMAL)
    project.path.write_text(project.path.read_text().replace(
        "[ranking]", '[smtp]\nhost = "127.0.0.1"\nfrom = "Papers"\n[ranking]'))
    result = project.run("check")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "[smtp] from is 'Papers', not an address" in result.output


LONG = [
    ("arxiv", entry("cjk", "Style transfer " + "风格迁移" * 60, "长摘要" * 300)),
    ("arxiv", entry("url", "Style transfer at https://example.org/" + "a" * 120 + " and more words after it",
                    "See https://example.org/" + "b" * 150 + " for the style transfer code. " + "Style transfer. " * 30,
                    authors=[f"Author Name{i}" for i in range(9)])),
    ("arxiv", entry("words", "Style transfer " + "with many words in the title " * 12, "x " * 400)),
    *NORMAL]


def test_text_lines_fit_in_78_columns_and_urls_stay_whole(project):
    _, done = rendered(project, LONG)
    lines = done.text.splitlines()
    for line in lines:
        assert len(line) <= 78 or re.fullmatch(r"\s*https?://\S+", line), line
    # A URL is never broken across lines.
    urls = re.findall(r"https?://\S+", done.text)
    assert "https://example.org/" + "b" * 150 in urls
    assert all(u in done.html or "example.org/" in u for u in urls)
    assert any("风格迁移" * 10 in line for line in lines)  # a title without spaces is folded too
    # Hanging indents: an item's later lines start under its title, not under its number.
    at = next(i for i, line in enumerate(lines) if re.match(r"\d\. Style transfer with many words", line))
    assert re.match(r"   [a-z]", lines[at + 1]), lines[at:at + 2]


def test_subject_leads_with_what_is_new_in_78_characters(project):
    _, done = rendered(project, LONG)
    subject, titles = done.view.subject, [i.title for s in done.view.sections for i in s.items]
    assert len(subject) <= 78 and subject.endswith(f" — and {len(titles) - 1} more")
    assert subject.startswith(titles[0][:20]) and "Morning papers" not in subject
    # The preheader names the next titles, and invisible filler stops the preview there.
    assert done.view.preheader.startswith(cut_words(titles[1]))
    assert "\u034f\u200c\u00a0" * 40 in done.html


def cut_words(title: str) -> str:
    return title.split(" ")[0]


def test_a_60_item_digest_stays_under_the_size_budget_with_its_footer(project):
    from digest.render import EMAIL_BUDGET

    many = [("arxiv", entry(f"n{k}", f"Style transfer 风格迁移 number {k} " + "长标题" * 80,
                            "Style transfer " + "摘要内容" * 120,
                            authors=[f"作者{k}{j}" for j in range(6)])) for k in range(60)]
    write_project(project, many, extra="max_items = 60")
    msg = _eml(project)
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert len(html.encode()) <= EMAIL_BUDGET
    kept = len(re.findall(r'class="item"', html))
    more = int(re.search(r">(\d+) more in your browser</a>", html).group(1))
    assert 10 < kept < 60 and kept + more == 60
    assert f"{more} more in your browser" in text
    # The footer, its unsubscribe link and the view-in-browser link survive.
    assert 'href="https://digest.example.org/unsubscribe/ada?s=' in html and "Unsubscribe:" in text
    assert 'href="https://digest.example.org/digest/ada/2026-11-22?s=' in html
    # The browser shows all 60.
    config = project.config()
    with project.store() as s, time_machine.travel(NOW, tick=False):
        (full,) = render_digests(config, s, [config.users["ada"]], None, NOW)
    assert sum(len(sec.items) for sec in full.view.sections) == 60 and full.view.more == 0


def test_list_id_phrase_is_quoted_or_encoded_as_it_must_be(project):
    write_project(project, NORMAL)
    project.path.write_text(project.path.read_text().replace('title = "Morning papers"', 'title = "Статьи, daily"'))
    msg = _eml(project)
    assert msg["List-Id"] == "Статьи daily <digest.localhost>"  # an encoded word is never quoted
    assert msg["From"].addresses[0].display_name == "Статьи, daily"
