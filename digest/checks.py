"""What `digest check` reports about a valid config: how each reader's digest will be made
and every warning an operator should act on. No network; writes nothing but the library
cache of a database that already exists."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path

from digest import semantic
from digest.config import exposed_files
from digest.health import failing_readers, reader_trouble
from digest.ledger import lost_report
from digest.library import load_library
from digest.settings import Config, UserConfig
from digest.store import Store


@dataclass
class Report:
    ranking: str  # how entries are ranked
    libraries: list[tuple[str, int, str]] = field(default_factory=list)  # reader, papers, file
    warnings: list[str] = field(default_factory=list)
    mutes: dict[str, list[str]] = field(default_factory=dict)  # reader → "author: X", "phrase: Y"


def check(config: Config) -> Report:
    report = Report(ranking_mode(config), warnings=list(config.warnings))
    exists = config.digest.database.exists()
    with Store(config.digest.database) if exists else contextlib.nullcontext() as store:
        for u in config.users.values():
            if u.papers:
                papers, problems = _library(store, u.papers)
                report.libraries.append((u.name, papers, u.papers.name))
                report.warnings += problems
            report.warnings += _reader_warnings(u)
        report.warnings += exposed_files(config)
        if store is not None:  # delivery trouble the operator must hear about
            report.warnings += [reader_trouble(r) for r in failing_readers(config, store)]
            report.warnings += [lost_report(d) for d in store.lost_deliveries(datetime.now(UTC))]
            for reader, kind, value in store.mutes():
                if reader in config.users:
                    report.mutes.setdefault(reader, []).append(f"{kind}: {value}")
    return report


def ranking_mode(config: Config) -> str:
    if semantic.resolve_mode(config.ranking.semantic_mode):
        return f"lexical (TF-IDF) + semantic ({semantic.MODEL} embeddings)"
    why = ("semantic_mode = off" if config.ranking.semantic_mode == "off"
           else "install digest[semantic] for embeddings")
    return f"lexical (TF-IDF); {why}"


def _library(store: Store | None, path: Path) -> tuple[int, list[str]]:
    """Papers and warnings of a library: from the ranking's cache when the file is unchanged
    (a 20,000-paper export is parsed once), else parsed; cached only where a database
    already exists, so checking a fresh config writes nothing."""
    if store is not None:
        from digest.rank.seeds import library_seeds

        seeds = library_seeds(store, path)
        return len(seeds.titles), seeds.warnings
    lib = load_library(path)
    return len(lib.papers), lib.warnings


def _reader_warnings(u: UserConfig) -> list[str]:
    out = []
    if u.notify or u.notify_env:
        from digest.notify import problems

        out += problems(u)
        if find_spec("apprise") is None:
            out.append(f"[users.{u.name}] has notify channels, but Apprise is not installed; "
                       "pip install 'digest[notify]'.")
    if not u.has_profile:
        out.append(f"[users.{u.name}] has no interests, papers, authors or categories, so their "
                   "digest is the most popular recent items; add interests or a papers library "
                   "to personalize it.")
    return out
