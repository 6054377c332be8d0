"""Label-budget maths: how many target labels does the transfer save, and how sure is that?

    labels_saved = N - n'   where target_only reaches quality q with all N labels,
                            and the transfer reaches q with n' labels (interpolated in log n).

That is the same quantity as "target_only needs N labels to match the transfer with n'"; it is
measured at target_only's full-budget quality because that is the only level both curves reach
without labels the scenario does not have (the gain at N would need target_only beyond N). Labels are
train + validation labels: a budget point selects on a validation split cut in its proportion.

One seed a point moves a curve by points, and a curve need not be monotone: labels_saved_interval
recomputes the figure on bootstrap resamples of the test examples and of each point's seeds, and the
figure is called established only where the whole 95% interval saves labels.
"""

from __future__ import annotations

import math

import numpy as np

from transfer.analysis.significance import Scorer, resampled_mean


def labels_to_reach(curve: dict[int, float], quality: float) -> tuple[float | None, bool]:
    """Labels at which `curve` first reaches `quality`, linear in log(labels) between points.

    Returns (labels, at_most): at_most when the smallest budget already reaches it (the true
    figure may be lower); (None, False) when no budget reaches it.
    """
    points = sorted(curve.items())
    if points[0][1] >= quality:
        return float(points[0][0]), True
    for (n0, f0), (n1, f1) in zip(points, points[1:], strict=False):
        if f0 < quality <= f1:
            share = (quality - f0) / (f1 - f0)
            return math.exp(math.log(n0) + share * (math.log(n1) - math.log(n0))), False
    return None, False


def labels_saved(target_only: dict[int, float], transfer: dict[int, float], full_budget: int,
                 metric: str = "macro_f1", metric_name: str = "macro-F1") -> dict:
    """How many labels the transfer saves at target_only's full-budget quality (the module docstring says why
    that level)."""
    quality = target_only[full_budget]
    needed, at_most = labels_to_reach(transfer, quality)
    if needed is None:
        return {f"quality_{metric}": quality, "transfer_labels_needed": None, "labels_saved": None,
                "note": f"the transfer does not reach target_only's full-budget {metric_name} at any budget: "
                        f"no labels saved"}
    return {f"quality_{metric}": quality, "transfer_labels_needed": round(needed, 1),
            "labels_saved": round(full_budget - needed, 1), "labels_saved_is_lower_bound": at_most,
            "label_efficiency": round(full_budget / needed, 2)}


def labels_saved_interval(target_only: dict[int, list[Scorer]], transfer: dict[int, list[Scorer]],
                          full_budget: int, n_examples: int, *, resamples: int, seed: int) -> dict:
    """labels_saved's 95% interval: per resample, the test examples and each point's training seeds drawn
    with replacement, both curves' means recomputed, and the labels saved counted (0 where the transfer
    does not reach target_only's full-budget quality); established when the interval's low end is above 0."""
    rng = np.random.default_rng(seed)
    saved = np.empty(resamples)
    for i in range(resamples):
        positions = rng.integers(0, n_examples, n_examples)
        means = [{n: resampled_mean(scorers, positions, rng) for n, scorers in curve.items()}
                 for curve in (target_only, transfer)]
        saved[i] = labels_saved(*means, full_budget)["labels_saved"] or 0.0
    low, high = np.percentile(saved, [2.5, 97.5])
    return {"labels_saved_ci95": [round(float(low), 1), round(float(high), 1)],
            "labels_saved_established": bool(low > 0)}
