"""Ranker: scores readers against one pool of entries, and says why. Build once, rank many
readers. The pieces: pool.py (shared by readers), seeds.py (a reader's library), scoring.py
(the numbers, over reader.py's Reader; votes.py a voter's own model), select.py (what a digest
holds), reasons.py (why each item is there)."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from digest.highlight import Highlighter, phrase_stems
from digest.models import Ranked, StoredEntry
from digest.rank.collector import fewer_collections
from digest.rank.pool import Pool
from digest.rank.reader import Reader
from digest.rank.reasons import explain
from digest.rank.scoring import in_groups, score_batch
from digest.rank.seeds import NO_SEEDS, Seeds, author_key, entry_text, make_seeds, readable_library, short
from digest.rank.select import Pick, Selection, sections_of, select, unmuted
from digest.rank.sentence_match import embeds_sentences, matched
from digest.rank.tuning import DEFAULT, Tuning
from digest.rank.workers import pick, worker_batch, worker_init
from digest.settings import Config, UserConfig
from digest.store import Store


class Ranker:
    BATCH = 64  # readers whose seed similarities are computed in one sparse product

    def __init__(self, config: Config, store: Store, entries: list[StoredEntry], now: datetime,
                 embedder=None, tuning: Tuning = DEFAULT):
        self.config = config
        self.store = store
        self.entries = entries
        self.embedder = embedder
        self.tuning = tuning
        # Warnings from the seed libraries read so far. Libraries themselves are not kept: with
        # thousands of readers that would hold every library in memory; the database caches them.
        self.library_warnings: dict[Path, list[str]] = {}
        self._unread: dict[Path, Seeds] = {}
        self._any_votes = store.has_votes()  # most installations have none: skip the queries
        self._any_mutes = store.has_mutes()
        phrases = {p for u in config.users.values() for p in (*u.interests, *u.exclude)}
        # With a second core for ranking, the concept space is built on it meanwhile, and what
        # every forked worker would look up again is looked up once here.
        parallel = config.ranking.workers > 1
        self.pool = Pool(store, entries, now, phrases, tuning, embedder, parallel=parallel)
        # Words' term ids, from whichever store this process has (workers.py). Through the
        # pool, not self: a cycle would keep a finished ranking's model alive until the
        # collector runs, and ranking makes it run rarely (collector.py).
        pool = self.pool
        self.highlighter = Highlighter(lambda stems, add: pool.store.term_ids(stems, add=add))
        self.highlighter.know(self.pool.new_words)
        if parallel:  # the phrases' words
            self.highlighter.ids({w for p in phrase_stems(phrases) for w in p}, add=False)
        self.id_order = self.pool.id_order

    def library(self, path: Path) -> Seeds:
        # A library that could not be read is tried once per ranking (and said once).
        seeds = self._unread.get(path) or readable_library(self.store, path)
        if not seeds.titles:
            self._unread[path] = seeds
        self.library_warnings[path] = seeds.warnings
        return seeds

    # -- ranking --------------------------------------------------------------------------

    def rank(self, user: UserConfig, rows: np.ndarray | None = None,
             limit: int | None = None) -> list[Ranked]:
        """The reader's entries at `rows` (default: all), best first, with reasons; only the
        top `limit` are built when given. Ties are broken by entry id, so output is stable."""
        ((_, result),) = self.rank_many([(user, rows)], limit=limit)
        return result

    def digest(self, user: UserConfig, rows: np.ndarray | None,
               selection: Selection) -> list[Ranked]:
        """What the reader's digest holds (select.select)."""
        ((_, result),) = self.rank_many([(user, rows)], selection=selection)
        return result

    def rank_many(self, readers: list[tuple[UserConfig, np.ndarray | None]],
                  limit: int | None = None, selection: Selection | None = None,
                  workers: int = 1):
        """Yield (user, ranked) per reader, in order; with a `selection`, their digest instead.
        Readers are scored BATCH at a time as matrices (readers × entries), so the per-reader
        Python work is only picking the top items. With `workers` > 1, batches run in that many
        forked processes."""
        batches = [readers[i:i + self.BATCH] for i in range(0, len(readers), self.BATCH)]
        if workers > 1 and len(batches) > 1:
            self._sentences_ahead(readers)
        # The built model frozen, collections rarer (collector.py); forked workers inherit it.
        with fewer_collections():
            if workers > 1 and len(batches) > 1 and self._can_fork():
                yield from self._forked(batches, limit, selection, workers)
                return
            for batch in batches:
                with threadpool_limits(1):  # BLAS threads only spin on these small products
                    results = self._rank_batch(batch, limit, selection)
                yield from zip((u for u, _ in batch), map(self._build, results), strict=True)

    def _forked(self, batches: list, limit: int | None, selection: Selection | None,
                workers: int):
        """rank_many's batches in forked processes. They share the built model copy-on-write:
        nothing is pickled but each batch's results and library warnings."""
        ctx = multiprocessing.get_context("fork")
        # What every reader's _meta looks up: worked out once here, not again in each worker
        # (where, first touching the inherited entries, it took three times as long).
        _ = self.pool.by_title, self.pool.by_key
        # One BLAS thread in the workers, inherited: OpenBLAS stops its threads before a fork
        # and starts them again when its thread count is set, so set in each worker they
        # spun there beside the ranking (workers.py). Held to the end: set back at once,
        # the parent's would spin beside the workers instead.
        with threadpool_limits(1), ctx.Pool(min(workers, len(batches)), initializer=worker_init,
                                            initargs=(self, batches, limit, selection)) as pool:
            for b, (results, warnings) in enumerate(pool.imap(worker_batch, range(len(batches)))):
                self.library_warnings.update(warnings)
                yield from zip((u for u, _ in batches[b]),
                               (self._build(list(map(pick, r))) for r in results), strict=True)

    def score_matrix(self, users: list[UserConfig]) -> np.ndarray:
        """(readers × entries) scores, as rank() gives them but without reasons or results:
        what a benchmark trying many constants needs."""
        embed = self.embedder.embed if self.embedder is not None else None
        blocks = [np.zeros((0, len(self.entries)), np.float32)]
        for i in range(0, len(users), self.BATCH):
            for group in self._groups([(u, None) for u in users[i:i + self.BATCH]]):
                with threadpool_limits(1):
                    blocks.append(score_batch(self.pool, self.config.ranking, self.tuning,
                                              [u for (u, _), _ in group], [m for _, m in group],
                                              embed))
        return np.vstack(blocks)

    def _groups(self, jobs: list[tuple[UserConfig, np.ndarray | None]]):
        """(job, Reader) pairs in groups of at most BATCH_SEEDS seed papers (scoring.in_groups),
        each reader's profile loaded only as its group fills."""
        return in_groups(((job, self._meta(job[0])) for job in jobs),
                         lambda pair: len(pair[1].seed_names))

    def _build(self, picks: list[Pick]) -> list[Ranked]:
        """Results from picks. Done by the parent: workers send back only entry indexes,
        scores and reasons, not every pick's abstract."""
        return [Ranked.of(self.entries[p.row], p.score, p.reasons, p.trending, p.section,
                          p.highlight) for p in picks]

    def _sentences_ahead(self, readers: list[tuple[UserConfig, np.ndarray | None]]) -> None:
        """The pool's sentence vectors, here before forking, if a reader has seeds (library
        papers and 👍 entries) to match them against (sentence_match): not once per worker
        (with new entries to embed, the model is then loaded, and ranking stays in this
        process, see _can_fork). Without embeddings, their concept-space twins."""
        pool, tuning = self.pool, self.tuning
        if pool.vectors is None or self.config.ranking.semantic <= 0:  # embeddings off
            if (tuning.concept_sentences > 0 and pool.concepts.k
                    and "concept_sentences" not in vars(pool)
                    and any(matched(self._seeds_of(u)) for u, _ in readers)):
                _ = pool.concept_sentences
                pool.save_sentences()  # of abstracts split for it: here, not in every worker
            return
        if "sentences" in vars(pool):
            return  # done
        if any(embeds_sentences(self._seeds_of(u), tuning) for u, _ in readers):
            _ = pool.sentences

    def _seeds_of(self, user: UserConfig) -> int:
        """How many seeds a reader has, as _meta will find them: library papers and 👍."""
        papers = len(self.library(user.papers).titles) if user.papers else 0
        votes = self.store.votes(user.name) if self._any_votes else {}
        return papers + sum(v > 0 for v in votes.values())

    def _can_fork(self) -> bool:
        """Forking is safe only in a single-threaded process: a thread holding a lock at the
        fork (a scheduler's, torch's) would leave it locked forever in the child."""
        return ("fork" in multiprocessing.get_all_start_methods()
                and threading.active_count() == 1
                and (self.embedder is None or not self.embedder.loaded))

    def _rank_batch(self, batch: list[tuple[UserConfig, np.ndarray | None]], limit: int | None,
                    selection: Selection | None) -> list[list[Pick]]:
        out: list[list[Pick]] = []
        # A group of readers at a time (one for ordinary libraries), each finished before the
        # next group's libraries are loaded: readers who bring thousands of papers each hold
        # one group's library text in memory, not the batch's.
        for group in self._groups(batch):
            out += self._rank_group(group, limit, selection)
            del group  # before the next group's libraries load
        self.pool.save_sentences()  # of the abstracts shown for the first time
        return out

    def _rank_group(self, group: list, limit: int | None,
                    selection: Selection | None) -> list[list[Pick]]:
        n = len(self.entries)
        embed = self.embedder.embed if self.embedder is not None else None
        scores = score_batch(self.pool, self.config.ranking, self.tuning,
                             [u for (u, _), _ in group], [m for _, m in group], embed)
        out: list[list[Pick]] = []
        for b, ((user, rows), meta) in enumerate(group):
            idx = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
            idx = unmuted(self.pool, idx, meta.hidden, meta.muted_authors)
            if selection is not None and meta.owned:  # a digest never offers what they have
                keep = np.ones(n, dtype=bool)
                keep[meta.owned] = False
                idx = idx[keep[idx]]
            row = scores[b]
            if len(idx) == 0:
                out.append([])
            elif selection is not None:
                def reasons(picked, user=user, row=row, meta=meta):
                    return explain(self.pool, self.entries, user, picked, row, meta)
                most = user.max_items if selection.limit is None else selection.limit
                out.append(self._highlighted(select(self.pool, idx, row, most, selection, reasons,
                                                    sections_of(self.pool, user), user.serendipity),
                                             meta))
            else:
                order = idx[np.lexsort((self.id_order[idx], -row[idx]))]
                if limit is not None:
                    order = order[:limit]
                out.append(self._highlighted(explain(self.pool, self.entries, user, order.tolist(),
                                                     row, meta), meta))
        return out

    def _meta(self, user: UserConfig) -> Reader:
        """A reader's seeds (library papers, then 👍 entries), 👎 entries and phrases."""
        lib = self.library(user.papers) if user.papers else NO_SEEDS
        votes = self.store.votes(user.name) if self._any_votes else {}
        liked, disliked = self._voted(votes, +1), self._voted(votes, -1)
        if liked:  # votes are rare: the library's arrays are extended only then
            lib = lib + make_seeds(self.store, [e.title for e in liked],
                                   [entry_text(e) for e in liked], [])
        n_papers = len(lib.titles) - len(liked)
        names = [f'similar to your paper "{short(t)}"' for t in lib.titles[:n_papers]] + [
            f'like "{short(t)}", which you liked' for t in lib.titles[n_papers:]]
        owned = sorted({i for k in lib.title_keys[:n_papers] for i in self.pool.by_title.get(k, ())}
                       | {i for k in lib.keys for i in self.pool.by_key.get(k, ())})
        meta = Reader(seed_names=names, n_liked=len(liked), seeds=lib, votes=len(votes),
                      authors=frozenset(author_key(a) for a in user.authors), owned=owned)
        if disliked:
            bad = make_seeds(self.store, [], [entry_text(e) for e in disliked], [])
            meta.negative = self.pool.terms.matrix(bad.ids, bad.counts, bad.sizes,
                                                   top=self.tuning.seed_terms)
        mutes = self.store.mutes(user.name) if self._any_mutes else []
        muted = {v for kind, v, _ in mutes if kind == "phrase"}
        meta.phrases = [(p, w, self.pool.phrase(p)) for p, w in user.interests.items()
                        if p not in muted]
        meta.excluded = [(p, self.pool.phrase(p)) for p in user.exclude]
        meta.hidden = [self.pool.phrase(p) for p in sorted(muted)]
        meta.muted_authors = frozenset(author_key(v) for kind, v, _ in mutes if kind == "author")
        meta.marks = lib.marks(phrase_stems(p for p, _, _ in meta.phrases))
        return meta

    def _highlighted(self, picks: list[Pick], meta: Reader) -> list[Pick]:
        """The picks with the sentence of each abstract that matched the reader, chosen only
        for what is shown (not for every candidate select looked at)."""
        docs = self.pool.abstracts([p.row for p in picks], self.highlighter.ids)
        shown = self.highlighter.many(meta.marks, [(doc, p.seed)
                                                   for p, doc in zip(picks, docs, strict=True)])
        return [Pick(p.row, p.score, p.reasons, p.trending, p.section, p.seed, h)  # not _replace:
                for p, h in zip(picks, shown, strict=True)]                      # slower

    def _voted(self, votes: dict[str, int], sign: int) -> list[StoredEntry]:
        ids = sorted(i for i, v in votes.items() if v == sign)
        if not ids:
            return []
        index_of = self.pool.index_of
        known = [self.entries[index_of[i]] for i in ids if i in index_of]
        missing = [i for i in ids if i not in index_of]
        return known + (self.store.entries_for_ranking(ids=missing) if missing else [])

    def rows_for(self, user: UserConfig, since: datetime | None = None,
                 until: datetime | None = None) -> np.ndarray:
        """Entries from the reader's feeds, first fetched in (since, until]."""
        feeds = set(user.feeds) if user.feeds else None
        lo = since.isoformat(timespec="seconds") if since else ""
        hi = until.isoformat(timespec="seconds") if until else "9999"
        feeds_of = self.pool.feeds_of
        return np.asarray([i for i, e in enumerate(self.entries)
                           if lo < e.fetched <= hi and (feeds is None or feeds_of[i] & feeds)],
                          dtype=np.int64)


def build_ranker(config: Config, store: Store, now: datetime, since: datetime | None,
                 semantic: bool) -> Ranker:
    from digest.semantic import Embedder

    entries = store.entries_for_ranking(since=since)
    return Ranker(config, store, entries, now, Embedder(store) if semantic else None)
