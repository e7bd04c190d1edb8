from pathlib import Path

import pytest
from conftest import FIXTURES

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
