"""Nested subsets of the labeled target train set: the points of the label-budget curve.

Its own module because finetune_target trains on them (`--labels N`) and label_budget scores
them: neither stage should depend on the other's code.
"""

from __future__ import annotations

import datasets
import numpy as np


def original_rows(train: datasets.Dataset) -> list[int]:
    """Row index of each labeled example: not an augmented copy, and (QA) its first window only."""
    if "id" in train.column_names and "label" in train.column_names:
        return [i for i, (row_id, origin) in enumerate(zip(train["id"], train["origin_id"], strict=True))
                if row_id == origin]
    first: dict[str, int] = {}
    for i, origin in enumerate(train["origin_id"]):
        first.setdefault(origin, i)
    return list(first.values())


def budget_subset(train: datasets.Dataset, labels: int, seed: int) -> datasets.Dataset:
    """The first `labels` original examples of a seeded, label-stratified order, with their augmented copies
    (QA: with all their windows).

    Interleaving the classes (each shuffled, ranked by position / class size) makes every prefix
    stratified, so the budgets are nested: the 50-label set contains the 25-label set. QA and
    translation have no classes: one stratum, a seeded random order.
    """
    originals = original_rows(train)
    if labels > len(originals):
        raise ValueError(f"a budget of {labels} labels from a train set of {len(originals)} labeled examples")
    rng = np.random.default_rng(seed)
    class_of = (np.asarray(train["label"])[originals] if "label" in train.column_names
                else np.zeros(len(originals), dtype=int))
    order_key = np.empty(len(originals))
    for label in np.unique(class_of):
        members = np.flatnonzero(class_of == label)
        rng.shuffle(members)
        order_key[members] = (np.arange(len(members)) + 0.5) / len(members)
    chosen_ids = {train["origin_id"][originals[i]] for i in np.argsort(order_key, kind="stable")[:labels]}
    # select, not filter: filter would write a cache file into data/tokenized, a DVC-tracked output.
    return train.select([i for i, origin in enumerate(train["origin_id"]) if origin in chosen_ids])


def validation_for_budget(validation: datasets.Dataset, labels: int, full_budget: int, seed: int) -> datasets.Dataset:
    """The validation split cut in the proportion `labels` / `full_budget` (at least two examples), label-
    stratified and seeded as budget_subset: a label-budget point selects its epoch and levers on as many
    validation labels as its budget implies, and the curve counts them (train + validation labels)."""
    available = len(original_rows(validation))
    keep = validation_labels(available, labels, full_budget)
    return validation if keep >= available else budget_subset(validation, keep, seed)


def validation_labels(validation_size: int, labels: int, full_budget: int) -> int:
    """How many validation labels validation_for_budget keeps for a budget of `labels`."""
    return validation_size if labels >= full_budget else min(validation_size,
                                                             max(2, round(validation_size * labels / full_budget)))
