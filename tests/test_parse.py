import re
import time
from datetime import UTC, datetime

import pytest
from conftest import fixture_bytes, mangled

from digest.errors import ParseError
from digest.normalize import (
    arxiv_id,
    clean_link,
    identity_url,
    make_entry,
    sanitize_html,
    split_authors,
)
from digest.parse import parse_feed

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def parse(name_or_bytes, headers=None, kind="auto", url="https://feeds.example.org/feed"):
    body = fixture_bytes(name_or_bytes) if isinstance(name_or_bytes, str) else name_or_bytes
    return parse_feed(body, headers or {}, kind, NOW, url)


def test_rss20():
    feed = parse("rss20.xml")
    assert feed.title == "Fixture Blog" and not feed.warning
    bees, rivers = feed.entries
    assert bees.title == "Bees prefer blue flowers in the morning"
    assert bees.published == datetime(2026, 11, 17, 7, 0, tzinfo=UTC)  # +0100 → UTC
    assert bees.categories == ["ecology", "pollination"]
    assert bees.summary_html == "<p>A field study of <em>Bombus</em> foraging across 40 gardens.</p>"
    assert bees.summary_text == "A field study of Bombus foraging across 40 gardens."
    assert rivers.authors == ["Ravi Menon"]
    assert "<b>river width</b>" in rivers.summary_html  # content:encoded when no description


def test_rss091_with_external_doctype():
    (entry,) = parse("rss091.xml").entries
    assert entry.link == "http://oldschool.example.net/notebooks.html"
    assert entry.published == NOW  # no date: the fetch time


def test_rss10_rdf():
    (entry,) = parse("rss10.rdf").entries
    assert entry.title == "Earthworm tunnels double infiltration in compacted clay"
    assert entry.authors == ["Okonkwo, Adaeze", "Lindgren, Per"]
    assert entry.published == datetime(2026, 11, 12, tzinfo=UTC)


def test_atom_html_title_relative_link_and_xhtml():
    feed = parse("atom.xml", url="https://journal.example.com/feed.atom")
    first, second = feed.entries
    assert first.title == "Measuring glacier retreat from old postcards"
    assert first.authors == ["Freya Nilsdottir", "Jonas Weber"]
    assert first.published == datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    assert second.link == "https://journal.example.com/8"
    assert "<strong>body</strong>" in second.summary_html


def test_arxiv_api_atom():
    new, old = parse("arxiv_api.xml").entries
    assert new.canonical == "arxiv:2611.01234"
    assert new.categories == ["eess.AS", "cs.LG"]
    assert old.canonical == "arxiv:hep-th/0601001"


def test_arxiv_rss_keeps_literal_angle_brackets_and_strips_announce_prefix():
    (entry,) = parse("arxiv_rss.xml").entries
    assert entry.canonical == "arxiv:2611.01234"
    assert entry.authors == ["Mei Lin Chua", "Oskar Brandt"]
    assert entry.summary_text.startswith("We route audio frames")
    assert "the <EOS> token" in entry.summary_text and "a<b holds" in entry.summary_text
    assert "&lt;EOS&gt;" in entry.summary_html


def test_hf_daily_papers_adapter():
    feed = parse("hf_daily.json")
    assert [e.popularity for e in feed.entries] == [57, 3]
    first = feed.entries[0]
    assert first.canonical == "arxiv:2611.01234"
    assert first.link == "https://huggingface.co/papers/2611.01234"
    assert first.authors == ["Mei Lin Chua"]  # hidden authors are not shown
    assert "skipped 2" in feed.warning


def test_json_feed_is_sanitized():
    feed = parse("jsonfeed.json")
    first, second = feed.entries
    assert first.authors == ["Noor Haddad"] and first.categories == ["energy"]
    assert "<script" not in first.summary_html and "alert" not in first.summary_html
    assert first.published == datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
    assert second.summary_text == "Plain text body."


def test_malformed_feed_keeps_what_parses_and_warns():
    feed = parse("malformed.xml")
    assert [e.link for e in feed.entries][:1] == ["https://broken.example.org/1"]
    assert len(feed.entries) >= 1
    assert feed.warning.startswith("malformed feed (") and "kept the" in feed.warning


@pytest.mark.parametrize("body", [fixture_bytes("not_a_feed.html"), b"", b"\x00\x01garbage",
                                  b'{"hello": "world"}', b"[1, 2, 3]"])
def test_non_feeds_raise_parse_error(body):
    with pytest.raises(ParseError):
        parse(body)


def test_valid_empty_feed_is_not_an_error():
    feed = parse(b'<rss version="2.0"><channel><title>Quiet Saturday</title></channel></rss>')
    assert feed.entries == [] and "no entries" in feed.warning


def test_latin1_declared_only_in_http_header():
    body = ('<rss version="2.0"><channel><title>Caf\xe9</title><item><title>Na\xefve '
            'r\xe9sum\xe9 of the d\xe9j\xe0 vu effect in reading</title><link>http://x.example/1'
            '</link></item></channel></rss>').encode("latin-1")
    feed = parse(body, headers={"content-type": "application/rss+xml; charset=ISO-8859-1"})
    assert feed.title == "Café"
    assert feed.entries[0].title == "Naïve résumé of the déjà vu effect in reading"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>lol</title>
<item><title>&lol9;</title><link>http://x.example/lol</link><description>&lol9;</description></item>
</channel></rss>"""


def test_billion_laughs_is_fast_and_not_expanded():
    started = time.perf_counter()
    feed = parse(BILLION_LAUGHS)
    assert time.perf_counter() - started < 0.5  # generous; the expansion would take minutes
    assert all(len(e.title) < 100 and "lollol" not in e.summary_text for e in feed.entries)
    assert "DOCTYPE" in feed.warning


def test_external_entity_does_not_leak_files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    body = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
            '<rss version="2.0"><channel><title>t</title><item><title>Leak &x; here</title>'
            '<link>http://x.example/1</link><description>&x;</description></item></channel></rss>'
            ).encode()
    feed = parse(body)
    dump = repr(feed)
    assert "TOP-SECRET-VALUE" not in dump


def test_body_that_names_a_local_file_is_not_opened(tmp_path):
    # feedparser.parse(bytes) would open() a path; we hand it a stream, so this is just text.
    target = tmp_path / "feed.xml"
    target.write_bytes(fixture_bytes("rss20.xml"))
    with pytest.raises(ParseError):
        parse(str(target).encode())


XSS = """<rss version="2.0"><channel><title>x</title><item><title>XSS &lt;script&gt;alert(1)&lt;/script&gt; title</title>
<link>https://xss.example/1</link><description><![CDATA[
<p onclick="steal()" style="color:red">Hi<script>alert(document.cookie)</script></p>
<a href="javascript:alert(1)">js link</a> <a href="JaVaScRiPt:alert(1)">mixed case</a>
<img src="x" onerror="alert(1)"> <img src="data:image/svg+xml;base64,PHN2Zz4=">
<iframe src="https://evil.example/"></iframe><form action="https://evil.example/"><input name="p"></form>
<style>body{display:none}</style><object data="x.swf"></object>
<img src="https://tracker.example/pixel.gif" width="1" height="1">
<img src="https://ok.example/figure.png" alt="figure">
<a href="/relative">relative</a>
]]></description></item></channel></rss>"""


def test_xss_payloads_are_sanitized():
    (entry,) = parse(XSS.encode(), url="https://xss.example/feed").entries
    html = entry.summary_html.lower()
    for bad in ("<script", "onclick", "onerror", "style=", "javascript:", "data:", "<iframe",
                "<form", "<input", "<object", "<style", "tracker.example", "alert(document"):
        assert bad not in html, bad
    assert '<img src="https://ok.example/figure.png" alt="figure">' in entry.summary_html
    assert 'href="https://xss.example/relative"' in entry.summary_html
    # Titles are plain text, kept verbatim; escaping them is the renderer's job.
    assert entry.title == "XSS <script>alert(1)</script> title"
    assert "Hi" in entry.summary_text and "alert" not in entry.summary_text


def test_sanitize_keeps_ordinary_markup():
    assert sanitize_html("<p>a <b>b</b> <code>c</code></p>") == "<p>a <b>b</b> <code>c</code></p>"


def test_a_link_that_is_no_url_is_dropped_quietly(monkeypatch):
    # nh3 reads a backslash as "/" and passes "https://lab.example.org\[x" on; urljoin reads
    # "lab.example.org\[x" as its host, with an unclosed IPv6 bracket, and raises. Raised
    # inside nh3's callback, it dropped the link but went to sys.unraisablehook: a traceback
    # on stderr.
    import sys

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    html = sanitize_html(r'<p><a href="https://lab.example.org\[x">here</a> <img src="b.png"></p>',
                         base="https://lab.example.org/feed")
    assert html == '<p><a rel="noopener noreferrer nofollow">here</a> <img src="https://lab.example.org/b.png"></p>'
    assert unraisable == []


def test_control_characters_are_stripped_at_ingest_raw_or_as_references():
    """C0 controls, DEL and U+FFFE from a feed (JSON Feed strings may hold any of them; XML
    ones come as character references that nh3 and html.unescape turn into the raw
    character) become spaces, in every text field an entry keeps."""
    e = make_entry(guid="urn:x", link="https://lab.example.org/x", title="<b>Bells &#1; and\x00 whistles</b>",
                   summary="<p>Ring &#x1b;[31m the\x07 bells\ufffe.</p>", summary_is_html=True,
                   authors=["Ann\x08 Author"], categories=["cs\x01.LG"], published=None, fetched=NOW,
                   tldr="Loud\x7f bells.")
    assert (e.title, e.summary_text, e.authors, e.categories, e.tldr) == (
        "Bells and whistles", "Ring [31m the bells .", ["Ann Author"], ["cs .LG"], "Loud bells.")
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe]", e.summary_html)
    plain = make_entry(guid="urn:y", link="", title="Plain\x01 title", summary="Text &#1; here\x02.",
                       summary_is_html=False, authors=[], categories=[], published=None, fetched=NOW)
    assert (plain.title, plain.summary_text) == ("Plain title", "Text here .")


def test_future_dates_are_clamped_to_fetch_time():
    body = (b'<rss version="2.0"><channel><title>t</title><item><title>From the future</title>'
            b"<link>http://x.example/f</link><pubDate>Sat, 01 Jan 2039 00:00:00 GMT</pubDate>"
            b"</item></channel></rss>")
    assert parse(body).entries[0].published == NOW


@pytest.mark.parametrize("text", [
    "https://arxiv.org/abs/2604.21952v3", "http://arxiv.org/pdf/2604.21952", "oai:arXiv.org:2604.21952v1",
    "https://doi.org/10.48550/arXiv.2604.21952", "https://huggingface.co/papers/2604.21952",
    "arxiv:2604.21952",
])
def test_arxiv_id_in_all_its_forms(text):
    assert arxiv_id(text) == "2604.21952"


def test_identity_url_ignores_scheme_tracking_and_order():
    a = identity_url("http://www.Example.org/post/?b=2&a=1&utm_source=rss&fbclid=z")
    b = identity_url("https://example.org/post?a=1&b=2")
    assert a == b
    # The fragment is part of the identity: feeds tell items apart by it.
    assert identity_url("http://example.org/2002/09/29#When:1PM") != identity_url(
        "http://example.org/2002/09/29#When:6PM")
    assert identity_url("https://example.org/post?id=1") != identity_url("https://example.org/post?id=2")
    assert clean_link("https://x.example/p?utm_medium=email&id=3#top") == "https://x.example/p?id=3"
    assert clean_link("javascript:alert(1)") == ""


def test_split_authors():
    assert split_authors(["Ada Lovelace, Charles Babbage and Mary Somerville"]) == [
        "Ada Lovelace", "Charles Babbage", "Mary Somerville"]
    assert split_authors(["Lovelace, Ada"]) == ["Lovelace, Ada"]
    assert split_authors(["", "  X  Y "]) == ["X Y"]


def test_guids_that_differ_only_after_the_fragment_are_two_items():
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Day log</title>
      <item><guid isPermaLink="true">http://log.example.org/2002/09/29#When:12:59:01PM</guid>
        <description>First note of the day.</description></item>
      <item><guid isPermaLink="true">http://log.example.org/2002/09/29#When:6:52:02PM</guid>
        <description>Second note of the day.</description></item>
    </channel></rss>"""
    entries = parse(body).entries
    assert len(entries) == 2 and entries[0].ident != entries[1].ident


def test_placeholder_entries_are_dropped_and_counted():
    body = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>q</title>
      <id>urn:q</id><updated>2026-11-01T00:00:00Z</updated>
      <entry><category term=""/></entry>
      <entry><id>http://arxiv.org/abs/2611.00001v1</id><title>A real paper on rivers and soil</title>
        <updated>2026-11-01T00:00:00Z</updated><summary>Text.</summary></entry>
      <entry><category term=""/></entry>
    </feed>"""
    parsed = parse(body)
    assert [e.title for e in parsed.entries] == ["A real paper on rivers and soil"]
    assert "dropped 2 empty entries" in parsed.warning


def test_an_entry_carries_all_its_keys():
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Papers</title>
      <item><title>Deep learning for the sake of rivers and lakes</title>
        <link>https://dl.acm.org/doi/10.1145/3292500.3330919</link></item>
      <item><title>Graph surrogates for flood forecasting at scale</title>
        <link>https://papers.example.org/2604.26932</link>
        <guid>http://arxiv.org/abs/2604.26932v2</guid></item>
    </channel></rss>"""
    doi, arx = parse(body).entries
    assert doi.keys == ("doi:10.1145/3292500.3330919", "title:deep learning for the sake of rivers and lakes")
    assert arx.keys == ("arxiv:2604.26932", "title:graph surrogates for flood forecasting at scale")


def test_ids_that_normalize_alike_in_one_feed_stay_two_items():
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
      <item><guid>http://blog.example/p?id=7&amp;utm_source=a</guid><description>One.</description></item>
      <item><guid>http://blog.example/p?id=7&amp;utm_source=b</guid><description>Two.</description></item>
      <item><guid>http://blog.example/p?id=7&amp;utm_source=a</guid><description>One.</description></item>
    </channel></rss>"""
    a, b, again = parse(body).entries
    assert a.ident != b.ident and again.ident == a.ident  # listed twice is still one item


def _rss(items: str, head: bytes = b"") -> bytes:
    return head + b'<rss version="2.0"><channel><title>Lab news</title>' + items.encode() + b"</channel></rss>"


def test_character_references_xml_cannot_hold_become_a_replacement_character():
    # A reference to a surrogate makes the XML invalid; feedparser's lenient parser, which then
    # reads it, crashed on it, losing the whole feed.
    body = _rss('<item><title>Spins &#xD800; and &#0; charges &#8212; new</title>'
                '<link>https://lab.example.org/1</link></item>'
                '<item><title>Second &#99999999999; item</title><link>https://lab.example.org/2</link></item>')
    feed = parse(body)
    assert [e.title for e in feed.entries] == ["Spins \ufffd and \ufffd charges \u2014 new",
                                               "Second \ufffd item"]


@pytest.mark.parametrize("head", [b'<?xml version="1.0" encoding="UT\xcf-8"?>',
                                  b'<?xml version="1.0" encoding="utf\x00-8"?>'])
def test_a_garbled_declared_encoding_is_read_as_utf8_with_a_warning(head):
    feed = parse(_rss("<item><title>Caf\u00e9 physics</title><link>https://lab.example.org/1</link></item>",
                      head))
    assert [e.title for e in feed.entries] == ["Caf\u00e9 physics"]
    assert "read as UTF-8" in feed.warning


def test_markup_the_lenient_parser_cannot_walk_is_a_parse_error_with_its_fix():
    # A stray closing tag inside <image>: feedparser's lenient parser raises TypeError on it.
    body = _rss("<image><title>x</title></width></image><item><title>a</title></item>") + b"<"
    with pytest.raises(ParseError, match=r"broken beyond what the parser can read .*validator"):
        parse(body)


@pytest.mark.parametrize("kind", ["hf-daily-papers", "json-feed", "auto"])
def test_json_that_is_not_utf8_is_a_parse_error(kind):
    with pytest.raises(ParseError, match=r"not UTF-8 text|not an RSS"):
        parse(b'[{"paper": {"id": "2601.00001", "title": "Caf\xe9"}}]', kind=kind)


def test_mangled_feeds_parse_or_raise_parse_error_never_anything_else():
    """A seeded mutation fuzz of the fixture feeds (bounded: 600 bodies, ~1 s): whatever a
    server sends, parse_feed gives entries or a ParseError, which poll reports as the feed's
    error with its fix; never another exception ("internal error, please report it")."""
    import contextlib
    import random

    rnd = random.Random(20261206)
    names = ["rss20.xml", "atom.xml", "rss10.rdf", "rss091.xml", "arxiv_api.xml", "arxiv_rss.xml",
             "malformed.xml", "hf_daily.json", "jsonfeed.json"]
    bodies = [fixture_bytes(n) for n in names]
    snippets = [b"<", b"&", b"&#xDFFF;", b"&#1;", b"\x00", b"\xff\xfe", b"]]>", b"<![CDATA[",
                b"</item>", b"</entry>", b"</width>", b"</link>", b"<image>", b'"', b"null",
                b"[]", b"{}", b"1e999", b'"paper": 7', b'"items": {}', b'encoding="\xcf"']
    control = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
    for _ in range(600):
        body = mangled(rnd, rnd.choice(bodies), snippets)
        for kind in ("auto", rnd.choice(["feed", "hf-daily-papers", "json-feed"])):
            with contextlib.suppress(ParseError):
                feed = parse(body, {"content-type": rnd.choice(["application/xml", "", "text/html"])},
                             kind=kind)
                for e in feed.entries:  # and nothing XML cannot hold is kept (an Atom feed of it)
                    kept = [e.title, e.summary_text, e.summary_html, e.tldr, *e.authors, *e.categories]
                    assert not any(control.search(x) for x in kept), e
