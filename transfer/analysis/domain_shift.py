"""How far apart two domains are on one balanced sample: text statistics, tokenizer fit, and the distance
between their embeddings under a checkpoint (transfer/analysis/domain_metrics.py holds the measures)."""

from __future__ import annotations

import random

import numpy as np

from transfer.analysis.domain_metrics import (
    js_divergence,
    length_summary,
    mean_pooled_embeddings,
    mmd_rbf,
    project_2d,
    proxy_a_distance,
    tokenizer_fit,
    vocabulary_overlap,
    word_counts,
)
from transfer.core.params import DomainShiftParams

DOMAINS = ("source", "target")


def balanced_sample(pools: dict[str, list[dict]], sample_size: int, seed: int) -> dict[str, list[dict]]:
    """Up to sample_size rows per domain, the same number from each.

    Equal sizes keep the domain classifier's chance level at 50% and the divergences comparable.
    """
    size = min(sample_size, *(len(rows) for rows in pools.values()))
    rng = random.Random(seed)
    return {domain: rng.sample(rows, size) for domain, rows in pools.items()}


def text_report(texts: dict[str, list[str]], tokenizer, vocab_top_k: int) -> dict:
    """Vocabulary overlap, JS divergence, the tokenizer's fit and text lengths of the two domains."""
    token_lengths = {d: [len(ids) for ids in tokenizer(t, add_special_tokens=False)["input_ids"]]
                     for d, t in texts.items()}
    return {
        "sample_per_domain": len(texts["source"]),
        "text": {
            "vocabulary_overlap": vocabulary_overlap(texts["source"], texts["target"], vocab_top_k),
            "js_divergence": js_divergence(texts["source"], texts["target"]),
            "vocabulary_size": {d: len(word_counts(t)) for d, t in texts.items()},
        },
        "tokenizer": {d: tokenizer_fit(t, tokenizer) for d, t in texts.items()},
        "length_tokens": {d: length_summary(lengths) for d, lengths in token_lengths.items()},
        "length_words": {d: length_summary([len(text.split()) for text in t]) for d, t in texts.items()},
    }


def embedding_report(encoder, tokenizer, texts: dict[str, list[str]], labels: dict[str, list], name: str,
                     config: DomainShiftParams, *, max_length: int, batch_size: int,
                     seed: int) -> tuple[dict, list[dict]]:
    """(proxy A-distance and MMD between the domains' mean-pooled embeddings under one checkpoint, the 2-D
    projection rows of the plot: checkpoint, domain, label, x, y)."""
    embedded = {d: mean_pooled_embeddings(encoder, tokenizer, t, max_length=max_length, batch_size=batch_size)
                for d, t in texts.items()}
    distances = {**proxy_a_distance(embedded["source"], embedded["target"], config.heldout_fraction, seed),
                 **mmd_rbf(embedded["source"], embedded["target"])}
    points = project_2d(np.concatenate([embedded[d] for d in DOMAINS]), config.projection, seed)
    rows = [(d, label) for d in DOMAINS for label in labels[d]]
    projection = [{"checkpoint": name, "domain": d, "label": label, "x": round(float(x), 4), "y": round(float(y), 4)}
                  for (d, label), (x, y) in zip(rows, points, strict=True)]
    return distances, projection
