"""Self-training on unlabeled target text: the current model labels it, a student learns from the
labeled examples plus the confident pseudo-labels (Xie et al. 2020, "noisy student": dropout stays on).

Pseudo-labels are taken class-balanced, in the proportions of the labeled target set, each class ranked by
its own confidence (class-balanced self-training, Zou et al. 2018): a model that leans to the majority
class would otherwise teach the student to lean further.
"""

from __future__ import annotations

import math

import datasets
import numpy as np


def select_pseudo_labels(probabilities: np.ndarray, threshold: float, share: float,
                         priors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class c, the ceil(share * n * prior_c) rows predicted as c with the highest confidence, among
    those at or above `threshold` (n: all rows); returns (row indices, class ids), in row order.

    A quota per class, not one global confidence cut: a model is more confident on some classes than on
    others, and a global cut of 0.9 once kept 117 positive reviews and not one negative (tweets -> drug
    reviews, 100 labels), and the student learned to say positive.
    """
    probabilities = np.asarray(probabilities)
    predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    candidates = np.flatnonzero(confidence >= threshold)
    chosen = []
    for label, prior in enumerate(priors):
        of_class = candidates[predicted[candidates] == label]
        most_confident = of_class[np.argsort(-confidence[of_class], kind="stable")]
        chosen.extend(most_confident[:math.ceil(share * len(probabilities) * prior)].tolist())
    rows = np.array(sorted(chosen), dtype=np.int64)
    return rows, predicted[rows]


def with_pseudo_labels(unlabeled: datasets.Dataset, rows: np.ndarray, labels: np.ndarray) -> datasets.Dataset:
    """The chosen unlabeled rows, labeled (same features as the labeled train set, so they concatenate)."""
    chosen = unlabeled.select(rows.tolist())
    return chosen.remove_columns("label").add_column("label", labels.tolist(), feature=unlabeled.features["label"])
