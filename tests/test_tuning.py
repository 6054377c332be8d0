"""Equal care for both arms: the learning rate chosen from the grid by validation, the choice recorded, and a
model that never left one class detected."""

from __future__ import annotations

import pytest

from tests.conftest import shipped_params, synthetic_rows
from transfer.core.params import Params
from transfer.training.strategies import fit_strategy
from transfer.training.tuning import (
    fit_over_learning_rates,
    one_class,
    tuning_report,
    with_learning_rate,
    with_seed,
)


def grid_params(rates) -> Params:
    params = shipped_params()
    return with_learning_rate(params, rates)


def test_the_best_validation_score_wins_the_grid_and_only_grid_strategies_use_it():
    fitted_with = []

    def fit(own: Params, prefix: str):
        fitted_with.append((own.finetune.learning_rate, prefix))
        return (f"model@{own.finetune.learning_rate:g}", None, {})

    scores = {1e-4: 0.41, 3e-4: 0.55, 1e-3: 0.55}  # a tie goes to the first listed
    fitted, own, chosen = fit_over_learning_rates(grid_params([1e-4, 3e-4, 1e-3]), "target_only", fit,
                                                  lambda own, fitted: scores[own.finetune.learning_rate])
    assert fitted[0] == "model@0.0003" and own.finetune.learning_rate == 3e-4
    assert chosen == {"learning_rate": 3e-4, "learning_rate_grid": [1e-4, 3e-4, 1e-3],
                      "validation_scores": {"0.0001": 0.41, "0.0003": 0.55, "0.001": 0.55}}
    # Each value trains under its own checkpoint phases.
    assert fitted_with == [(1e-4, "lr0.0001_"), (3e-4, "lr0.0003_"), (1e-3, "lr0.001_")]

    fitted_with.clear()
    _, own, chosen = fit_over_learning_rates(grid_params([1e-4, 3e-4]), "setfit", fit, lambda *_: 1 / 0)
    assert fitted_with == [(1e-4, "")] and chosen == {"learning_rate": 1e-4, "learning_rate_grid": [1e-4]}


def test_a_grid_that_nothing_can_score_is_refused_after_its_first_rate():
    """QA and translation score a rate by the metric logged while epochs are selected; without selection
    every rate scored -inf and the first was kept silently."""
    fitted_with = []

    def fit(own: Params, prefix: str):
        fitted_with.append(own.finetune.learning_rate)
        return ("model", None, {})

    with pytest.raises(ValueError, match="select_best: true"):
        fit_over_learning_rates(grid_params([1e-4, 3e-4]), "target_only", fit, lambda *_: float("-inf"))
    assert fitted_with == [1e-4]


def test_a_strategy_refuses_the_grid_itself():
    """fit_strategy trains at one learning rate: handed the grid, it says where the choice is made."""
    with pytest.raises(ValueError, match="fit_over_learning_rates"):
        fit_strategy(grid_params([1e-4, 3e-4]), None, "target_only", "unused", None, None, None)


def test_seeds_and_rates_change_only_what_they_name():
    params = shipped_params()
    other = with_seed(with_learning_rate(params, 2e-4), 7)
    assert other.seed == 7 and other.finetune.learning_rate == 2e-4
    assert other.finetune.model_copy(update={"learning_rate": params.finetune.learning_rate}) == params.finetune


def test_one_class_names_the_class_of_a_model_that_never_left_it():
    assert one_class({"negative": 0, "neutral": 0, "positive": 24}) == "positive"
    assert one_class({"negative": 3, "neutral": 0, "positive": 21}) is None
    assert one_class({}) is None


def test_an_untrained_head_is_reported_as_predicting_one_class(tiny_model):
    """A classifier whose head always prefers one class (its bias set so): tuning.json says which class, the
    epoch and learning rate it was trained with, and how many validation examples it saw."""
    import torch

    from transfer.core.modeling import load_tokenizer
    from transfer.tasks.registry import get_task

    params = with_learning_rate(shipped_params(), 1e-4)
    task = get_task("classification")
    tokenizer = load_tokenizer(str(tiny_model), params)
    model = task.load_model(str(tiny_model), tokenizer, params)
    with torch.no_grad():
        model.classifier.bias[:] = torch.tensor([0.0, 0.0, 50.0])
    validation = task.tokenize(synthetic_rows("target", 12, 3), tokenizer, params, "validation")["validation"]
    report = tuning_report(task, params, (model, tokenizer, {}), validation, {"learning_rate": 1e-4})
    assert report["predicts_one_class"] == "positive"
    assert report["validation_predictions"] == {"negative": 0, "neutral": 0, "positive": 12}
    assert report["learning_rate"] == 1e-4 and report["best_epoch"] is None
