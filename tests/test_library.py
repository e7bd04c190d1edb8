from pathlib import Path

import pytest
from conftest import FIXTURES, mangled

from digest.errors import ConfigError
from digest.library import load_library, parse_bibtex

LIB = FIXTURES / "library"


def test_messy_bibtex_loads_the_good_entries_and_warns_with_lines():
    lib = load_library(LIB / "messy.bib")
    assert [p.title for p in lib.papers] == [
        "Normalization-Free Style Transfer with Learned Feature Statistics",
        "Café-Scale Weather Nowcasting with Graph Networks",
        "Parenthesised Entries Are Legal BibTeX",
    ]
    first = lib.papers[0]
    assert first.authors == ["Okafor, Lena", "Tanabe, Hiroshi", "Raman, Priya"]
    assert first.year == 2025 and first.keywords == ["style transfer", "normalization"]
    assert "instance normalization" in first.abstract
    assert lib.papers[1].authors == ["Müller, Jörg", "Ferreira, Daniela"]
    assert len(lib.warnings) == 2
    assert "messy.bib line 15: @inproceedings entry has unbalanced braces" in lib.warnings[0]
    assert "messy.bib line 27: @article entry has no title" in lib.warnings[1]


def test_csl_json_from_zotero():
    lib = load_library(LIB / "zotero.json")
    assert [p.title for p in lib.papers] == ["Sparse Mixtures of Tiny Experts", "A title with odd spacing"]
    assert lib.papers[0].authors == ["Mei Lin Chua", "The Speech Team"]
    assert lib.papers[0].year == 2024 and lib.papers[1].year == 2019
    assert lib.papers[0].keywords == ["speech", "mixture of experts"]
    assert lib.warnings == [f"{LIB / 'zotero.json'} item 2: no title; skipped it."]


def test_bad_csl_json_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "lib.json"
    bad.write_text('[{"title": "x",}]')
    with pytest.raises(ConfigError, match="not valid CSL-JSON"):
        load_library(bad)


def test_not_bibtex_at_all():
    lib = parse_bibtex("just some notes\nno entries here\n", "notes.bib")
    assert lib.papers == [] and "no BibTeX entries found" in lib.warnings[0]


def test_quoted_and_bare_values_and_latex():
    lib = parse_bibtex('@article{k, title = "A {\\em quoted} title", year = 2020,'
                       ' author = "Doe, J. and Roe, R."}')
    (p,) = lib.papers
    assert p.title == "A quoted title" and p.year == 2020 and p.authors == ["Doe, J.", "Roe, R."]


def test_check_reports_an_unreadable_library_as_one_sentence(project):
    (project.root / "lib.json").write_text("[not json")
    project.write('[users.u]\nemail = "u@example.org"\npapers = "lib.json"\n')
    r = project.run("check")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "lib.json: not valid CSL-JSON" in r.stderr


def test_letters_latex_spells_as_commands():
    lib = parse_bibtex("@article{k, title = {Na\\\"{\\i}ve Bayes}, author = {Garc{\\'\\i}a, Mar{\\'\\i}a and "
                       "Strau{\\ss}, J. and {\\O}rsted, H. and \\AA{}ngstr{\\\"o}m, A.}}")
    (p,) = lib.papers
    assert p.title == "Naïve Bayes"
    assert p.authors == ["García, María", "Strauß, J.", "Ørsted, H.", "Ångström, A."]


def test_a_generated_export_with_broken_entries_loses_only_those(tmp_path):
    import sys
    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    from libraries import bibtex

    text = bibtex(300, broken_every=100)
    for name, body in (("lf.bib", text), ("crlf.bib", text.replace("\n", "\r\n"))):
        (tmp_path / name).write_bytes(body.encode())
        lib = load_library(tmp_path / name)
        assert len(lib.papers) == 297 and len(lib.warnings) == 3
        # Each warning names the line its entry starts on.
        for w in lib.warnings:
            line = int(w.split(" line ")[1].split(":")[0])
            assert text.splitlines()[line - 1].startswith("@article{broken"), w


def test_check_reads_the_cached_library_while_the_file_is_unchanged(project):
    import os

    lib = project.root / "lib.bib"
    lib.write_text("@article{a, title={One paper about rivers}}\n@article{b, title={Two papers}}\n")
    project.write('[users.u]\nemail = "u@example.org"\npapers = "lib.bib"\n')
    assert "2 papers" in project.run("check").output  # no database yet: parsed, nothing written
    assert not (project.root / "digest.db").exists()
    project.store().close()  # a database exists once the tool has polled
    assert "2 papers" in project.run("check").output  # parsed and cached
    # Same size and modification time, other content: the cache still answers...
    st = lib.stat()
    other = "@article{a,title={x}}\n@article{b,title={y}}\n@article{c,title={z}}\n"  # three
    lib.write_text(other.ljust(st.st_size - 1) + "\n")
    os.utime(lib, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert lib.stat().st_size == st.st_size
    assert "2 papers" in project.run("check").output
    # ...and a real edit is read again.
    lib.write_text("@article{a, title={Only one paper now}}\n")
    assert "1 paper from" in project.run("check").output


def test_a_papers_arxiv_id_and_doi_are_read_from_every_field_exports_use():
    """What finds a library paper among the entries when its title there differs (a retitled
    new version): the keys entries carry, from arXiv's and biblatex's eprint, a DOI (arXiv's
    own DOIs are arXiv ids), a link, and Google Scholar's "arXiv preprint arXiv:…"; old-style
    ids (before 2007: archive/number) too."""
    lib = parse_bibtex(r"""
@article{a, title={A}, eprint={2411.01234}, archivePrefix={arXiv}}
@article{b, title={B}, doi={10.48550/arXiv.2301.00001}}
@article{c, title={C}, url={https://arxiv.org/abs/2302.12345v3}}
@article{d, title={D}, journal={{arXiv} preprint {arXiv:2303.54321}}}
@article{e, title={E}, doi={https://doi.org/10.1145/3571730.3571731}}
@misc{f, title={F}, note={Preprint, arXiv:2304.11111v2.}, doi={10.1000/XYZ}}
@article{g, title={G}, eprint={12345}, eprinttype={pubmed}}
@article{h, title={H}, journal={Nature}}
@article{i, title={I}, eprint={hep-th/9711200v3}, archivePrefix={arXiv}}
@article{j, title={J}, eprint={math.GT/0309136}}
""")
    assert [p.keys for p in lib.papers] == [
        ("arxiv:2411.01234",), ("arxiv:2301.00001",), ("arxiv:2302.12345",), ("arxiv:2303.54321",),
        ("doi:10.1145/3571730.3571731",), ("arxiv:2304.11111", "doi:10.1000/xyz"), (), (),
        ("arxiv:hep-th/9711200",), ("arxiv:math.GT/0309136",)]


def test_csl_json_keys(tmp_path: Path):
    lib_file = tmp_path / "lib.json"
    lib_file.write_text('[{"title": "A", "DOI": "10.1038/s41586-024-07566-y"},'
                        ' {"title": "B", "type": "article", "number": "arXiv:2405.00002"},'
                        ' {"title": "C", "URL": "https://arxiv.org/pdf/2406.00003v1"}]')
    assert [p.keys for p in load_library(lib_file).papers] == [
        ("doi:10.1038/s41586-024-07566-y",), ("arxiv:2405.00002",), ("arxiv:2406.00003",)]


def test_csl_json_fields_of_any_type_load_what_they_can(tmp_path: Path):
    """CSL-JSON from another tool, or edited by hand: a field holding the wrong kind of JSON
    value counts as absent; it crashed the loader, and with it every reader's digest."""
    lib = tmp_path / "lib.json"
    lib.write_text('[{"title": "Sparse attention", "author": true, "issued": {"date-parts": 5},'
                   ' "keyword": ["a"], "DOI": 7, "abstract": null},'
                   ' {"title": "Dense retrieval", "author": [{"given": 5, "family": "Roe"}, "Doe"],'
                   '  "issued": {"date-parts": [2021], "raw": "2020"}},'
                   ' {"title": "Graph nets", "issued": {"date-parts": [[null]], "raw": 2019}},'
                   ' {"title": ["not", "a", "title"]}, {"title": {"text": "nor this"}}]')
    got = load_library(lib)
    assert [(p.title, p.authors, p.year) for p in got.papers] == [
        ("Sparse attention", [], None), ("Dense retrieval", ["5 Roe"], 2020),
        ("Graph nets", [], 2019)]
    assert got.papers[0].abstract == "" and got.papers[0].keywords == []
    assert got.warnings == [f"{lib} item 4: no title; skipped it.", f"{lib} item 5: no title; skipped it."]


def test_a_bug_in_the_reader_is_that_readers_config_error(tmp_path: Path, monkeypatch):
    """No input known today reaches it (the fuzz below), so a bug is injected: whatever goes
    wrong reading one reader's file must stay one reader's error, which the ranking skips
    (seeds.readable_library), not an internal error that stops every reader's send."""
    import digest.library

    def broken(item):
        raise TypeError("a bug")

    monkeypatch.setattr(digest.library, "_csl_paper", broken)
    lib = tmp_path / "lib.json"
    lib.write_text('[{"title": "Sparse attention"}]')
    with pytest.raises(ConfigError, match=r"lib\.json: cannot read the library \(TypeError: a bug\); "
                                          "export it again"):
        load_library(lib)


def test_mangled_libraries_load_or_raise_config_error_never_anything_else(tmp_path: Path):
    """A seeded mutation fuzz (bounded: 1,500 files, ~1 s) of the two fixture exports: a
    library gives papers and warnings, or a ConfigError that the ranking reports for that
    reader alone; any other exception stopped every reader's digest."""
    import contextlib
    import copy
    import json
    import random

    rnd = random.Random(20261206)
    bib = (LIB / "messy.bib").read_bytes()
    csl = json.loads((LIB / "zotero.json").read_text())
    values = [None, 5, 1e308, "", True, [], [[]], [5], [[None]], {}, {"date-parts": 5},
              {"date-parts": [[2020, 13]]}, {"raw": 7}, [{"given": 5}], {"literal": ["x"]}]
    snippets = [b"@", b"{", b"}", b"(", b")", b"\\", b"\\'", b"=", b",", b'"', b"%", b"#",
                b"@comment{", b"@string{a=", b"\x00", b"\xff", b"{\\ss}", b"\\c{", b"@article("]
    for n in range(1500):
        if n % 2:
            data = copy.deepcopy(csl)
            for _ in range(rnd.randint(1, 4)):
                node, path = data, []
                while isinstance(node, (list, dict)) and node and rnd.random() < 0.7:
                    key = rnd.randrange(len(node)) if isinstance(node, list) else rnd.choice(list(node))
                    path.append((node, key))
                    node = node[key]
                if path:
                    parent, key = path[-1]
                    parent[key] = copy.deepcopy(rnd.choice(values))
            (tmp_path / "l.json").write_text(json.dumps(data))
            target = tmp_path / "l.json"
        else:
            (tmp_path / "l.bib").write_bytes(mangled(rnd, bib, snippets))
            target = tmp_path / "l.bib"
        with contextlib.suppress(ConfigError):
            load_library(target)
