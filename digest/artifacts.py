"""Links to a paper's code and data, found where authors put them: arXiv's comment line
("Code: https://github.com/…") and the abstract. Pure functions on strings."""

from __future__ import annotations

import re

# Hosts whose repository URLs are code, or data; the path must name a project, not a profile.
CODE_RE = re.compile(
    r"https?://(?:www\.)?(?:github\.com|gitlab\.com|codeberg\.org|bitbucket\.org|"
    r"huggingface\.co/spaces)/[\w.-]+/[\w.-]+", re.I)
DATA_RE = re.compile(
    r"https?://(?:www\.)?(?:huggingface\.co/datasets/[\w.-]+(?:/[\w.-]+)?|"
    r"zenodo\.org/(?:records?|doi)/[\w./-]+|kaggle\.com/datasets/[\w.-]+/[\w.-]+|"
    r"doi\.org/10\.5281/zenodo\.\d+)", re.I)
_TRAIL = ".,;:)]}'\""


def code_link(*texts: str) -> str:
    """The first code repository URL in the texts, or ''."""
    return _first(CODE_RE, texts)


def data_link(*texts: str) -> str:
    """The first dataset URL in the texts, or ''."""
    return _first(DATA_RE, texts)


def _first(pattern: re.Pattern, texts: tuple[str, ...]) -> str:
    for text in texts:
        if text and "http" in text:
            m = pattern.search(text)
            if m:
                url = m.group(0).rstrip(_TRAIL)
                return url.removesuffix(".git")
    return ""
