"""finetune.strategy: auto: the strategy chosen by k-fold cross-validation over the labeled target set,
with the baseline recipe as its floor (the negative-transfer guard).

Why not the validation split: with 100-200 labels it holds 10-50 examples, and one macro-F1 on so few
moves by 5-10 points from one draw to the next, more than most transfer gains. Cross-validation scores
each candidate on every labeled example once (each held out by a model that never saw it), so the choice
rests on all the labels. Epochs are still chosen on the validation split, as in every other run, so the
candidates are scored as they would ship.

The guard: the baseline recipe (target_only from the base model, no levers: what metrics/eval.json
measures the transfer against) is scored on the same folds, and ships if no candidate scores above it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import datasets
import numpy as np
from sklearn.model_selection import StratifiedKFold

from transfer.core.errors import ModelError
from transfer.core.params import Params
from transfer.training.checkpoints import ResumableRun
from transfer.training.label_subsets import original_rows
from transfer.training.strategies import fit_strategy

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task

BASELINE = "baseline"


@dataclass(frozen=True)
class Recipe:
    """How a candidate is trained: strategy, initial weights, whether finetune's levers apply, and its own
    params where a candidate overrides finetune keys (None: the run's)."""
    strategy: str
    init: str
    levers: bool
    params: Params | None = None


# What the source phase depends on beyond the data and the initial weights: recipes that agree on these
# share one source phase (it reads no target data).
SOURCE_PHASE_KEYS = ("source_epochs", "source_learning_rate", "batch_size", "weight_decay", "warmup_ratio", "peft",
                     "lora")


def source_phase_name(name: str, recipe_params: Params, params: Params) -> str:
    """`source`, shared, unless the recipe's own finetune settings change what the source phase does."""
    own, run = recipe_params.finetune, params.finetune
    return "source" if all(getattr(own, k) == getattr(run, k) for k in SOURCE_PHASE_KEYS) else f"auto_{name}_source"


def label_folds(train: datasets.Dataset, folds: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """(training rows, held-out rows) of `train` per fold: label-stratified folds of the original labeled
    examples; an augmented copy trains with its original and is never held out (it would leak its label)."""
    originals = original_rows(train)
    if len(originals) < folds:
        raise ModelError(f"finetune.auto.folds: {folds} folds of {len(originals)} labeled target examples; lower "
                         f"finetune.auto.folds")
    labels = np.asarray(train["label"])[originals]
    smallest = int(np.unique(labels, return_counts=True)[1].min())
    if smallest < folds:
        print(f"finetune.auto: a class has {smallest} labeled examples, fewer than {folds} folds: some held-out "
              f"folds lack it")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    origin = train["origin_id"]
    splits = []
    for _, heldout in splitter.split(np.zeros(len(originals)), labels):
        held_ids = {origin[originals[i]] for i in heldout}
        splits.append(([row for row, o in enumerate(origin) if o not in held_ids],
                       sorted(originals[i] for i in heldout)))
    return splits


FoldScore = Callable[[str, Recipe, int, datasets.Dataset, datasets.Dataset], float]


def cross_validate(recipes: Mapping[str, Recipe], splits: list[tuple[list[int], list[int]]],
                   train: datasets.Dataset, fit_and_score: FoldScore) -> dict[str, list[float]]:
    """Each recipe's score on each held-out fold: fit_and_score(name, recipe, fold, train part, held out)."""
    scores: dict[str, list[float]] = {}
    for name, recipe in recipes.items():
        for fold, (training, heldout) in enumerate(splits, start=1):
            score = float(fit_and_score(name, recipe, fold, train.select(training), train.select(heldout)))
            scores.setdefault(name, []).append(score)
            print(f"finetune.auto: {name} fold {fold}/{len(splits)}: {score:.4f}")
    return scores


def choose(scores: Mapping[str, list[float]], baseline: str = BASELINE) -> dict:
    """The candidate with the best mean fold score (the first listed on a tie), or the baseline when no
    candidate's mean is above the baseline's; with every recipe's mean and spread."""
    means = {name: float(np.mean(folds)) for name, folds in scores.items()}
    candidates = [name for name in scores if name != baseline]
    best = max(candidates, key=means.__getitem__)
    guarded = means[best] < means[baseline]
    return {"chosen": baseline if guarded else best, "best_candidate": best, "guard_applied": guarded,
            "scores": {name: {"mean": round(means[name], 4), "std": round(float(np.std(folds, ddof=1)), 4)
                              if len(folds) > 1 else 0.0, "folds": [round(s, 4) for s in folds]}
                       for name, folds in scores.items()}}


def select_recipe(params: Params, task: Task, recipes: Mapping[str, Recipe], source: datasets.DatasetDict,
                  target: datasets.DatasetDict, run: ResumableRun) -> dict:
    """Cross-validate `recipes` (the baseline recipe under BASELINE among them) on target["train"] and
    choose; returns what `choose` does plus the number of folds and the score's name."""
    splits = label_folds(target["train"], params.finetune.auto.folds, params.seed)

    def fit_and_score(name: str, recipe: Recipe, fold: int, training: datasets.Dataset,
                      heldout: datasets.Dataset) -> float:
        fold_target = datasets.DatasetDict({**target, "train": training})
        own = recipe.params or params
        model, tokenizer, _ = fit_strategy(own, task, recipe.strategy, recipe.init, source, fold_target, run,
                                           levers=recipe.levers, phase_prefix=f"auto_{name}_fold{fold}_",
                                           source_phase=source_phase_name(name, own, params))
        return task.validation_score(model.eval(), heldout, tokenizer, params)

    scores = cross_validate(recipes, splits, target["train"], fit_and_score)
    return {"folds": len(splits), "score": task.primary, **choose(scores)}
