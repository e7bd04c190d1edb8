"""Richer items: the sentence that matched, Hugging Face's summary, code and data links,
"v2 posted", sections with quotas, one surprise, arXiv's calendar, mute and reset. Each is
tested through what a reader or operator sees: `rank --json`, the emailed digest, the
preview's pages served by uvicorn, `digest feeds` and `digest check`."""

from __future__ import annotations

import json
import random
import re
import shutil
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import httpx
import time_machine
from conftest import FIXTURES
from test_render import NOW, entry, write_project

from digest import sentences
from digest.artifacts import code_link, data_link
from digest.daily import render_digests
from digest.deliver import backend_for
from digest.health import sync_feeds
from digest.highlight import Highlighter, Profile, _stems, highlight, seed_words
from digest.links import Links
from digest.send import send_digests


def ranked(project, *args) -> list[dict]:
    with time_machine.travel(NOW, tick=False):
        result = project.run("rank", "ada", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def one_reader(project, feeds: dict[str, dict[str, str]], interest: str, *settings: str) -> None:
    """A config of these feeds and one reader, ada, with one interest phrase."""
    lines = ["[ranking]", 'semantic_mode = "off"']
    for name, keys in feeds.items():
        lines += [f"[feeds.{name}]", *(f'{k} = "{v}"' for k, v in keys.items())]
    lines += ["[users.ada]", 'email = "ada@example.org"', *settings, "[users.ada.interests]",
              f'"{interest}" = 1']
    project.write("\n".join(lines) + "\n")


# -- the sentence that matched ----------------------------------------------------------------

ABSTRACT = ("We study how bees choose flowers. Our main tool is style transfer applied to "
            "wing patterns. It works on every species we tried.")


def test_the_highlight_is_the_sentence_with_the_readers_phrase():
    h = highlight(ABSTRACT, Profile.of(["style transfer"], []))
    assert h.text == "Our main tool is style transfer applied to wing patterns."
    assert [t for t, bold in h.parts() if bold] == ["style transfer"]
    # Inflected forms match by stem, and a phrase's words must stand together.
    h = highlight("Nothing here. We transfer a style. Style transfers are fast.",
                  Profile.of(["style transfer"], []))
    assert h.text == "Style transfers are fast." and h.marks == ((0, 15),)


def test_a_sentence_past_what_a_stored_place_holds_is_cut_and_marked_before_the_cut():
    """Words' places are stored in 16 bits: a sentence of 70,000 characters (an abstract
    without full stops) still shows its opening, cut at a word, with only the phrase there
    marked."""
    filler = " ".join(["data"] * 14_000)
    h = highlight(f"We use style transfer {filler} and style transfer", Profile.of(["style transfer"], []))
    assert h.text.endswith("…") and len(h.text) <= 321 and h.marks == ((7, 21),)
    assert h.text[7:21] == "style transfer"


def test_sentences_are_found_in_the_text_as_stored_and_shown_with_whitespace_collapsed():
    """Sentences are placed in the abstract as stored (only the one shown is collapsed): with
    line breaks, tabs, runs and non-breaking spaces anywhere, a highlight shows what the
    collapsed abstract would, marked at the same words."""
    rnd = random.Random(7)
    spaces = [" ", "  ", "\n", "\t", "\xa0", " \n  ", "\u2003"]
    profile = Profile.of(["style transfer", "every species"], ["Choosing flowers"])
    for _ in range(50):
        messy = "".join(rnd.choice(spaces) if c == " " else c for c in f" {ABSTRACT} So it goes. ")
        clean = " ".join(messy.split())
        assert sentences.split_sentences(messy) == sentences.split_sentences(clean) == [
            *sentences.split_sentences(ABSTRACT), "So it goes."]
        for text in ("Our main tool is style transfer.", "It works on every species we tried."):
            assert highlight(messy, profile, seed_words("x", text)) == highlight(
                clean, profile, seed_words("x", text))
        assert highlight(messy, profile).text == "Our main tool is style transfer applied to wing patterns."
    assert sentences.split_sentences(" \n\t ") == [] and highlight(" \n ", profile).text == ""


def test_without_a_match_the_highlight_is_the_first_sentence():
    h = highlight(ABSTRACT, Profile.of(["protein folding"], ["A survey of graph networks"]))
    assert h.text == "We study how bees choose flowers." and h.marks == ()
    assert highlight("", Profile()).text == ""


def test_the_seed_paper_then_the_library_decide_when_no_phrase_matches():
    text = "Bees are insects. Wing patterns vary between species. Flowers attract bees."
    seed = seed_words("Wing pattern variation", "How wing patterns vary across species.")
    h = highlight(text, Profile.of([], ["Flowers and their pollinators"]), seed)
    assert h.text == "Wing patterns vary between species."
    assert [t for t, bold in h.parts() if bold] == ["Wing patterns vary", "species"]  # runs merged
    h = highlight(text, Profile.of([], ["Flowers and their pollinators"]))  # the library alone
    assert h.text == "Flowers attract bees." and h.parts()[0] == ("Flowers", True)


def _plainly(abstract: str, profile: Profile, seed: frozenset[str]) -> tuple[str, int]:
    """What the highlight should choose, worked out the slow way: each sentence's key (phrase
    occurrences, distinct seed words, distinct library words), the first with the highest."""
    from digest.sentences import split_sentences

    def key(sentence: str) -> tuple[int, int, int]:
        stems = _stems(sentence)
        runs = sum(tuple(stems[i:i + len(p)]) == p for p in profile.phrases for i in range(len(stems)))
        return runs, len(set(stems) & seed), len(set(stems) & profile.library)

    keys = [key(s) for s in split_sentences(abstract)]
    best = keys.index(max(keys))
    return split_sentences(abstract)[best], sum(keys[best])


def test_one_readers_items_matched_at_once_choose_as_one_at_a_time():
    """The highlighter matches a reader's items together, as arrays (more than one chunk of
    them here, seeds repeated, phrases that would run across a sentence's end): each item
    gets the sentence the slow way picks, marked exactly when something matched."""
    rnd = random.Random(7)
    words = ["bees", "flowers", "style", "transfer", "wing", "patterns", "graph", "networks", "flood", "river", "attention", "sparse", "long", "context", "species", "garden", "models", "of", "the", "and"]
    def sentence() -> str:
        return " ".join(rnd.choices(words, k=rnd.randint(3, 12))).capitalize() + "."
    abstracts = [" ".join(sentence() for _ in range(rnd.randint(1, 6))) for _ in range(60)]
    abstracts += ["", "Style. Transfer is here."]  # no sentence; a phrase across two
    profile = Profile.of(["style transfer", "graph networks", "of the", "flood"],
                         ["Wing patterns of bees", "Sparse attention"])
    seeds = [seed_words(f"Seed {k}", " ".join(rnd.choices(words, k=8))) for k in range(5)]
    cases = [(a, rnd.choice([*seeds, frozenset()])) for a in abstracts]
    vocabulary: dict[str, int] = {}
    def ids(stems, add):
        return {s: vocabulary.setdefault(s, len(vocabulary)) for s in stems} if add else {
            s: vocabulary[s] for s in stems if s in vocabulary}
    highlighter = Highlighter(ids)
    docs = []
    for a, _ in cases:
        doc = sentences.one(a, highlighter.ids)
        docs.append(doc if doc.n else None)
    marks = highlighter.marks(profile, seeds)
    together = highlighter.many(marks, [(d, seeds.index(seed) if seed else None)
                                        for d, (_, seed) in zip(docs, cases, strict=True)])
    assert len(together) == len(cases) > Highlighter.CHUNK
    for (a, seed), h in zip(cases, together, strict=True):
        assert h == highlight(a, profile, seed)
        if not a:
            assert h.text == ""
            continue
        text, matched = _plainly(a, profile, seed)
        assert h.text == text and bool(h.marks) == bool(matched)
        # Marks (from the words' stored places) cover whole words, each one a word matched.
        marked = {w for x, y in h.marks for w in _stems(text[x:y])}
        assert all(re.fullmatch(r"\b[A-Za-z ]+\b", text[x:y]) for x, y in h.marks)
        assert marked <= {w for p in profile.phrases for w in p} | seed | profile.library
    assert highlight("Style. Transfer is here.", profile).marks == ()  # not across sentences


def test_rank_json_carries_the_highlight(project):
    write_project(project, [
        ("arxiv", entry("bees", "Style transfer for bees", ABSTRACT)),
        ("arxiv", entry("plain", "Sparse attention, plainly", "First sentence here. Second one.")),
    ])
    items = {i["id"]: i for i in ranked(project)}
    by_title = {i["title"]: i for i in items.values()}
    assert by_title["Style transfer for bees"]["highlight"] == (
        "Our main tool is style transfer applied to wing patterns.")
    assert by_title["Sparse attention, plainly"]["highlight"] == "First sentence here."


# -- Hugging Face's summary, code and data links ------------------------------------------------

def test_hugging_face_summary_and_code_links_come_through(project):
    shutil.copy(FIXTURES / "hf_daily.json", project.root / "hf.json")
    shutil.copy(FIXTURES / "arxiv_api.xml", project.root / "arxiv.xml")
    one_reader(project, {"arxiv": {"path": "arxiv.xml"},
                         "hf": {"path": "hf.json", "kind": "hf-daily-papers"}}, "speech recognition")
    assert project.run("poll").exit_code == 0
    items = {i["title"]: i for i in ranked(project, "--all")}
    tiny = items["Sparse Mixtures of Tiny Experts for On-Device Speech Recognition"]
    # One paper from two feeds: HF lends its AI summary and repository, arXiv's comment a dataset.
    assert tiny["tldr"] == {"text": "Tiny routed experts bring server-grade speech recognition "
                            "to phones.", "source": "Hugging Face's AI summary"}
    assert tiny["code"] == "https://github.com/meilin-lab/tiny-experts"
    assert tiny["data"] == "https://huggingface.co/datasets/meilin-lab/phone-speech"
    other = items["Only On Hugging Face Today: A Benchmark of Benchmarks"]
    assert other["tldr"] is None and other["code"] is None and other["data"] is None


def test_code_and_data_links_are_found_where_authors_write_them():
    assert code_link("Code: https://github.com/a-b/c.d.git).") == "https://github.com/a-b/c.d"
    assert code_link("see https://gitlab.com/x/y, and more") == "https://gitlab.com/x/y"
    assert code_link("our page https://github.com/orgname") == ""  # a profile, not a repository
    assert code_link("Project page: https://example.org/x") == ""
    assert data_link("at https://zenodo.org/records/123456.") == "https://zenodo.org/records/123456"
    assert data_link("Data: https://huggingface.co/datasets/org/set") == (
        "https://huggingface.co/datasets/org/set")


def test_the_email_labels_the_summary_as_hugging_faces(project):
    write_project(project, [("arxiv", entry("st", "Style transfer now", "Fast style transfer.",
                                            tldr="An AI's take.", code="https://github.com/o/r"))])
    config = project.config()
    with project.store() as s, time_machine.travel(NOW, tick=False):
        (done,) = render_digests(config, s, [config.users["ada"]], None, NOW)
    assert "TL;DR, Hugging Face&#39;s AI summary:</span> An AI&#39;s take." in done.html
    assert '<a class="artifact" href="https://github.com/o/r"' in done.html
    assert "   TL;DR, Hugging Face's AI summary:\n   An AI's take." in done.text
    assert "Code: https://github.com/o/r" in done.text


# -- "v2 posted" ----------------------------------------------------------------------------------

RSS = """<rss xmlns:arxiv="http://arxiv.org/schemas/atom" version="2.0"><channel>
<title>cs.LG updates on arXiv.org</title><link>http://rss.arxiv.org/rss/cs.LG</link>
{items}</channel></rss>"""
ITEM = """<item><title>{title}</title><link>https://arxiv.org/abs/{id}</link>
<description>arXiv:{id}v{v} Announce Type: {kind} Abstract: {abstract}</description>
<guid isPermaLink="false">oai:arXiv.org:{id}v{v}</guid><category>cs.LG</category>
<pubDate>{date}</pubDate></item>"""
PAPERS = {"2611.00001": "Style transfer with diffusion priors",
          "2611.00002": "Style transfer for line drawings",
          "2611.00003": "Style transfer under a budget"}


def arxiv_feed(project, versions: dict[str, int], day: datetime) -> None:
    items = "".join(ITEM.format(title=PAPERS[i], id=i, v=v, kind="new" if v == 1 else "replace",
                                abstract=f"We study {PAPERS[i].lower()}. Version {v}.",
                                date=day.strftime("%a, %d %b %Y 00:00:00 -0500"))
                    for i, v in versions.items())
    (project.root / "arxiv.xml").write_text(RSS.format(items=items))


def day_of(project, when: datetime) -> str:
    """Poll, then send ada's digest at `when`; the text part of what went ('' when nothing
    new made it worth sending)."""
    config = project.config()
    with time_machine.travel(when, tick=False):
        assert project.run("poll", "--force").exit_code == 0
        with project.store() as s:
            (result,) = send_digests(config, s, [config.users["ada"]], None, when,
                                     backend_for(config), sleep=lambda _: None)
    if result.state == "skipped":
        return ""
    assert result.state == "sent", result
    eml = project.root / "outbox" / when.date().isoformat() / "ada.eml"
    msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
    return msg.get_body(("plain",)).get_content()


def versions_project(project, *settings: str) -> None:
    one_reader(project, {"arxiv": {"path": "arxiv.xml"}}, "style transfer", "max_items = 2",
               *settings)


def test_a_new_version_of_a_liked_or_sent_paper_is_told_once(project, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    versions_project(project)
    d1 = datetime(2026, 11, 16, 8, tzinfo=UTC)
    arxiv_feed(project, {"2611.00001": 1, "2611.00002": 1}, d1)
    first = day_of(project, d1)
    assert "Style transfer with diffusion priors" in first and "UPDATED" not in first
    with project.store() as s:
        (liked,) = [e.id for e in s.entries_for_ranking() if e.title == PAPERS["2611.00001"]]
        s.set_vote("ada", liked, 1, d1 + timedelta(hours=1))
    # Day 2: both get a v2 (one liked, one only sent) and a new paper arrives.
    d2 = d1 + timedelta(days=1)
    arxiv_feed(project, {"2611.00001": 2, "2611.00002": 2, "2611.00003": 1}, d2)
    second = day_of(project, d2)
    updated = second.split("UPDATED", 1)[1].split("--", 1)[0]
    assert "Style transfer with diffusion priors" in updated
    assert "v2 posted; you liked v1 on 16 Nov" in updated
    assert "Style transfer for line drawings" in updated
    assert "v2 posted; in your digest of 16 Nov" in updated
    assert "Style transfer under a budget" in second.split("UPDATED", 1)[0]
    # Day 3: the same versions again, nothing new: no digest, and no Updated section.
    d3 = d2 + timedelta(days=1)
    assert day_of(project, d3) == ""
    with project.store() as s, time_machine.travel(d3, tick=False):
        config = project.config()
        (done,) = render_digests(config, s, [config.users["ada"]], None, d3)
        # A window reaching back over day 2 (a first digest's lookback, a resend) still
        # does not tell it again: day 2's digest in the ledger already did.
        (wide,) = render_digests(config, s, [config.users["ada"]], None, d3,
                                 last_sent={"ada": d1})
        # The day-2 digest reopens as it was emailed, Updated section and highlights included.
        (again,) = render_digests(config, s, [config.users["ada"]], d2.date(), d3)
    assert done.digest.updated == [] and "v2 posted" not in done.text
    assert wide.digest.updated == [] and "Style transfer under a budget" in wide.text
    assert again.text == second.replace("\r\n", "\n")
    # A v3 is news again.
    d4 = d3 + timedelta(days=1)
    arxiv_feed(project, {"2611.00001": 3}, d4)
    fourth = day_of(project, d4)
    assert "v3 posted; you liked v1 on 16 Nov" in fourth and "line drawings" not in fourth


def test_rank_shows_the_updated_section_the_email_will_hold_and_tells_nothing(project,
                                                                              monkeypatch):
    """`digest rank` previews the digest: its Updated section too, as the send will write it,
    and previewing it marks nothing as told (the send after it still tells)."""
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    versions_project(project)
    d1 = datetime(2026, 11, 16, 8, tzinfo=UTC)
    arxiv_feed(project, {"2611.00001": 1, "2611.00002": 1}, d1)
    day_of(project, d1)
    d2 = d1 + timedelta(days=1)
    arxiv_feed(project, {"2611.00001": 2, "2611.00002": 2, "2611.00003": 1}, d2)
    with time_machine.travel(d2, tick=False):
        assert project.run("poll", "--force").exit_code == 0
        twice = [project.run("rank", "ada", "--json") for _ in range(2)]
        table = project.run("rank", "ada")
    assert twice[0].exit_code == 0 and twice[0].output == twice[1].output, twice[0].output
    got = json.loads(twice[0].output)
    updated = {r["title"]: r["reasons"] for r in got if r["section"] == "Updated"}
    assert updated == {PAPERS[i]: ["v2 posted; in your digest of 16 Nov"]
                       for i in ("2611.00001", "2611.00002")}, got
    assert [r["title"] for r in got if r["section"] != "Updated"] == [PAPERS["2611.00003"]]
    assert "(Updated)" in table.output and "in your digest of 16 Nov" in table.output
    told = day_of(project, d2).split("UPDATED", 1)[1].split("--", 1)[0]
    assert all(title in told for title in updated), told
    # --all ranks every entry: no Updated section, so harnesses reading it see entries only.
    with time_machine.travel(d2, tick=False):
        everything = json.loads(project.run("rank", "ada", "--all", "--json").output)
    assert all(r["section"] != "Updated" for r in everything)


def test_updates_can_be_turned_off(project, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    versions_project(project, "updates = false")
    d1 = datetime(2026, 11, 16, 8, tzinfo=UTC)
    arxiv_feed(project, {"2611.00001": 1}, d1)
    day_of(project, d1)
    arxiv_feed(project, {"2611.00001": 2}, d1 + timedelta(days=1))
    assert day_of(project, d1 + timedelta(days=1)) == ""  # nothing else new: no digest at all


def test_a_version_seen_first_is_no_revision(project):
    """An entry first met at v2 (a replacement listing) is not 'updated' for anyone."""
    versions_project(project)
    arxiv_feed(project, {"2611.00001": 2}, NOW)
    with time_machine.travel(NOW, tick=False):
        assert project.run("poll").exit_code == 0
    with project.store() as s:
        (e,) = s.entries_for_ranking()
        assert (e.version, e.revised) == (2, "")


# -- sections with quotas, and one surprise -------------------------------------------------------

SECTIONED = [
    *[("arxiv", entry(f"st{i}", f"Style transfer method {i}", "Style transfer again.",
                      published=NOW - timedelta(minutes=i))) for i in range(5)],
    *[("arxiv", entry(f"gh{i}", f"Compilers, part {i}", "On compilers.", authors=["Grace Hopper"]))
      for i in range(3)],
    *[("arxiv", entry(f"sa{i}", f"Sparse attention trick {i}", "Sparse attention helps."))
      for i in range(4)],
    ("arxiv", entry("bees", "Bees prefer blue flowers", "Field study of bees.", popularity=500)),
    ("arxiv", entry("popst", "Style transfer everyone likes", "Style transfer.", popularity=400)),
]


def sections_extra(project, **user) -> None:
    text = project.path.read_text()
    lines = "".join(f"{k} = {v}\n" for k, v in user.items())
    text = text.replace('authors = ["Grace Hopper"]\n', 'authors = ["Grace Hopper"]\n' + lines)
    project.path.write_text(text)


def test_sections_respect_their_quotas_and_max_items(project):
    write_project(project, SECTIONED, extra="max_items = 6")
    sections_extra(project)
    project.path.write_text(project.path.read_text() + """
[users.ada.sections]
"Style transfer" = {match = ["style transfer"], max = 2}
"Hopper" = {match = ["Grace Hopper"]}
""" + '"Learning" = {match = ["cs.LG"], max = 1}\n')
    items = [i for i in ranked(project) if not i["trending"]]
    assert len(items) == 6  # max_items counts every section
    by = {}
    for i in items:
        by.setdefault(i["section"], []).append(i["title"])
    assert len(by["Style transfer"]) == 2  # its quota: the other style transfer papers are passed over
    assert all(t.startswith("Style transfer") for t in by["Style transfer"])
    assert by["Hopper"] and all(t.startswith("Compilers") for t in by["Hopper"])
    # cs.LG fits every item, but an item goes to the first section that fits and has room.
    assert len(by.get("Learning", [])) <= 1
    # The email shows the sections in the reader's order.
    config = project.config()
    with project.store() as s, time_machine.travel(NOW, tick=False):
        (done,) = render_digests(config, s, [config.users["ada"]], None, NOW)
    titles = [s.title for s in done.view.sections]
    assert titles[:2] == ["Style transfer", "Hopper"] and titles[-1] == "Trending"


def test_items_fitting_no_section_go_to_more_for_you(project):
    write_project(project, SECTIONED, extra="max_items = 12")
    everything = [i for i in ranked(project) if not i["trending"]]
    assert sum(i["title"].startswith("Compilers") for i in everything) == 3
    project.path.write_text(project.path.read_text() + """
[users.ada.sections]
"Hopper" = {match = ["Grace Hopper"], max = 1}
""")
    items = [i for i in ranked(project) if not i["trending"]]
    assert [i["section"] for i in items].count("Hopper") == 1
    assert sum(i["title"].startswith("Compilers") for i in items) == 1  # the quota caps the topic
    assert {i["section"] for i in items} == {"Hopper", "More for you"}
    kept = {i["title"] for i in items}
    assert all(i["title"] in kept for i in everything if not i["title"].startswith("Compilers")
               and i["title"] != everything[-1]["title"])  # the rest move up, one may join


def test_the_surprise_is_popular_and_outside_the_profile(project):
    write_project(project, SECTIONED, extra="max_items = 3")
    project.path.write_text(project.path.read_text().replace(
        '[ranking]\nsemantic_mode = "off"', '[ranking]\nsemantic_mode = "off"\ntrending = 0'))
    assert [i for i in ranked(project) if i["section"] == "Something different"] == []
    sections_extra(project, serendipity=1)
    items = ranked(project)
    (pick,) = [i for i in items if i["section"] == "Something different"]
    # The most popular item is the bees paper; the popular style transfer one is inside the profile.
    assert pick["title"] == "Bees prefer blue flowers"
    assert pick["reasons"] == ["something different: 500 upvotes, and far from what you follow"]
    assert "style transfer" not in (pick["title"] + pick["highlight"]).lower()
    # Trending comes after it and does not show it twice.
    project.path.write_text(project.path.read_text().replace("trending = 0", "trending = 2"))
    items = ranked(project)
    assert [i["title"] for i in items].count("Bees prefer blue flowers") == 1
    assert "Bees prefer blue flowers" not in [i["title"] for i in items if i["trending"]]


# -- arXiv's calendar ---------------------------------------------------------------------------

def calendar_project(project, last_new: datetime, polled: datetime) -> None:
    one_reader(project, {"cs-lg": {"url": "https://rss.arxiv.org/rss/cs.LG", "title": "arXiv cs.LG"}},
               "style transfer")
    config = project.config()
    with project.store() as s:
        sync_feeds(config, s)
        s.add_entries("cs-lg", [entry("a1", "Style transfer at scale", published=last_new)], last_new)
        (state,) = s.feed_states()
        state.last_success_at = polled.isoformat()
        s.save_feed_states([state])


def feeds_output(project, when: datetime) -> str:
    with time_machine.travel(when, tick=False):
        result = project.run("feeds")
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_arxiv_at_the_weekend_is_a_quiet_day_not_a_stall(project):
    friday = datetime(2026, 11, 27, 6, tzinfo=UTC)  # after Thursday's announcement
    saturday = datetime(2026, 11, 28, 12, tzinfo=UTC)
    calendar_project(project, friday, saturday)
    out = feeds_output(project, saturday)
    assert "arXiv: no announcement today (Saturday)" in out and "stalled" not in out
    config = project.config()
    with project.store() as s, time_machine.travel(saturday, tick=False):
        (done,) = render_digests(config, s, [config.users["ada"]], None, saturday)
    assert "arXiv: no announcement today (Saturday)" in done.text


def test_arxiv_without_new_ids_on_a_wednesday_is_stalled(project, live_preview):
    monday = datetime(2026, 11, 30, 10, tzinfo=UTC)
    wednesday = datetime(2026, 12, 2, 12, tzinfo=UTC)
    calendar_project(project, monday, wednesday - timedelta(hours=1))
    out = feeds_output(project, wednesday)
    assert "arXiv cs.LG: nothing new since Monday — the feed may be stalled" in out
    assert "no announcement" not in out
    # Last polled before Monday evening's announcement had had time to arrive: not judged.
    calendar_project(project, monday, datetime(2026, 12, 1, 5, tzinfo=UTC))
    assert "stalled" not in feeds_output(project, datetime(2026, 12, 1, 5, 30, tzinfo=UTC))
    # The health page says it and draws the 30 days, today's entry in the last bar.
    calendar_project(project, monday, wednesday - timedelta(hours=1))
    base = live_preview(project, now=lambda: wednesday)
    page = httpx.get(base + "/health", timeout=10).text
    assert "nothing new since Monday — the feed may be stalled" in page
    bars = re.findall(r'<rect x="(\d+)" y="([\d.]+)" width="3" height="([\d.]+)"', page)
    assert len(bars) == 30 and float(bars[-3][2]) > 1 and float(bars[-1][2]) == 1


# -- mute and reset ----------------------------------------------------------------------------------

def test_mute_and_reset_change_the_next_ranking(project, live_preview, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    config = write_project(project, [
        ("arxiv", entry("st", "Fast style transfer for video", "We make style transfer fast.")),
        ("arxiv", entry("sa", "Sparse attention for long documents", "Block-sparse attention.",
                        authors=["Grace Hopper", "Alan Turing"])),
        ("arxiv", entry("cc", "Compilers by hand", "On compilers.", authors=["Grace Hopper"])),
        ("arxiv", entry("bees", "Bees prefer blue flowers", "Field study of sparse attention.")),
    ])
    before = {i["title"]: i["score"] for i in ranked(project)}
    assert {"Sparse attention for long documents", "Compilers by hand"} <= set(before)
    links = Links(config.digest.base_url, b"test-secret")
    base = live_preview(project, now=lambda: NOW)
    with project.store() as s:
        ids = {e.title: e.id for e in s.entries_for_ranking()}

    def local(url: str) -> str:
        return base + url.removeprefix(config.digest.base_url)

    with httpx.Client(timeout=10, headers={"Origin": base}) as http:
        page = local(links.feedback("ada", ids["Sparse attention for long documents"], "down"))
        shown = http.get(page).text
        assert "Mute the author Grace Hopper" in shown and "Mute the phrase “sparse attention”" in shown
        r = http.post(page, data={"do": "mute-author", "value": "Grace Hopper"})
        assert r.status_code == 200 and "Muted: nothing with Grace Hopper" in r.text
        assert http.post(page, data={"do": "mute-author", "value": "Someone Else"}).status_code == 400
        after = {i["title"] for i in ranked(project)}
        assert "Compilers by hand" not in after and "Sparse attention for long documents" not in after
        check = project.run("check")
        assert "Muted by ada: author: Grace Hopper" in check.output
        r = http.post(page, data={"do": "mute-phrase", "value": "sparse attention"})
        assert "Bees prefer blue flowers" not in {i["title"] for i in ranked(project)}
        # The reader's page lists both and unmutes.
        mine = local(links.reader("ada"))
        listed = http.get(mine).text
        assert "author: Grace Hopper" in listed and "phrase: sparse attention" in listed
        http.post(mine, data={"do": "unmute", "kind": "author", "value": "Grace Hopper"})
        http.post(mine, data={"do": "unmute", "kind": "phrase", "value": "sparse attention"})
        assert {i["title"]: i["score"] for i in ranked(project)} == before
        # A vote moves the ranking; resetting the votes moves it back.
        vote = local(links.feedback("ada", ids["Bees prefer blue flowers"], "up"))
        http.post(vote, data={"do": "vote"})
        assert {i["title"]: i["score"] for i in ranked(project)} != before
        reset = http.post(mine, data={"do": "reset"})
        assert "Forgot 1 vote: your digests start afresh." in reset.text
    assert {i["title"]: i["score"] for i in ranked(project)} == before
    with project.store() as s:
        assert s.votes("ada") == {} and s.mutes("ada") == []


def test_the_updates_decider_tells_each_version_once_and_respects_mutes():
    from digest.models import StoredEntry
    from digest.updates import updated_items

    def e(i, version, authors=("Ann Author",)):
        return StoredEntry(id=i, title=f"Paper {i}", link="", summary_text="On style transfer.",
                           authors=list(authors), categories=[], published="", fetched="",
                           popularity=0, sources=[], version=version,
                           revised="2026-11-20T08:00:00+00:00")

    liked = {"a": ("2026-11-12T09:00:00+00:00", 1), "b": ("2026-11-12T09:00:00+00:00", 2)}
    got = updated_items([e("a", 2), e("b", 2), e("c", 3), e("d", 2)], liked,
                        {"c": "2026-11-02", "d": "2026-11-25"}, set())
    assert [(r.id, r.reasons) for r in got] == [
        ("a", ["v2 posted; you liked v1 on 12 Nov"]),  # b was liked at v2 already
        ("c", ["v3 posted; in your digest of 2 Nov"])]  # d was sent after the revision
    assert [r.section for r in got] == ["Updated", "Updated"]
    assert updated_items([e("a", 2)], liked, {}, {("a", 2)}) == []  # told before
    assert [r.id for r in updated_items([e("a", 3)], liked, {}, {("a", 2)})] == ["a"]
    assert updated_items([e("a", 2, ["Grace Hopper"])], liked, {}, set(),
                         [("author", "Grace Hopper", "")]) == []
    assert updated_items([e("a", 2)], liked, {}, set(), [("phrase", "style transfer", "")]) == []
