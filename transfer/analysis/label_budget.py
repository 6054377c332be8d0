"""Label-budget maths: how many target labels does the transfer save?

    labels_saved = N - n'   where target_only reaches quality q with all N labels,
                            and the transfer reaches q with n' labels (interpolated in log n).

That is the same quantity as "target_only needs N labels to match the transfer with n'"; it is
measured at target_only's full-budget quality because that is the only level both curves reach
without labels the scenario does not have (the gain at N would need target_only beyond N).
"""

from __future__ import annotations

import math


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
