"""finetune.strategy: auto: the strategy chosen by k-fold cross-validation over the labeled target set,
with the baseline recipe as its floor (the negative-transfer guard).

Why not the validation split: with 100-200 labels it holds 10-50 examples, and one macro-F1 on so few
moves by 5-10 points from one draw to the next, more than most transfer gains. Cross-validation scores
each candidate on every labeled example once (each held out by a model that never saw it), so the choice
rests on all the labels, scored once over the pooled held-out predictions. Epochs are still chosen on
the validation split, as in every other run, so the candidates are scored as they would ship.

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
from transfer.training.source_phase import SOURCE_PHASE_KEYS
from transfer.training.strategies import fit_strategy

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task

BASELINE = "baseline"


@dataclass(frozen=True)
class Recipe:
    """How a candidate is trained: strategy, initial weights, whether finetune's levers apply, its own
    params where a candidate overrides finetune keys (None: the run's), and the trained source phase it
    starts from (None: it trains its own, if its strategy has one)."""
    strategy: str
    init: str
    levers: bool
    params: Params | None = None
    source_model: str | None = None


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
    counts = np.unique(labels, return_counts=True)[1]
    smallest = int(counts.min())
    if counts.max() < folds:  # StratifiedKFold's own ValueError would not say which param to change
        raise ModelError(f"finetune.auto.folds: {folds} folds, but no class has that many labeled target examples "
                         f"(the largest has {int(counts.max())}); lower finetune.auto.folds or label more examples")
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


FoldPredictions = Callable[[str, Recipe, int, datasets.Dataset, datasets.Dataset], np.ndarray]
Score = Callable[[np.ndarray, np.ndarray], float]


def cross_validate(recipes: Mapping[str, Recipe], splits: list[tuple[list[int], list[int]]],
                   train: datasets.Dataset, predict: FoldPredictions, score: Score) -> dict[str, dict]:
    """Per recipe, the score of each held-out fold and the pooled score: `score` over every held-out
    prediction at once. predict(name, recipe, fold, train part, held out) gives the held-out class ids.

    The choice rests on the pooled score: an F-measure averaged over folds is biased and noisy when a
    class has a handful of examples per fold (Forman and Scholz 2010); pooled, each example counts once.
    """
    labels = np.asarray(train["label"])
    results = {}
    for name, recipe in recipes.items():
        actual, predicted, folds = [], [], []
        for fold, (training, heldout) in enumerate(splits, start=1):
            fold_predicted = np.asarray(predict(name, recipe, fold, train.select(training), train.select(heldout)))
            actual.append(labels[heldout])
            predicted.append(fold_predicted)
            folds.append(float(score(labels[heldout], fold_predicted)))
            print(f"finetune.auto: {name} fold {fold}/{len(splits)}: {folds[-1]:.4f}")
        results[name] = {"pooled": float(score(np.concatenate(actual), np.concatenate(predicted))), "folds": folds}
        print(f"finetune.auto: {name} pooled over the folds: {results[name]['pooled']:.4f}")
    return results


def choose(results: Mapping[str, dict], baseline: str = BASELINE) -> dict:
    """The candidate with the best pooled score (the first listed on a tie), or the baseline when no
    candidate's is above the baseline's; with every recipe's pooled score, fold scores and their spread."""
    pooled = {name: result["pooled"] for name, result in results.items()}
    best = max((name for name in results if name != baseline), key=pooled.__getitem__)
    guarded = pooled[best] < pooled[baseline]
    return {"chosen": baseline if guarded else best, "best_candidate": best, "guard_applied": guarded,
            "scores": {name: {"pooled": round(pooled[name], 4), "folds": [round(s, 4) for s in result["folds"]],
                              "fold_std": round(float(np.std(result["folds"], ddof=1)), 4)
                              if len(result["folds"]) > 1 else 0.0}
                       for name, result in results.items()}}


def select_recipe(params: Params, task: Task, recipes: Mapping[str, Recipe], source: datasets.DatasetDict,
                  target: datasets.DatasetDict, run: ResumableRun) -> dict:
    """Cross-validate `recipes` (the baseline recipe under BASELINE among them) on target["train"] and
    choose; returns what `choose` does plus the number of folds and the score's name."""
    splits = label_folds(target["train"], params.finetune.auto.folds, params.seed)

    def predict(name: str, recipe: Recipe, fold: int, training: datasets.Dataset,
                heldout: datasets.Dataset) -> np.ndarray:
        fold_target = datasets.DatasetDict({**target, "train": training})
        own = recipe.params or params
        model, tokenizer, _ = fit_strategy(own, task, recipe.strategy, recipe.init, source, fold_target, run,
                                           levers=recipe.levers, phase_prefix=f"auto_{name}_fold{fold}_",
                                           source_phase=source_phase_name(name, own, params),
                                           source_model=recipe.source_model)
        return task.probabilities(model.eval(), heldout, tokenizer, params).argmax(axis=1)

    results = cross_validate(recipes, splits, target["train"], predict,
                             lambda actual, predicted: task.label_score(actual, predicted, params))
    return {"folds": len(splits), "score": task.primary, **choose(results)}
