"""Label-preserving augmentation (EDA-style word edits) and class rebalancing.

Only the labeled target train split is touched: augmenting validation or test would grade the
model on its own edits. Every new row records the row it came from in `origin_id`.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import TYPE_CHECKING

from transfer.core.modeling import load_kwargs, load_tokenizer, resolve_model
from transfer.core.params import AugmentParams, Params

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task

Synonyms = dict[str, list[str]]
LENGTH_BIN = 10  # words, in the text-length histogram
# A word with its surrounding punctuation: ("(", "Great", "!)").
WORD = re.compile(r"^(\W*)([A-Za-z]+)(\W*)$")


def embedding_synonyms(texts: list[str], input_embeddings, vocab: dict[str, int], min_similarity: float,
                       top_k: int) -> Synonyms:
    """Nearest whole-word neighbours in the base model's input-embedding space (no network, no WordNet).

    Neighbours there include antonyms ("good" ~ "bad" at cosine 0.53 in MiniLM, "good" ~ "excellent"
    at 0.58), which would flip a sentiment label: the similarity floor keeps only close neighbours.
    """
    import torch  # heavy: only the synonym and insert operations need it

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


def load_synonyms(params: Params, texts: list[str]) -> Synonyms:
    """Neighbour table for the words of `texts`, only when an operation needs it."""
    config = params.augment
    if config.n_aug == 0 or not {"synonym", "insert"} & set(config.operations):
        return {}
    from transformers import AutoModel  # heavy: only when a synonym operation runs

    path = resolve_model(params.model.name)
    embeddings = AutoModel.from_pretrained(path, **load_kwargs(params, path)).get_input_embeddings().weight
    vocab = load_tokenizer(path, params).get_vocab()
    return embedding_synonyms(texts, embeddings, vocab, config.synonym_min_similarity, config.synonym_top_k)


def length_histogram(splits: dict[tuple[str, str], list[dict]], task: Task) -> list[dict]:
    """Text lengths per domain in bins of LENGTH_BIN words, as shares: the source has ~40x the target's texts."""
    rows = []
    for domain in ("source", "target"):
        lengths = Counter(len(task.text(row).split()) // LENGTH_BIN * LENGTH_BIN
                          for (d, _), members in splits.items() if d == domain for row in members)
        total = sum(lengths.values())
        rows += [{"domain": domain, "words": b, "words_to": b + LENGTH_BIN, "texts": lengths[b],
                  "percent": round(100 * lengths[b] / total, 2)} for b in range(0, max(lengths) + 1, LENGTH_BIN)]
    return rows


def class_balance(splits: dict[tuple[str, str], list[dict]]) -> list[dict]:
    """Rows per label as % of each domain/split (the source's thousands would flatten the target's tens)."""
    return [{"group": f"{domain}/{split}: {label}", "count": n, "percent": round(100 * n / len(rows), 2)}
            for (domain, split), rows in splits.items() if split != "unlabeled"
            for label, n in label_counts(rows).items()]


def split_sizes(splits: dict[tuple[str, str], list[dict]]) -> list[dict]:
    """Rows per split as % of each domain: the class-balance plot of a task without classes."""
    totals = Counter()
    for (domain, _), rows in splits.items():
        totals[domain] += len(rows)
    return [{"group": f"{d}/{s}", "count": len(rows), "percent": round(100 * len(rows) / totals[d], 2)}
            for (d, s), rows in splits.items()]
