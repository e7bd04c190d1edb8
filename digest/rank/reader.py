"""What one reader's scoring needs beyond the config (scoring.py), and what it keeps to
explain the shown items (reasons.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from digest.highlight import Marks
from digest.rank.pool import Phrase
from digest.rank.seeds import Seeds, SeedTerms


@dataclass
class Reader:
    """What one reader's scoring needs beyond the config, kept to explain the shown items."""

    seed_names: list[str]
    n_liked: int
    seeds: Seeds  # library papers, then 👍 entries
    votes: int = 0
    negative: sp.csr_matrix | None = None  # 👎 entries, TF-IDF rows
    phrases: list[tuple[str, float, Phrase]] = field(default_factory=list)
    excluded: list[tuple[str, Phrase]] = field(default_factory=list)
    seed_terms: SeedTerms | None = None  # the seeds' TF-IDF rows, for the reasons
    seed_vectors: np.ndarray | None = None  # the seeds' embeddings, for the reasons
    # The title match: the leading entries' rows, and (rows × seeds) each seed title's best
    # cosine to a sentence of each, for the reasons
    titled: tuple[np.ndarray, np.ndarray] | None = None
    authors: frozenset[str] = frozenset()  # followed authors' keys
    hidden: list[Phrase] = field(default_factory=list)  # muted phrases: their entries go
    muted_authors: frozenset[str] = frozenset()  # muted authors' keys: their entries go
    owned: list[int] = field(default_factory=list)  # rows of library papers: not in digests
    marks: Marks | None = None  # what the highlight matches
