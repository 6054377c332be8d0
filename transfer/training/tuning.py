"""Equal care for every arm: what a training chooses on target validation, and the seeds behind a claim.

- The learning rate: finetune.learning_rate may be a grid. The run trained with `seed` fits the whole
  recipe once per value and keeps the one whose shipped model scores best on target validation
  (classification: macro-F1 after logit adjustment, which is chosen on the same split; QA: F1 after the
  abstention threshold, likewise; translation: the lowest validation loss). The baseline and the transfer
  choose the same way, on the same split: one learning rate for both favours the arm it was tuned for (the
  default scenario's baseline sat on the majority class for 6 of 8 epochs at the rate that suited the
  transferred model).
- The epoch: by validation within each training (Trainer's load_best_model_at_end), as before.
- The seeds: finetune.seed_offsets trains each headline arm again with seed + offset, at the learning rate
  the `seed` run chose, so that the headline's interval covers what another training seed moves
  (transfer/analysis/significance.py).

Each choice goes into the model folder's tuning.json (no timings: the same training writes the same
bytes, so the label-budget stages that read it re-run only when a choice changed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np

from transfer.core.artifacts import read_json, write_json
from transfer.core.params import Params
from transfer.core.strategy_registry import get_strategy

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task

TUNING_REPORT = "tuning.json"

Fitted = tuple[Any, Any, dict]  # fit_strategy's (model, tokenizer, phases)


def with_learning_rate(params: Params, rate: float) -> Params:
    return params.model_copy(update={"finetune": params.finetune.model_copy(update={"learning_rate": rate})})


def with_seed(params: Params, seed: int) -> Params:
    return params.model_copy(update={"seed": seed})


def grid_for(params: Params, strategy: str) -> list[float]:
    rates = params.finetune.learning_rates
    # Strategies with a phase at finetune.learning_rate; the others (source_only, SetFit) train once.
    return rates if get_strategy(strategy).tuned_over_grid else rates[:1]


def fit_over_learning_rates(params: Params, strategy: str, fit: Callable[[Params, str], Fitted],
                            score: Callable[[Params, Fitted], float]) -> tuple[Fitted, Params, dict]:
    """fit(params with one learning rate, a checkpoint-phase prefix) for each value of the grid; the fitted
    model with the best score(params, fitted) (the first on a tie), its params, and what was chosen.

    Only the best model is kept in memory while the next trains."""
    rates = grid_for(params, strategy)
    best: tuple[float, Fitted, Params] | None = None
    scores: dict[str, float] = {}
    for rate in rates:
        own = with_learning_rate(params, rate)
        fitted = fit(own, f"lr{rate:g}_" if len(rates) > 1 else "")
        if len(rates) == 1:
            return fitted, own, {"learning_rate": rate, "learning_rate_grid": rates}
        value = score(own, fitted)
        if value == float("-inf"):
            raise ValueError(
                f"finetune.learning_rate lists {len(rates)} rates, but the model trained at {rate:g} has no "
                "validation score to choose by: tasks without a label head (QA, translation) score a rate by "
                "the metric logged while epochs are selected, and none was (finetune.select_best is false, or "
                "the target validation split is empty). Set finetune.select_best: true with a validation "
                "split, or give one learning rate.")
        scores[f"{rate:g}"] = round(value, 4)
        print(f"finetune: learning rate {rate:g}: validation score {value:.4f}")
        if best is None or value > best[0]:
            best = (value, fitted, own)
        del fitted
    _, fitted, own = best
    return fitted, own, {"learning_rate": own.finetune.learning_rate, "learning_rate_grid": rates,
                         "validation_scores": scores}


def validation_score(task: Task, params: Params, fitted: Fitted, validation: datasets.Dataset) -> float:
    """Higher is better: the task's validation score of the model as it ships where it has a label head;
    otherwise the best value of the metric that picked its epochs (QA: F1 after the abstention threshold;
    translation: minus the loss)."""
    model, tokenizer, phases = fitted
    if task.label_head:
        return task.validation_score(model.eval(), validation, tokenizer, params)
    key = f"eval_{task.best_epoch['metric_for_best_model']}"
    sign = 1.0 if task.best_epoch.get("greater_is_better") else -1.0
    values = [sign * entry[key] for trainer in phases.values() for entry in trainer.state.log_history
              if key in entry]
    return max(values) if values else float("-inf")


def best_epoch(phases: dict) -> float | None:
    """The epoch that validation kept in the last phase that was evaluated (None: none was)."""
    for trainer in reversed(list(phases.values())):
        state = trainer.state
        evaluated = [entry for entry in state.log_history if "eval_loss" in entry]
        if not evaluated:
            continue
        kept = [entry for entry in evaluated if entry["step"] == state.best_global_step]
        return (kept or evaluated)[-1]["epoch"]
    return None


def predicted_classes(task: Task, params: Params, fitted: Fitted, validation: datasets.Dataset) -> dict[str, int]:
    """How many validation examples the shipped model assigns to each class ({} without a label head)."""
    if not task.label_head or len(validation) == 0:
        return {}
    model, tokenizer, _ = fitted
    predicted = task.probabilities(model.eval(), validation, tokenizer, params).argmax(axis=1)
    counts = np.bincount(predicted, minlength=len(params.data.labels))
    return {label: int(n) for label, n in zip(params.data.labels, counts, strict=True)}


def tuning_report(task: Task, params: Params, fitted: Fitted, validation: datasets.Dataset, chosen: dict) -> dict:
    """tuning.json: the learning rate (and the grid's validation scores), the epoch validation kept, the
    logit-adjustment strength, and the validation predictions per class (a model on one class did not learn)."""
    model = fitted[0]
    levers = getattr(model.config, "transfer_levers", None) or {}
    adjustment = levers.get("logit_adjustment", {})
    predictions = predicted_classes(task, params, fitted, validation)
    abstention = {"abstention_threshold": levers["abstention"].get("null_score_threshold")} \
        if "abstention" in levers else {}
    return {"seed": params.seed, **chosen, "best_epoch": best_epoch(fitted[2]),
            "logit_adjustment": adjustment.get("strength"), **abstention, "validation_predictions": predictions,
            "predicts_one_class": one_class(predictions)}


def write_tuning(folder: Path, report: dict) -> None:
    write_json(folder / TUNING_REPORT, report)


def chosen_learning_rate(folder: str | Path) -> float:
    """The learning rate a headline arm chose (its tuning.json), for the label-budget points of that arm."""
    return float(read_json(Path(folder) / TUNING_REPORT)["learning_rate"])


def one_class(predictions: dict[str, int]) -> str | None:
    """The class a model predicts for every validation example, if it does: it never left the majority
    (or any one) class, so what it scores is no learned result."""
    used = [label for label, n in predictions.items() if n > 0]
    return used[0] if len(used) == 1 else None
