from __future__ import annotations

import random
from collections import Counter

from tests.conftest import shipped_section
from transfer.data.augmentation import augment_rows, eda, embedding_synonyms, rebalance

ROWS = [{"id": f"r{i}", "text": f"word{i} alpha beta gamma delta epsilon", "label": "pos" if i < 6 else "neg"}
        for i in range(8)]


def test_eda_edits_keep_the_words_and_the_label():
    rng = random.Random(0)
    text = "one two three four five six seven eight nine ten"
    swapped = eda(text, "swap", 0.2, rng)
    assert sorted(swapped.split()) == sorted(text.split()) and swapped != text
    assert len(eda(text, "delete", 0.2, rng).split()) == 8
    inserted = eda(text, "insert", 0.2, rng).split()
    assert len(inserted) == 12 and set(inserted) == set(text.split())


def test_augmented_rows_trace_back_to_their_origin_and_are_seeded():
    out = augment_rows(ROWS, shipped_section("augment", n_aug=2), seed=3)
    assert len(out) == 24
    new = [r for r in out if "origin_id" in r]
    by_id = {r["id"]: r for r in ROWS}
    assert all(r["label"] == by_id[r["origin_id"]]["label"] for r in new)
    assert out == augment_rows(ROWS, shipped_section("augment", n_aug=2), seed=3)


def test_rebalance_over_and_under_sampling():
    over, left_out = rebalance(ROWS, "oversample", seed=0)
    assert Counter(r["label"] for r in over) == {"pos": 6, "neg": 6} and left_out == []
    under, left_out = rebalance(ROWS, "undersample", seed=0)
    assert Counter(r["label"] for r in under) == {"pos": 2, "neg": 2}
    assert len(under) + len(left_out) == len(ROWS)  # nothing silently dropped
    assert rebalance(ROWS, "class_weights", seed=0) == (ROWS, [])


def test_embedding_synonyms_respect_the_similarity_floor():
    import torch

    vocab = {"good": 0, "great": 1, "bad": 2, "pill": 3, "##s": 4}
    embeddings = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.6, 0.8], [0.0, -1.0], [1.0, 0.0]])
    table = embedding_synonyms(["Good pill!", "bad"], embeddings, vocab, min_similarity=0.7, top_k=3)
    assert table["good"] == ["great"]  # "bad" (cos 0.6) is below the floor; "##s" is no whole word
    assert "pill" not in table  # no neighbour is close enough
    rng = random.Random(0)
    assert eda("Good pill!", "synonym", 0.5, rng, table) == "Great pill!"
    assert eda("a good b", "insert", 0.3, random.Random(1), {"good": ["great"]}).split().count("great") <= 1
