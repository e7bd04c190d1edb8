"""Seed libraries: BibTeX and CSL-JSON exports (Zotero, Mendeley, Google Scholar, ...).

The BibTeX reader is hand-written and forgiving on purpose: real exports hold odd entries
(unbalanced braces, @comment blocks, missing commas). A broken entry is skipped with a warning
that names its line; the rest of the file still loads.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from digest.errors import ConfigError
from digest.normalize import paper_keys


@dataclass
class SeedPaper:
    title: str
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    keywords: list[str] = field(default_factory=list)
    keys: tuple[str, ...] = ()  # its arXiv id and DOI as entries are keyed (normalize.paper_keys)

    @property
    def text(self) -> str:
        return f"{self.title}. {self.abstract} {' '.join(self.keywords)}".strip()


@dataclass
class Library:
    papers: list[SeedPaper]
    warnings: list[str]


def load_library(path: Path) -> Library:
    """Load a .bib or CSL-JSON file. Raises ConfigError, and nothing else, if the file cannot
    be read at all: the ranking then goes on without this reader's library (seeds.py)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError([f"{path}: cannot read the library ({e.strerror}); fix the papers "
                           "path."]) from None
    text = raw.decode("utf-8", errors="replace")
    stripped = text.lstrip("\ufeff \t\r\n")
    try:
        if path.suffix.lower() == ".json" or stripped[:1] in ("[", "{"):
            return _load_csl_json(path, text)
        return parse_bibtex(text, str(path))
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - a reader bug: one reader's file, one reader's error
        raise ConfigError([f"{path}: cannot read the library ({type(e).__name__}: {e}); export it "
                           "again, and report the file if that does not help."]) from None


# -- BibTeX ------------------------------------------------------------------------------------

_ENTRY_START = re.compile(r"@\s*([A-Za-z]+)\s*([{(])")
_LINE_AT = re.compile(r"^\s*@", re.M)
_LATEX_CMD = re.compile(r"\\[A-Za-z]+\s*(\{([^{}]*)\})?")
_ACCENT = re.compile(r"\\['`^\"~=.uvHckr]\s*\{?(\\[ij](?![A-Za-z])|[A-Za-z])\}?")
# Letters LaTeX spells as commands: {\ss}, {\o}, \aa{}, and the dotless i under an accent.
_LETTER = re.compile(r"\\(ss|aa|AA|ae|AE|oe|OE|o|O|l|L|i|j)(?![A-Za-z])(?:\{\})?")
_LETTERS = {"ss": "ß", "aa": "å", "AA": "Å", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "o": "ø",
            "O": "Ø", "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ"}
_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303",
            "=": "\u0304", ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b",
            "c": "\u0327", "k": "\u0328", "r": "\u030a"}


def parse_bibtex(text: str, name: str = "library") -> Library:
    papers: list[SeedPaper] = []
    warnings: list[str] = []
    pos = 0
    line, counted = 1, 0  # line numbers counted on from the previous entry, not from the top
    while True:
        m = _ENTRY_START.search(text, pos)
        if not m:
            break
        kind = m.group(1).lower()
        line += text.count("\n", counted, m.start())
        counted = m.start()
        close = "}" if m.group(2) == "{" else ")"
        end = _matching(text, m.end(), m.group(2), close)
        if end is None:
            warnings.append(f"{name} line {line}: @{kind} entry has unbalanced braces; skipped it "
                            "(fix the braces to include it).")
            # Resume at the next entry that starts a line, so one bad entry costs only itself.
            nxt = _LINE_AT.search(text, m.end())
            pos = nxt.start() if nxt else len(text)
            continue
        pos = end + 1
        if kind in ("comment", "preamble", "string"):
            continue
        body = text[m.end():end]
        fields = _fields(body)
        if fields is None:
            warnings.append(f"{name} line {line}: @{kind} entry could not be read (a field is "
                            "malformed); skipped it.")
            continue
        title = _clean(fields.get("title", ""))
        if not title:
            warnings.append(f"{name} line {line}: @{kind} entry has no title; skipped it.")
            continue
        papers.append(SeedPaper(
            title=title, abstract=_clean(fields.get("abstract", "")),
            authors=[_clean(a) for a in re.split(r"\s+and\s+", fields.get("author", "")) if a.strip()],
            year=_year(fields.get("year", "") or fields.get("date", "")),
            keywords=[k.strip() for k in re.split(r"[,;]", _clean(fields.get("keywords", "")))
                      if k.strip()],
            keys=_keys(fields.get("doi", ""), fields.get("url", ""), _eprint(fields),
                       fields.get("journal", ""), fields.get("note", ""),
                       fields.get("howpublished", ""))))
    if not papers and text.strip() and not warnings:
        warnings.append(f"{name}: no BibTeX entries found; export the library as BibTeX "
                        "(.bib) or CSL-JSON (.json).")
    return Library(papers, warnings)


_ENTRY_SCAN = re.compile(r"\\.|[{}()]|^[ \t]*@", re.M)
_BRACE_SCAN = re.compile(r"\\.|[{}]")


def _matching(text: str, start: int, open_: str, close: str) -> int | None:
    """Index of the bracket closing the entry opened just before `start`, or None when an '@'
    at the start of a line arrives first (the entry is broken)."""
    if open_ == "{":
        # An entry ends before the next '@' that starts a line, or is broken.
        nxt = _LINE_AT.search(text, start)
        limit = nxt.start() if nxt else len(text)
        end = _brace_end(text, start, limit)
        if end is not None:
            return end
    depth = 1
    for m in _ENTRY_SCAN.finditer(text, start):
        c = m.group(0)
        if c[0] == "\\":
            continue
        if c == "{" or (c == "(" and open_ == "("):
            depth += 1
        elif c == "}" or (c == ")" and close == ")"):
            depth -= 1
            if depth == 0:
                return m.start()
        elif c.lstrip().startswith("@"):
            return None
    return None


def _brace_end(text: str, start: int, limit: int | None = None) -> int | None:
    """Index of the '}' closing a '{' opened just before `start`, found with str.find (most
    values have no nested braces; a library has a hundred thousand of them). None when the
    braces never balance, or when an escaped brace (\\{ or \\}) comes first: the careful
    scan decides those."""
    limit = len(text) if limit is None else limit
    end = text.find("}", start, limit)
    if end > 0 and text.find("{", start, end) < 0 and text[end - 1] != "\\":
        return end  # the common case: no nested braces
    depth, i = 1, start
    next_open = text.find("{", i, limit)
    while True:
        end = text.find("}", i, limit)
        if end < 0:
            return None
        while 0 <= next_open < end:
            depth += 1
            next_open = text.find("{", next_open + 1, limit)
        depth -= 1
        if depth == 0:
            if "\\{" in text[start:end + 1] or "\\}" in text[start:end + 1]:
                return None
            return end
        i = end + 1


def _fields(body: str) -> dict[str, str] | None:
    """key, name = {value} | "value" | number | macro, ... → {name: value}."""
    comma = body.find(",")
    if comma < 0:
        return {}
    out: dict[str, str] = {}
    i, n = comma + 1, len(body)
    while i < n:
        m = _FIELD_NAME.match(body, i)
        if not m:
            if body[i:].strip(" \t\r\n,"):
                return out or None  # junk after good fields is tolerated
            break
        name = m.group(1).lower()
        i = m.end()
        if i < n and body[i] == "{":
            end = _brace_end(body, i + 1)
            if end is None:
                end = _close_brace(body, i)
            if end is None:
                return None
            value, i = body[i + 1:end], end + 1
        elif i < n and body[i] == '"':
            end = _QUOTED_END.search(body, i + 1)
            if end is None:
                return None
            value, i = body[i + 1:end.start()], end.end()
        else:
            m2 = _BARE.match(body, i)
            value, i = m2.group(0).strip(), m2.end()
        # "a" # "b" concatenation is rare in exports; keep the first part.
        out[name] = value
        m3 = _TO_COMMA.match(body, i)
        i = m3.end() if m3 else n
    return out


_FIELD_NAME = re.compile(r"\s*([A-Za-z][\w\-:.]*)\s*=\s*")
_QUOTED_END = re.compile(r'(?<!\\)"')
_BARE = re.compile(r"[^,]*")
_TO_COMMA = re.compile(r"[^,]*,?")


def _close_brace(s: str, i: int) -> int | None:
    depth = 0
    for m in _BRACE_SCAN.finditer(s, i):
        c = m.group(0)
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return m.start()
    return None


def _clean(value: str) -> str:
    """LaTeX-ish field text → plain text: accents composed, commands and braces dropped."""
    if "\\" not in value and "{" not in value and "~" not in value:
        return " ".join(value.split())
    v = _ACCENT.sub(lambda m: unicodedata.normalize(
        "NFC", m.group(1)[-1] + _ACCENTS[m.group(0)[1]]), value)
    v = _LETTER.sub(lambda m: _LETTERS[m.group(1)], v)
    v = _LATEX_CMD.sub(lambda m: m.group(2) or "", v)
    v = v.replace("{", "").replace("}", "").replace("~", " ").replace("\\&", "&")
    return " ".join(v.split())


# "arXiv:2411.01234" inside free text: Google Scholar's `journal = {arXiv preprint arXiv:…}`,
# Zotero's CSL `number`, a `note`.
_ARXIV_IN_TEXT = re.compile(r"\barxiv\s*:\s*([\w.\-/]+?)[.,;)]?(?:\s|$)", re.I)


def _keys(*values: str) -> tuple[str, ...]:
    """A paper's arXiv id and DOI, from the fields that may hold them."""
    found = [v.replace("{", "").replace("}", "").strip() for v in values if v and v.strip()]
    found += ["arXiv:" + m.group(1) for v in found for m in _ARXIV_IN_TEXT.finditer(v)]
    return paper_keys(*found)


def _eprint(fields: dict[str, str]) -> str:
    """biblatex's and arXiv's own export: eprint = {2411.01234}, archivePrefix = {arXiv}."""
    eprint = fields.get("eprint", "").strip()
    prefix = (fields.get("archiveprefix") or fields.get("eprinttype") or "arxiv").strip().lower()
    return f"arXiv:{eprint}" if eprint and prefix == "arxiv" else ""


def _year(value: str) -> int | None:
    m = re.search(r"\b(1[89]\d\d|2\d\d\d)\b", value or "")
    return int(m.group(1)) if m else None


# -- CSL-JSON ----------------------------------------------------------------------------------

def _load_csl_json(path: Path, text: str) -> Library:
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError([f"{path}: not valid CSL-JSON ({e.msg} at line {e.lineno}); export the "
                           "library again as CSL JSON or BibTeX."]) from None
    items = data.get("items", []) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ConfigError([f"{path}: CSL-JSON must be a list of items; export the library again."])
    papers, warnings = [], []
    for i, item in enumerate(items, 1):
        paper = _csl_paper(item) if isinstance(item, dict) else None
        if paper is None:
            warnings.append(f"{path} item {i}: no title; skipped it.")
        else:
            papers.append(paper)
    return Library(papers, warnings)


def _csl_paper(item: dict) -> SeedPaper | None:
    """One CSL-JSON item, or None without a title. Any field may hold any JSON value (an
    export by another tool, or edited by hand): one of the wrong type counts as absent."""
    title = " ".join(_scalar(item.get("title")).split())
    if not title:
        return None
    authors = []
    for a in _list(item.get("author")):
        if isinstance(a, dict):
            name = _scalar(a.get("literal")) or " ".join(
                x for x in (_scalar(a.get("given")), _scalar(a.get("family"))) if x)
            if name.strip():
                authors.append(name.strip())
    year = None
    issued = item.get("issued")
    if isinstance(issued, dict):
        parts = _list(issued.get("date-parts"))
        first = _list(parts[0]) if parts else []
        year = (_year(_scalar(first[0])) if first else None) or _year(_scalar(issued.get("raw")))
    keywords = _scalar(item.get("keyword"))
    return SeedPaper(
        title=title, abstract=" ".join(_scalar(item.get("abstract")).split()),
        authors=authors, year=year,
        keywords=[k.strip() for k in re.split(r"[,;]", keywords) if k.strip()],
        keys=_keys(*(_scalar(item.get(k)) for k in ("DOI", "URL", "number", "note"))))


def _scalar(value) -> str:
    """A CSL string (or number: a year, an issue) as text; anything else as absent."""
    return "" if value is None or isinstance(value, (bool, list, dict)) else str(value)


def _list(value) -> list:
    return value if isinstance(value, list) else []
