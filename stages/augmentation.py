"""Label-preserving augmentation (EDA-style word edits) and class rebalancing.

Only the labeled target train split is touched: augmenting validation or test would grade the
model on its own edits. Every new row records the row it came from in `origin_id`.
"""

from __future__ import annotations

import random
import re
from collections import Counter

from stages.params import AugmentParams

Synonyms = dict[str, list[str]]
# A word with its surrounding punctuation: ("(", "Great", "!)").
WORD = re.compile(r"^(\W*)([A-Za-z]+)(\W*)$")


def embedding_synonyms(texts: list[str], input_embeddings, vocab: dict[str, int], min_similarity: float,
                       top_k: int) -> Synonyms:
    """Nearest whole-word neighbours in the base model's input-embedding space (no network, no WordNet).

    Neighbours there include antonyms ("good" ~ "bad" at cosine 0.53 in MiniLM, "good" ~ "excellent"
    at 0.58), which would flip a sentiment label: the similarity floor keeps only close neighbours.
    """
    import torch

    words = sorted({m.group(2).lower() for t in texts for w in t.split() if (m := WORD.match(w))} & vocab.keys())
    if not words:
        return {}
    inverse = {i: w for w, i in vocab.items()}
    candidates = torch.tensor([i for i, w in inverse.items() if w.isalpha() and len(w) > 2])
    table = torch.nn.functional.normalize(input_embeddings.detach().float(), dim=1)
    queries = table[torch.tensor([vocab[w] for w in words])]
    similarity = queries @ table[candidates].T
    values, indices = similarity.topk(min(top_k + 1, len(candidates)), dim=1)
    synonyms: Synonyms = {}
    for word, row_values, row_indices in zip(words, values.tolist(), indices.tolist(), strict=True):
        near = [inverse[int(candidates[i])] for v, i in zip(row_values, row_indices, strict=True)
                if v >= min_similarity and inverse[int(candidates[i])] != word]
        if near:
            synonyms[word] = near[:top_k]
    return synonyms


def _synonym_of(word: str, synonyms: Synonyms, rng: random.Random) -> str | None:
    match = WORD.match(word)
    if not match or match.group(2).lower() not in synonyms:
        return None
    before, core, after = match.groups()
    new = rng.choice(synonyms[core.lower()])
    return before + (new.capitalize() if core[0].isupper() else new) + after


def eda(text: str, operation: str, alpha: float, rng: random.Random, synonyms: Synonyms | None = None) -> str:
    """One EDA edit (Wei & Zou 2019) touching about alpha of the words.

    `synonym` replaces words by embedding neighbours; `insert` adds a neighbour of a random word
    (or, without neighbours, repeats a word), as in EDA's random insertion.
    """
    words = text.split()
    if len(words) < 2:
        return text
    synonyms = synonyms or {}
    n = max(1, round(alpha * len(words)))
    if operation == "synonym":
        for i in rng.sample(range(len(words)), len(words)):
            if n and (new := _synonym_of(words[i], synonyms, rng)):
                words[i], n = new, n - 1
        return " ".join(words)
    for _ in range(n):
        if operation == "swap":
            i, j = rng.sample(range(len(words)), 2)
            words[i], words[j] = words[j], words[i]
        elif operation == "delete" and len(words) > 1:
            del words[rng.randrange(len(words))]
        elif operation == "insert":
            donor = rng.choice(words)
            words.insert(rng.randrange(len(words) + 1), _synonym_of(donor, synonyms, rng) or donor)
    return " ".join(words)


def augment_rows(rows: list[dict], params: AugmentParams, seed: int, synonyms: Synonyms | None = None) -> list[dict]:
    rng = random.Random(seed)
    out = list(rows)
    for row in rows:
        for k in range(params.n_aug):
            operation = params.operations[k % len(params.operations)]
            text = eda(row["text"], operation, params.alpha, rng, synonyms)
            out.append({**row, "id": f"{row['id']}-aug{k}", "text": text, "origin_id": row["id"],
                        "augmentation": operation})
    return out


def rebalance(rows: list[dict], mode: str, seed: int) -> tuple[list[dict], list[dict]]:
    """(rows to train on, rows left out by undersampling). class_weights is applied in the loss."""
    if mode not in ("oversample", "undersample"):
        return rows, []
    rng = random.Random(seed)
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    sizes = [len(v) for v in by_label.values()]
    target = max(sizes) if mode == "oversample" else min(sizes)
    kept, left_out = [], []
    for label_rows in by_label.values():
        if mode == "oversample":
            extra = [rng.choice(label_rows) for _ in range(target - len(label_rows))]
            kept += label_rows + [{**r, "id": f"{r['id']}-dup{i}", "origin_id": r["id"], "augmentation": "oversample"}
                                  for i, r in enumerate(extra)]
        else:
            shuffled = rng.sample(label_rows, len(label_rows))
            kept += shuffled[:target]
            left_out += shuffled[target:]
    return kept, left_out


def label_counts(rows: list[dict]) -> dict[str, int]:
    return dict(sorted(Counter(r["label"] for r in rows).items()))
