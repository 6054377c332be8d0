"""How sure a gain is: a paired bootstrap over test examples (Efron & Tibshirani 1993; Koehn 2004 for MT).

Both models' predictions on the same resampled test examples are re-scored with the task's primary metric
(macro-F1, SQuAD F1, corpus chrF: not a mean of per-example numbers in general, so the metric itself is
recomputed on each resample). The 95% interval is the 2.5th to 97.5th percentile of the resampled gains; a
gain is called significant when that interval excludes zero. One seed's interval says how much the test
sample moves the figure, not how much another training seed would (compare.seeds measures that).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Scorer = Callable[[np.ndarray], float]  # the primary score on the test examples at these positions


def paired_bootstrap(transferred: Scorer, baseline: Scorer, n_examples: int, *, resamples: int, seed: int,
                     points: float) -> dict:
    """The gain's 95% interval in points, whether it excludes zero, and the share of resamples with a gain."""
    rng = np.random.default_rng(seed)
    gains = np.empty(resamples)
    for i in range(resamples):
        positions = rng.integers(0, n_examples, n_examples)
        gains[i] = points * (transferred(positions) - baseline(positions))
    low, high = np.percentile(gains, [2.5, 97.5])
    return {"gain_ci95_points": [round(float(low), 2), round(float(high), 2)],
            "significant": bool(low > 0 or high < 0),
            "share_of_resamples_with_a_gain": round(float(np.mean(gains > 0)), 4),
            "bootstrap_resamples": resamples}
