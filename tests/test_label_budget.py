"""The label-budget subsets and the labels-saved interpolation."""

from __future__ import annotations

import math
from collections import Counter

import datasets
import numpy as np
import pytest

from tests.test_params import default_params
from transfer.analysis.label_budget import labels_saved, labels_saved_interval, labels_to_reach
from transfer.core.errors import ParamsError
from transfer.core.params import parse_params
from transfer.training.label_subsets import budget_subset, validation_for_budget, validation_labels


def train_set(n_per_class: dict[int, int], copies: int = 0) -> datasets.Dataset:
    rows = [{"id": f"{label}-{i}", "origin_id": f"{label}-{i}", "label": label}
            for label, n in n_per_class.items() for i in range(n)]
    rows += [{**row, "id": f"{row['id']}-aug{k}"} for row in rows for k in range(copies)]
    return datasets.Dataset.from_list(rows)


def test_budgets_are_nested_stratified_and_keep_augmented_copies_with_their_origin():
    train = train_set({0: 60, 1: 30, 2: 10}, copies=2)
    small, large = budget_subset(train, 20, seed=3), budget_subset(train, 50, seed=3)
    originals = [r for r in small if r["id"] == r["origin_id"]]
    assert len(originals) == 20 and len(small) == 60  # each original with its two copies
    assert Counter(r["label"] for r in originals) == {0: 12, 1: 6, 2: 2}
    assert {r["origin_id"] for r in small} < {r["origin_id"] for r in large}
    assert budget_subset(train, 20, seed=4)["id"] != small["id"]


def test_a_budget_above_the_labeled_set_is_refused():
    with pytest.raises(ValueError, match="a budget of 101 labels from a train set of 100 labeled examples"):
        budget_subset(train_set({0: 50, 1: 50}), 101, seed=0)


def test_labels_to_reach_interpolates_in_log_labels():
    curve = {25: 0.30, 100: 0.50, 200: 0.60}
    needed, at_most = labels_to_reach(curve, 0.40)
    assert needed == pytest.approx(50.0) and not at_most  # halfway between log 25 and log 100
    assert labels_to_reach(curve, 0.25) == (25.0, True)
    assert labels_to_reach(curve, 0.61) == (None, False)
    # The first crossing counts when the curve is not monotone.
    assert labels_to_reach({10: 0.2, 20: 0.5, 40: 0.3, 80: 0.6}, 0.45)[0] == pytest.approx(10 * 2 ** (5 / 6))


def test_labels_saved_against_target_only_full_budget_quality():
    target_only = {25: 0.20, 50: 0.30, 100: 0.40, 200: 0.42}
    transfer = {25: 0.35, 50: 0.42, 100: 0.45, 200: 0.47}
    saved = labels_saved(target_only, transfer, 200)
    assert saved["transfer_labels_needed"] == 50 and saved["labels_saved"] == 150
    assert saved["label_efficiency"] == 4.0 and not saved["labels_saved_is_lower_bound"]
    worse = labels_saved(target_only, {n: f - 0.1 for n, f in target_only.items()}, 200)
    assert worse["labels_saved"] is None and "no labels saved" in worse["note"]
    assert math.isclose(labels_saved(target_only, target_only, 200)["labels_saved"], 0.0, abs_tol=0.1)


def test_budget_sizes_at_or_above_the_labeled_set_are_left_to_label_budget_but_each_size_once():
    """The labeled set's size is known after clean: label_budget drops such sizes with a note (the pipeline
    test runs one); params only refuse a size listed twice."""
    params = default_params()
    params["data"]["target_train_labeled"] = 50
    params["label_budget"] = {"enabled": True, "sizes": [25, 50, 100], "seeds": [1]}
    assert parse_params(params).label_budget.sizes == [25, 50, 100]
    params["label_budget"]["sizes"] = [25, 25]
    with pytest.raises(ParamsError, match=r"label_budget.sizes: each size once"):
        parse_params(params)


def test_reading_a_dataset_output_never_writes_into_it(tmp_path):
    """Sorting or subsetting a loaded dataset must not add cache files to another stage's DVC output."""
    from transfer.core.artifacts import load_dataset_output

    folder = tmp_path / "tokenized"
    datasets.Dataset.from_dict({"length": [5, 1, 4, 2, 3], "id": list("abcde"),
                                "origin_id": list("abcde"), "label": [0, 1, 0, 1, 0]}).save_to_disk(str(folder))
    before = sorted(p.name for p in folder.iterdir())
    loaded = load_dataset_output(folder)
    assert loaded.sort("length")["length"] == [1, 2, 3, 4, 5]
    assert len(budget_subset(loaded, 2, seed=0)) == 2
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_budget_point_selects_on_validation_labels_in_its_proportion():
    validation = train_set({0: 50, 1: 30, 2: 18})  # 98, as the default scenario's
    cut = validation_for_budget(validation, 50, 200, seed=1)
    assert len(cut) == validation_labels(98, 50, 200) == 24 and set(cut["label"]) == {0, 1, 2}
    assert validation_for_budget(validation, 200, 200, seed=1) is validation
    assert validation_labels(98, 1, 200) == 2  # never fewer than two


def test_labels_saved_is_established_only_where_its_whole_interval_saves_labels():
    """Per-example correctness at each point, one scorer per seed: a transfer that beats the full-budget
    baseline with a quarter of the labels on every seed saves labels for sure; one whose small point
    straddles the baseline's full-budget quality is not established."""
    rng = np.random.default_rng(0)

    def scorer(correct: np.ndarray):
        return lambda positions: float(correct[positions].mean())

    def scorers(accuracies: list[float]):
        return [scorer(rng.random(400) < a) for a in accuracies]

    baseline = {50: scorers([0.50, 0.52, 0.48]), 200: scorers([0.60, 0.61, 0.59])}
    clear = {50: scorers([0.70, 0.71, 0.69]), 200: scorers([0.80, 0.80, 0.81])}
    unclear = {50: scorers([0.50, 0.62, 0.70]), 200: scorers([0.62, 0.60, 0.64])}
    sure = labels_saved_interval(baseline, clear, 200, 400, resamples=300, seed=1)
    assert sure["labels_saved_established"] and sure["labels_saved_ci95"] == [150.0, 150.0]
    unsure = labels_saved_interval(baseline, unclear, 200, 400, resamples=300, seed=1)
    assert not unsure["labels_saved_established"] and unsure["labels_saved_ci95"][0] == 0.0
