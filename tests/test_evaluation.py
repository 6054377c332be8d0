"""The headline over training seeds: mean ± std per arm, an interval that widens with seeds that disagree, no
significance claim from one seed, and a warning when an arm never left one class on validation."""

from __future__ import annotations

import numpy as np

from tests.conftest import shipped_params
from transfer.analysis.evaluation import headline_line, headline_report
from transfer.analysis.report import labels_saved_words
from transfer.tasks.classification import classification_metrics
from transfer.tasks.registry import get_task

LABELS = ["negative", "neutral", "positive"]


def seed_run(actual: np.ndarray, correct_share: float, rng: np.random.Generator) -> tuple[dict, list[dict]]:
    """One trained model's scores and per-example rows: right on about `correct_share` of the examples."""
    predicted = np.where(rng.random(len(actual)) < correct_share, actual, (actual + 1) % 3)
    rows = [{"id": f"{i:03d}", "actual": LABELS[a], "predicted": LABELS[p]}
            for i, (a, p) in enumerate(zip(actual, predicted, strict=True))]
    return classification_metrics(actual, predicted, LABELS), rows


def report_for(target_shares: list[float], baseline_shares: list[float], tuning: dict | None = None) -> dict:
    rng = np.random.default_rng(7)
    actual = rng.integers(0, 3, 300)
    results, rows = {}, {}
    for arm, shares in (("target", target_shares), ("baseline", baseline_shares)):
        runs = [seed_run(actual, share, rng) for share in shares]
        results[arm] = {42 + k: run[0] for k, run in enumerate(runs)}
        rows[arm] = {42 + k: run[1] for k, run in enumerate(runs)}
    return headline_report(get_task("classification"), shipped_params(), results, 300, rows, tuning or {})


def width(report: dict) -> float:
    low, high = report["gain_ci95_points"]
    return high - low


def test_one_seed_makes_no_significance_claim_anywhere_it_is_printed():
    one = report_for([0.9], [0.5])  # a gain of some 40 points: still no claim from one training seed
    assert one["significant"] is None and one["significance_note"] == "one seed: no significance claim"
    assert "one seed: no significance claim" in headline_line(get_task("classification"), one)
    assert "significant)" not in headline_line(get_task("classification"), one)


def test_seeds_that_disagree_widen_the_interval_and_allow_a_claim():
    one = report_for([0.80], [0.60])
    two = report_for([0.80, 0.65], [0.60, 0.70])
    assert two["significant"] is not None and "significance_note" not in two
    assert width(two) > width(one)
    assert two["target"]["macro_f1_std"] > 0 and set(two["target"]["seeds"]) == {"42", "43"}
    mean = np.mean([seed["macro_f1"] for seed in two["target"]["seeds"].values()])
    assert abs(two["target"]["macro_f1"] - mean) < 1e-12
    assert two["gain_macro_f1_points"] == round(100 * (two["target"]["macro_f1"] - two["baseline"]["macro_f1"]), 2)
    assert " ± " in headline_line(get_task("classification"), two)


def test_a_baseline_stuck_on_one_class_is_flagged():
    tuning = {"baseline": {42: {"predicts_one_class": "positive", "learning_rate": 1.5e-4},
                           43: {"predicts_one_class": None, "learning_rate": 1.5e-4}},
              "target": {42: {"predicts_one_class": None}, 43: {"predicts_one_class": None}}}
    report = report_for([0.8, 0.8], [0.4, 0.5], tuning)
    assert report["warnings"] == ["the baseline (seed 42) predicts 'positive' for every validation example: it did "
                                  "not learn; its gain is not a transfer gain"]
    assert report["baseline"]["learning_rate"] == 1.5e-4
    assert report_for([0.8, 0.8], [0.4, 0.5])["warnings"] == []


def test_labels_saved_words_state_the_interval_or_that_it_is_not_established():
    budget = {"strategy": "sequential", "labels_saved": 150.0, "labels_saved_is_lower_bound": False,
              "transfer_labels_needed": 148.0, "labels_saved_ci95": [0.0, 210.0], "labels_saved_established": False}
    assert "not established at these seeds" in labels_saved_words(budget, "macro-F1")
    assert "(95% CI 0 to 210)" in labels_saved_words(budget, "macro-F1")
    sure = budget | {"labels_saved_ci95": [90.0, 210.0], "labels_saved_established": True}
    assert labels_saved_words(sure, "macro-F1").endswith("(95% CI 90 to 210), established")


def test_an_arm_no_better_than_a_constant_predictor_is_flagged():
    """The trivial baseline goes into eval.json; an arm at or below it gets a warning, one above it none."""
    rng = np.random.default_rng(7)
    actual = rng.integers(0, 3, 300)
    results, rows = {}, {}
    for arm, share in (("target", 0.9), ("baseline", 0.2)):
        scores, example_rows = seed_run(actual, share, rng)
        results[arm], rows[arm] = {42: scores}, {42: example_rows}
    trivial = {"name": "majority class 'positive'", "macro_f1": 0.2, "accuracy": 0.4}
    report = headline_report(get_task("classification"), shipped_params(), results, 300, rows, {},
                             trivial=trivial)
    assert report["trivial_baseline"] == trivial
    assert report["warnings"] == [f"the baseline (macro-F1 {report['baseline']['macro_f1']:.4f}) does no better "
                                  f"than majority class 'positive' (0.2000)"]


def test_the_majority_class_and_always_abstain_are_scored_as_the_tasks_score_models():
    import datasets

    target = {"train": datasets.Dataset.from_dict({"label": [2, 2, 0, 2, 1], "id": ["a", "b", "c", "d", "d2"],
                                                   "origin_id": ["a", "b", "c", "d", "d"]}),
              "test": datasets.Dataset.from_dict({"label": [2, 0, 1, 2]})}
    trivial = get_task("classification").trivial_baseline(target, shipped_params())
    assert trivial["name"] == "majority class 'positive'" and trivial["accuracy"] == 0.5
    assert abs(trivial["macro_f1"] - (2 * 2 / 6) / 3) < 1e-12  # F1 of 'positive' 2/3, the others 0
    answerable = {"id": "1", "question": "q", "context": "c d", "answers": {"text": ["d"], "answer_start": [2]}}
    unanswerable = {"id": "2", "question": "q", "context": "c", "answers": {"text": [], "answer_start": []}}
    qa = get_task("qa").trivial_baseline({"test_examples": [answerable, unanswerable, {**unanswerable, "id": "3"}]},
                                         shipped_params())
    assert qa["name"] == "always abstain" and abs(qa["f1"] - 200 / 3) < 1e-9 and abs(qa["exact_match"] - 200 / 3) < 1e-9
