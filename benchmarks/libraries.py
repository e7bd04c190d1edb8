"""Generated reference-manager exports at real size, with the oddities real ones carry: Zotero's
and JabRef's @comment blocks, @string macros, LaTeX accents and nested braces, quoted fields,
missing trailing commas, and a broken entry now and then (tests make a CRLF copy). Written
by the benchmark from a seeded generator: no real library is copied."""

from __future__ import annotations

import json
import random

WORDS = [
    "sparse", "attention", "transformer", "diffusion", "graph", "neural", "network", "retrieval",
    "language", "model", "contrastive", "learning", "reinforcement", "policy", "gradient",
    "robust", "optimization", "kernel", "causal", "inference", "protein", "folding", "climate",
    "forecasting", "segmentation", "detection", "speech", "vision", "federated", "privacy",
    "quantization", "distillation", "benchmark", "dataset", "evaluation", "scaling"]
NAMES = ["M{\\\"u}ller, J{\\'e}r{\\^o}me", "Smith, John", "O'Neil, Ann", "van der Berg, Piet",
         "Garc{\\'\\i}a, Mar{\\'\\i}a", "Lovelace, Ada", "Hopper, Grace B.", "{Research Team}"]


def _title(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.randint(5, 11))
    if rng.random() < 0.3:
        words[0] = "{" + words[0].upper() + "}"  # protected capitals
    return " ".join(words).capitalize()


def bibtex(n: int, seed: int = 0, broken_every: int = 997) -> str:
    rng = random.Random(seed)
    out = ["% Encoding: UTF-8\n\n@comment{jabref-meta: databaseType:bibtex;}\n\n",
           '@string{neurips = "Advances in Neural Information Processing Systems"}\n\n',
           "@preamble{ \"\\newcommand{\\noopsort}[1]{}\" }\n\n"]
    for i in range(n):
        kind = rng.choice(["article", "inproceedings", "misc", "book", "phdthesis"])
        authors = " and ".join(rng.sample(NAMES, rng.randint(1, 4)))
        abstract = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 160)))
        fields = [f"  title = {{{_title(rng)}}}", f"  author = {{{authors}}}",
                  f"  year = {rng.randint(1990, 2026)}",
                  f'  journal = "{rng.choice(WORDS).title()} Letters"',
                  f"  abstract = {{{abstract} with $O(n \\log n)$ cost and {{nested {{braces}}}}}}",
                  f"  keywords = {{{', '.join(rng.sample(WORDS, 3))}}}",
                  "  booktitle = neurips",
                  f"  doi = {{10.{1000 + i % 9000}/x.{i}}}",
                  f"  file = {{:C\\:\\\\Users\\\\me\\\\Zotero\\\\storage\\\\{i}.pdf:PDF}}"]
        rng.shuffle(fields)
        if i % broken_every == broken_every - 1:
            out.append(f"@article{{broken{i},\n  title = {{Unbalanced {{brace}},\n\n")
            continue
        trail = "," if rng.random() < 0.7 else ""
        out.append(f"@{kind}{{key{i},\n" + ",\n".join(fields) + trail + "\n}\n\n")
    return "".join(out)


def csl_json(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    items = [{"id": f"key{i}", "type": "article-journal",
              "title": _title(rng).replace("{", "").replace("}", ""),
              "abstract": " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 160))),
              "author": [{"family": "Lovelace", "given": "Ada"}, {"literal": "Research Team"}],
              "issued": {"date-parts": [[rng.randint(1990, 2026)]]},
              "keyword": ", ".join(rng.sample(WORDS, 3))} for i in range(n)]
    return json.dumps(items, indent=2)
