"""How sure a gain is: a paired bootstrap over test examples (Efron & Tibshirani 1993; Koehn 2004 for MT).

Both models' predictions on the same resampled test examples are re-scored with the task's primary metric
(macro-F1, SQuAD F1, corpus chrF: not a mean of per-example numbers in general, so the metric itself is
recomputed on each resample). The 95% interval is the 2.5th to 97.5th percentile of the resampled gains; a
gain is called significant when that interval excludes zero. One seed's interval says how much the test
sample moves the figure, not how much another training seed would: every stage that trains several seeds
(evaluate's finetune.seed_offsets, compare.seeds, label_budget.seeds) resamples the seeds as well
(seeds_and_examples_bootstrap), and none calls a gain significant unless each trained side has two seeds or
more (significance_claim): with one, `significant` is null and the reason is given.

Examples that share a source are not independent: SQuAD-style QA asks several questions about one passage, so
a model that reads one article well gets all its questions right. Where the task's rows name a `group` (QA:
the article title, else the context), the bootstrap draws whole groups (a cluster bootstrap; Field & Welsh
2007), which widens the interval to what another sample of articles would do; otherwise it draws examples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the stages pass their task in
    from transfer.core.params import Params
    from transfer.tasks.base import Task

Scorer = Callable[[np.ndarray], float]  # the primary score on the test examples at these positions


def row_groups(rows: list[dict]) -> list[str] | None:
    """The resampling unit of each row where every row names one (`group`), else None (draw examples)."""
    groups = [row.get("group") for row in rows]
    return groups if groups and all(groups) else None


def group_members(groups: list[str]) -> list[np.ndarray]:
    """The positions of each group, in order of first appearance (deterministic for a seeded draw)."""
    members: dict[str, list[int]] = {}
    for position, group in enumerate(groups):
        members.setdefault(group, []).append(position)
    return [np.array(positions) for positions in members.values()]


def paired_bootstrap(transferred: Scorer, baseline: Scorer, n_examples: int, *, resamples: int, seed: int,
                     points: float, groups: list[str] | None = None) -> dict:
    """The gain's 95% interval in points, whether it excludes zero, and the share of resamples with a gain."""
    return seeds_and_examples_bootstrap([transferred], [baseline], n_examples, resamples=resamples, seed=seed,
                                        points=points, groups=groups)


def resampled_mean(scorers: list[Scorer], positions: np.ndarray, rng: np.random.Generator) -> float:
    """The mean score over training seeds drawn with replacement (one seed: that seed) on these test positions."""
    chosen = scorers if len(scorers) == 1 else [scorers[i] for i in rng.integers(0, len(scorers), len(scorers))]
    return float(np.mean([score(positions) for score in chosen]))


def seeds_and_examples_bootstrap(transferred: list[Scorer], baseline: list[Scorer], n_examples: int, *,
                                 resamples: int, seed: int, points: float, groups: list[str] | None = None) -> dict:
    """As paired_bootstrap, with one scorer per training seed on each side: every resample draws the test
    examples and, where a side has several seeds, the seeds too (with replacement; the score is their mean), so
    the interval covers both what the test sample and what the training seed move. With one seed per side it is
    exactly paired_bootstrap (no seed draws). `groups` (one per example): draw whole groups instead of
    examples, and say how many there were (`resampled_groups`)."""
    if groups is not None and len(groups) != n_examples:
        raise ValueError(f"{len(groups)} groups for {n_examples} examples")
    members = group_members(groups) if groups is not None else None
    rng = np.random.default_rng(seed)
    gains = np.empty(resamples)
    for i in range(resamples):
        if members is None:
            positions = rng.integers(0, n_examples, n_examples)
        else:
            positions = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        gains[i] = points * (resampled_mean(transferred, positions, rng) - resampled_mean(baseline, positions, rng))
    low, high = np.percentile(gains, [2.5, 97.5])
    return {"gain_ci95_points": [round(float(low), 2), round(float(high), 2)],
            "significant": bool(low > 0 or high < 0),
            "share_of_resamples_with_a_gain": round(float(np.mean(gains > 0)), 4),
            "bootstrap_resamples": resamples,
            **({"resampled_groups": len(members)} if members is not None else {})}


ONE_SEED = "one seed: no significance claim"


def significance_claim(interval: dict, transferred_seeds: int, baseline_seeds: int,
                       transferred_trained: bool = True) -> dict:
    """{"significant": the interval's verdict} where every trained side has two or more training seeds;
    otherwise {"significant": None, "significance_note": why}: one seed's interval leaves out the variance
    of training, which on a few hundred labels moves a score by points. transferred_trained=False: a side
    with no training (a prompted model), whose predictions no seed moves."""
    if baseline_seeds < 2 or (transferred_trained and transferred_seeds < 2):
        return {"significant": None, "significance_note": ONE_SEED}
    return {"significant": interval["significant"]}


def rows_gain_interval(task: Task, params: Params, transferred: list[list[dict]], baseline: list[list[dict]],
                       what: str, transferred_trained: bool = True) -> dict:
    """The primary gain's interval from per-example rows (what Task.score returns), one list per training
    seed on each side, scored on the same test examples (checked: `what` names the model in the error), and
    significance_claim's verdict."""
    ids = [row["id"] for row in baseline[0]]
    if any([row["id"] for row in seed_rows] != ids for seed_rows in transferred + baseline):
        raise RuntimeError(f"{what} was scored on other test examples than the baseline")
    interval = seeds_and_examples_bootstrap([task.resampled_score(r, params) for r in transferred],
                                            [task.resampled_score(r, params) for r in baseline], len(ids),
                                            resamples=params.evaluate.bootstrap_resamples, seed=params.seed,
                                            points=task.points, groups=row_groups(baseline[0]))
    return {"gain_ci95_points": interval["gain_ci95_points"],
            **({"resampled_groups": interval["resampled_groups"]} if "resampled_groups" in interval else {}),
            **significance_claim(interval, len(transferred), len(baseline), transferred_trained)}
