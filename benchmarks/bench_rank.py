"""Ranking speed: R readers × E entries, lexical, with the FTS5/BM25 alternative side by side.

    python benchmarks/bench_rank.py                       # 1,000 and 10,000 readers × 5,000 entries
    python benchmarks/bench_rank.py --readers 1000 --semantic   # plus cached-embedding ranking
    python benchmarks/bench_rank.py --smoke               # CI size
    python benchmarks/bench_rank.py --once DIR --readers 1000   # one ranking, for /usr/bin/time
    python benchmarks/bench_rank.py --once DIR --readers 1000 --one-paper   # of 1-paper readers

Each reader has 5 interest phrases, 2 followed authors and a seed library of 10 papers of their
own (a .bib file); the entries and the library papers are made from ../shared/corpus/papers.jsonl,
every one different (common.paper). Timed: building the shared model
(tokens, IDF, entry matrix) once, then ranking every reader and selecting their digest (top 20).
The side-by-side alternative ranks each reader with one SQLite FTS5 BM25 query (their phrases
and their library's top terms), the "use the FTS index" design.
"""

from __future__ import annotations

import argparse
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import in_fresh_process, load_corpus, paper, peak_rss_mib

from digest import highlight, lexical, sentences
from digest.config import load_config
from digest.lexical import tokens
from digest.normalize import make_entry
from digest.rank import Ranker, Selection, seeds
from digest.rank.tuning import DEFAULT, Tuning
from digest.store import Store
from digest.warm import warm

NOW = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
LIBRARY_PAPERS = 1_000_000  # common.paper(k) from here on: library papers, past any pool


FIRST = ["Ada", "Grace", "Alan", "Emmy", "Kurt", "Lise", "Niels", "Marie", "Paul", "Rosalind",
         "Srinivasa", "Sofia", "Hedy", "Claude", "Barbara", "John", "Katherine", "Edsger"]
LAST = ["Lovelace", "Hopper", "Turing", "Noether", "Godel", "Meitner", "Bohr", "Curie", "Dirac",
        "Franklin", "Ramanujan", "Kovalevskaya", "Lamarr", "Shannon", "Liskov", "Backus", "Johnson",
        "Dijkstra", "Hamilton", "Knuth", "Ritchie", "Allen", "Wing", "Goldwasser", "Tarjan"]


def name(k: int) -> str:
    return f"{FIRST[k % len(FIRST)]} {LAST[(k // len(FIRST)) % len(LAST)]}"


def bib(seeds: list[dict]) -> str:
    """Corpus papers as a BibTeX library (braces dropped from their text)."""
    def clean(text: str) -> str:
        return text.replace("{", "").replace("}", "")
    return "".join(f"@article{{p{i},\n title={{{clean(s['title'])}}},\n"
                   f" abstract={{{clean(s['abstract'])}}}\n}}\n" for i, s in enumerate(seeds))


def own_papers(papers: list[dict], reader: int, n: int = 10) -> list[dict]:
    """A reader's library: papers no other reader has and no entry is (common.paper past the
    entries). Libraries drawn from the corpus's 550 papers shared them between readers, so
    what is worked out once per seed paper (its words, for highlights) was mostly cached."""
    return [dict(zip(("title", "abstract"), paper(papers, LIBRARY_PAPERS + reader * n + i), strict=True))
            for i in range(n)]


def write_readers(tmp: Path, papers: list[dict], n_readers: int, rnd: random.Random) -> str:
    """[users.rN] tables: 5 interest phrases (title bigrams that occur in the corpus), 2
    followed authors and a library of 10 papers of their own each (tmp/libN.bib)."""
    phrases = sorted({" ".join(ws[i:i + 2]) for p in papers
                      for ws in [p["title"].lower().split()] for i in range(len(ws) - 1)
                      if all(w.isalpha() and len(w) > 3 for w in ws[i:i + 2])})
    for j in range(n_readers):
        (tmp / f"lib{j}.bib").write_text(bib(own_papers(papers, j)))
    users = []
    for r in range(n_readers):
        interests = "".join(f'"{ph}" = {rnd.randint(1, 3)}\n' for ph in rnd.sample(phrases, 5))
        users.append(f'[users.r{r}]\nemail = "r{r}@example.org"\npapers = "lib{r}.bib"\n'
                     f'authors = ["{name(rnd.randrange(498))}", "{name(rnd.randrange(498))}"]\n'
                     f"[users.r{r}.interests]\n{interests}")
    return "".join(users)


def build(tmp: Path, papers: list[dict], n_entries: int, n_readers: int):
    """Entries in a real store (common.paper), and readers with their own library each (no
    two alike)."""
    rnd = random.Random(7)
    entries = []
    for k in range(n_entries):
        title, abstract = paper(papers, k)
        entries.append(make_entry(
            guid=f"oai:arXiv.org:2611.{k:05d}v1", link=f"https://arxiv.org/abs/2611.{k:05d}",
            title=title, summary=abstract, summary_is_html=False,
            authors=[name(k % 401), name(k % 97 + 401)], categories=["cs.LG"],
            published=NOW - timedelta(hours=k % 24), fetched=NOW - timedelta(hours=1),
            popularity=(k * 37) % 120 if k % 5 == 0 else 0))
    store = Store(tmp / "d.db")
    for i in range(0, n_entries, 500):
        store.add_entries(f"feed{i // 500}", entries[i:i + 500], NOW - timedelta(hours=1))
    users = write_readers(tmp, papers, n_readers, rnd)
    (tmp / "config.toml").write_text(
        '[digest]\ndatabase = "d.db"\n[ranking]\nsemantic_mode = "off"\n'
        '[feeds.feed0]\npath = "x.xml"\n' + users)
    return store, load_config(tmp / "config.toml")


def forget() -> None:
    """Empty the per-process caches (stems, seed and title words, names), so each timed run starts as a
    fresh `digest send` does: otherwise a run inherits what the runs before it worked out, and
    forked workers inherit it from the parent."""
    lexical._stem_cache.clear()
    lexical._term_cache.clear()
    for cached in (highlight._title_words, highlight.seed_words,
                   seeds.author_key):
        cached.cache_clear()


def run_ours(config, store, semantic: bool = False, workers: int = 1,
             tuning: Tuning = DEFAULT) -> dict:
    forget()
    t0 = time.perf_counter()
    embedder = None
    if semantic:
        from digest.semantic import Embedder

        embedder = Embedder(store)
    ranker = Ranker(config, store, store.entries_for_ranking(), NOW, embedder, tuning)
    t1 = time.perf_counter()
    picked = 0
    r = config.ranking
    for _user, items in ranker.rank_many([(u, None) for u in config.users.values()],
                                         selection=Selection(20, r.min_score, r.trending), workers=workers):
        picked += len(items)
    t2 = time.perf_counter()
    return {"model": t1 - t0, "readers": t2 - t1, "total": t2 - t0, "picked": picked}


def first_send(n: int, config, store: Store, tmp: Path, cores: int) -> None:
    """The day's first send over entries that are all new, with the readers' libraries read
    (once per file, not per day): as it is when nothing ran after the poll, and on a copy of
    the database after the step after a poll (warm.py) tokenized the entries and split their
    abstracts into sentences. The timed runs below are later rankings of the same entries."""
    t = time.perf_counter()
    for user in config.users.values():
        seeds.readable_library(store, user.papers)
    print(f"{n:>8} reading the readers' libraries, once per file: {time.perf_counter() - t:.2f} s")
    with sqlite3.connect(tmp / "ahead.db") as copy:
        store.db.conn.backup(copy)
    copy.close()
    cold = run_ours(config, store, workers=cores)
    with Store(tmp / "ahead.db") as ahead:
        t = time.perf_counter()
        done = warm(config, ahead, NOW)
        after = time.perf_counter() - t
        warmed = run_ours(config, ahead, workers=cores)
    print(f"{n:>8} {'first send, as polled':<22} {cold['model']:>8.2f} {cold['readers']:>10.2f} "
          f"{cold['total']:>8.2f} {cold['readers'] / n * 1000:>10.2f}")
    print(f"{n:>8} {'after the poll: warm':<22} {'':>8} {'':>10} {after:>8.2f}   ({done})")
    print(f"{n:>8} {'first send after warm':<22} {warmed['model']:>8.2f} {warmed['readers']:>10.2f} "
          f"{warmed['total']:>8.2f} {warmed['readers'] / n * 1000:>10.2f}")


def run_fts(config, store) -> dict:
    """One BM25 query per reader over the FTS5 index: phrases plus the library's top terms."""
    t0 = time.perf_counter()
    store.index_search()
    from digest.library import load_library

    libs: dict[Path, list[str]] = {}
    t1 = time.perf_counter()
    picked = 0
    for user in config.users.values():
        if user.papers not in libs:
            bags = [Counter(tokens(p.text)) for p in load_library(user.papers).papers]
            df = Counter(t for bag in bags for t in bag)
            weight = Counter()  # the library's TF-IDF mass per term (the ranker's formula)
            for bag in bags:
                w = {t: (1 + math.log(c)) * (math.log((1 + len(bags)) / (1 + df[t])) + 1)
                     for t, c in bag.items()}
                norm = math.sqrt(sum(v * v for v in w.values())) or 1.0
                weight.update({t: v / norm for t, v in w.items()})
            terms = sorted(weight, key=lambda t: (-weight[t], t))[:20]
            libs[user.papers] = [t for t in terms if t.isalnum()]
        query = " OR ".join([f'"{p}"' for p in user.interests] + libs[user.papers])
        rows = store.db.execute(
            "SELECT rowid, bm25(entries_fts, 2.0, 1.0) FROM entries_fts WHERE entries_fts MATCH ?"
            " ORDER BY bm25(entries_fts, 2.0, 1.0) LIMIT 20", [query]).fetchall()
        picked += len(rows)
    t2 = time.perf_counter()
    return {"model": t1 - t0, "readers": t2 - t1, "total": t2 - t0, "picked": picked}


def embedding_rate(papers: list[dict], n: int = 256) -> tuple[float, float, float]:
    """Distinct texts embedded per second on this CPU (model load excluded): whole entries,
    and their sentences (what seed titles and a library of a few papers are matched on), and how many
    sentences an entry has."""
    from digest.semantic import Embedder

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "e.db")
        embedder = Embedder(store)
        embedder.embed(["warm-up: load the model"])
        texts = [f"{p['title']}. {p['abstract']}" for p in papers[:n]]
        t = time.perf_counter()
        embedder.embed(texts)
        rate = len(texts) / (time.perf_counter() - t)
        parts = list(dict.fromkeys(x for text in texts for x in sentences.split_sentences(text)))
        t = time.perf_counter()
        embedder.embed(parts)
        sentence_rate = len(parts) / (time.perf_counter() - t)
        store.close()
    return rate, sentence_rate, len(parts) / len(texts)


def embed_all(tmp: Path, config: str = "config.toml") -> None:
    with Store(tmp / "d.db") as store:
        run_ours(load_config(tmp / config), store, semantic=True)


def one_paper_readers(tmp: Path, papers: list[dict], n_readers: int):
    """The same database with readers whose library is one paper each (matched sentence by
    sentence): tmp/one.toml."""
    rnd = random.Random(11)
    users = []
    for j in range(n_readers):
        (tmp / f"one{j}.bib").write_text(bib([rnd.choice(papers)]))
        users.append(f'[users.o{j}]\nemail = "o{j}@example.org"\npapers = "one{j}.bib"\n')
    (tmp / "one.toml").write_text('[digest]\ndatabase = "d.db"\n[ranking]\nsemantic_mode = "off"\n'
                                  '[feeds.feed0]\npath = "x.xml"\n' + "".join(users))
    return load_config(tmp / "one.toml")


def once(where: Path, n_entries: int, n_readers: int, semantic: bool = False,
         one_paper: bool = False) -> None:
    """One ranking of every reader with the configured workers, in this process, of a database
    built on the first call (and then warmed, as the step after a poll leaves it: warm.py):
    the unit a whole-process comparison of two checkouts times. With
    `semantic`, the first such call embeds everything (in a fresh process; 20 minutes at 1,000
    readers), and each later one ranks once to warm the OS's cache, then lexically, with the
    cached embeddings, and lexically again: what the embeddings add, within one process. With
    `one_paper`, the readers of one_paper_readers instead (lexical)."""
    if not (where / "config.toml").exists():
        where.mkdir(parents=True, exist_ok=True)
        papers = load_corpus()
        store, config = build(where, papers, n_entries, n_readers)
        Ranker(config, store, store.entries_for_ranking(), NOW)  # tokenized once, stored
        warm(one_paper_readers(where, papers, n_readers), store, NOW)
        store.close()
        print(f"built {where}: {n_entries} entries, {n_readers} readers")
        return
    if one_paper:
        config = load_config(where / "one.toml")
        with Store(where / "d.db") as store:
            r = run_ours(config, store, workers=config.ranking.workers)
        print(f"{len(config.users)} one-paper readers: model {r['model']:.2f} s, "
              f"readers {r['readers']:.2f} s")
        return
    if semantic and not (where / "embedded").exists():
        in_fresh_process(embed_all, where)
        (where / "embedded").touch()
        print(f"embedded {where}'s entries, their sentences, and the seed papers and titles")
        return
    config = load_config(where / "config.toml")
    workers = config.ranking.workers
    with Store(where / "d.db") as store:
        if not semantic:
            r = run_ours(config, store, workers=workers)
            print(f"{len(config.users)} readers: model {r['model']:.2f} s, readers {r['readers']:.2f} s")
            return
        run_ours(config, store, semantic=True, workers=workers)
        a, b, c = (run_ours(config, store, semantic=s, workers=workers)["total"]
                   for s in (False, True, False))
    print(f"{len(config.users)} readers: lexical {(a + c) / 2:.2f} s, with cached embeddings "
          f"{b:.2f} s, +{b - (a + c) / 2:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=5000)
    ap.add_argument("--readers", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--semantic", action="store_true", help="also rank over cached embeddings")
    ap.add_argument("--fts-max", type=int, default=1000, help="largest size to run FTS5 at")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--once", type=Path, metavar="DIR",
                    help="for whole-process timing (/usr/bin/time, two checkouts alternated): "
                    "build DIR's database the first time (with --semantic, embed it the second), "
                    "then rank its readers once per call (with --semantic: lexical, semantic, lexical)")
    ap.add_argument("--one-paper", action="store_true",
                    help="with --once: rank the readers whose library is one paper each")
    a = ap.parse_args()
    if a.once:
        once(a.once, a.entries, a.readers[0], a.semantic, a.one_paper)
        return
    if a.smoke:
        a.entries, a.readers, a.runs = 300, [20], 1
    papers = load_corpus()
    if a.semantic:
        rate, sentence_rate, per = in_fresh_process(embedding_rate, papers, 32 if a.smoke else 256)
        print(f"embedding cost: {rate:.0f} entries/s "
              "(all-MiniLM-L6-v2, CPU, title + abstract; each entry is embedded once, ever); "
              f"their sentences (matched on seed titles): {sentence_rate:.0f}/s, "
              f"{per:.1f} per entry ({rate * per / sentence_rate:.1f}× the entry's own time, once)")
    print(f"{a.entries} entries; medians of {a.runs} runs; lexical unless noted")
    print(f"{'readers':>8} {'method':<22} {'model s':>8} {'readers s':>10} {'total s':>8} {'ms/reader':>10}")
    for n in a.readers:
        with tempfile.TemporaryDirectory() as tmp:
            store, config = build(Path(tmp), papers, a.entries, n)
            cores = config.ranking.workers  # one per CPU core
            methods = [("ours, 1 process", run_ours, {}),
                       (f"ours, {cores} processes", run_ours, {"workers": cores})]
            if n <= a.fts_max:  # one query per reader is slow; compare at the smaller sizes
                methods.append(("FTS5 BM25 query", run_fts, {}))
            # Readers of one paper each: matched sentence by sentence too (in the concept space;
            # with the semantic extra, on embeddings, below).
            one = one_paper_readers(Path(tmp), papers, n)
            methods += [(f"1-paper libs, {cores} proc", run_ours, {"workers": cores, "config": one}),
                        ("  without that match", run_ours,
                         {"workers": cores, "config": one,
                          "tuning": DEFAULT.with_(concept_sentences=0.0)})]
            # Before the embeddings below, whose run ranks (and so tokenizes) the entries first.
            first_send(n, config, store, Path(tmp), cores)
            if a.semantic:
                t = time.perf_counter()
                in_fresh_process(embed_all, Path(tmp))  # every entry, sentence, seed, title
                print(f"embedding {a.entries} entries, their sentences, and {n * 10} seed papers "
                      "and titles (first run): "
                      f"{time.perf_counter() - t:.1f} s")
                methods.append((f"+ embeddings, {cores} proc", run_ours,
                                {"semantic": True, "workers": cores}))
                in_fresh_process(embed_all, Path(tmp), "one.toml")  # and those readers' papers
                methods.append((f"1-paper libs + emb, {cores}p", run_ours,
                                {"semantic": True, "workers": cores, "config": one}))
            results: dict[str, list[dict]] = {name: [] for name, _, _ in methods}
            for _ in range(a.runs):
                for name, fn, kw in methods:  # interleaved against machine noise
                    rest = {k: v for k, v in kw.items() if k != "config"}
                    results[name].append(fn(kw.get("config", config), store, **rest))
            for name, runs in results.items():
                med = {k: statistics.median(r[k] for r in runs) for k in ("model", "readers", "total")}
                print(f"{n:>8} {name:<22} {med['model']:>8.2f} {med['readers']:>10.2f} "
                      f"{med['total']:>8.2f} {med['readers'] / n * 1000:>10.2f}")
            store.close()
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
