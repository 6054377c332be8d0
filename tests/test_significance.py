"""The headline gain's interval: a paired bootstrap that calls a real difference significant and a tie not,
and per-task resampled scores that reproduce the reported score on the full test set."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from tests.conftest import shipped_params
from transfer.analysis.significance import paired_bootstrap, row_groups, seeds_and_examples_bootstrap
from transfer.tasks.classification import macro_f1
from transfer.tasks.qa import squad_metrics, token_f1
from transfer.tasks.registry import get_task

LABELS = ["negative", "neutral", "positive"]


def accuracy_on(correct: np.ndarray):
    return lambda positions: float(correct[positions].mean())


def test_a_clear_gain_is_significant_and_a_tie_is_not():
    rng = np.random.default_rng(0)
    baseline = rng.random(400) < 0.5
    better = baseline | (rng.random(400) < 0.4)           # right wherever the baseline is, and on ~40% more
    clear = paired_bootstrap(accuracy_on(better), accuracy_on(baseline), 400, resamples=500, seed=1, points=100)
    assert clear["significant"] and clear["gain_ci95_points"][0] > 0 and clear["share_of_resamples_with_a_gain"] == 1
    shuffled = rng.permutation(baseline)                   # same accuracy, other examples: no real difference
    tie = paired_bootstrap(accuracy_on(shuffled), accuracy_on(baseline), 400, resamples=500, seed=1, points=100)
    low, high = tie["gain_ci95_points"]
    assert not tie["significant"] and low < 0 < high


def test_seeds_that_disagree_widen_the_interval_and_one_seed_is_the_paired_bootstrap():
    rng = np.random.default_rng(3)
    baseline = rng.random(400) < 0.5
    seeds = [baseline | (rng.random(400) < share) for share in (0.02, 0.2, 0.4)]  # +1 to +20 points
    one = seeds_and_examples_bootstrap([accuracy_on(seeds[1])], [accuracy_on(baseline)], 400, resamples=300,
                                       seed=1, points=100)
    assert one == paired_bootstrap(accuracy_on(seeds[1]), accuracy_on(baseline), 400, resamples=300, seed=1,
                                   points=100)
    mean_of_seeds = seeds_and_examples_bootstrap([accuracy_on(s) for s in seeds], [accuracy_on(baseline)], 400,
                                                 resamples=300, seed=1, points=100)
    fixed_mean = paired_bootstrap(lambda p: float(np.mean([s[p].mean() for s in seeds])), accuracy_on(baseline),
                                  400, resamples=300, seed=1, points=100)
    width = lambda r: r["gain_ci95_points"][1] - r["gain_ci95_points"][0]  # noqa: E731
    assert width(mean_of_seeds) > 1.5 * width(fixed_mean)  # the seed-to-seed spread is in the interval


def test_the_interval_depends_on_the_seed_only_through_the_resamples():
    correct = np.random.default_rng(3).random(200) < 0.6
    one = paired_bootstrap(accuracy_on(correct), accuracy_on(~correct), 200, resamples=200, seed=5, points=100)
    assert one == paired_bootstrap(accuracy_on(correct), accuracy_on(~correct), 200, resamples=200, seed=5,
                                   points=100)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counted_macro_f1_is_sklearns_with_every_declared_class(seed):
    rng = np.random.default_rng(seed)
    actual, predicted = rng.integers(0, 3, 60), rng.integers(0, 2, 60)  # class 2 never predicted
    expected = f1_score(actual, predicted, labels=[0, 1, 2], average="macro", zero_division=0)
    assert macro_f1(actual, predicted, 3) == pytest.approx(expected)


def test_each_tasks_resampled_score_on_every_example_is_its_reported_score():
    params = shipped_params()
    rows = [{"id": str(i), "actual": a, "predicted": p}
            for i, (a, p) in enumerate([("negative", "negative"), ("neutral", "positive"), ("positive", "positive"),
                                        ("neutral", "neutral"), ("negative", "positive")])]
    everything = np.arange(len(rows))
    ids = {label: i for i, label in enumerate(LABELS)}
    expected = f1_score([ids[r["actual"]] for r in rows], [ids[r["predicted"]] for r in rows], labels=[0, 1, 2],
                        average="macro", zero_division=0)
    assert get_task("classification").resampled_score(rows, params)(everything) == pytest.approx(expected)

    examples = [{"id": "a", "answers": {"text": ["the cat"], "answer_start": [0]}},
                {"id": "b", "answers": {"text": [], "answer_start": []}}]
    answers = {"a": "cat", "b": ""}
    qa_rows = [{"id": e["id"], "f1": 100 * max(token_f1(answers[e["id"]], g) for g in e["answers"]["text"] or [""])}
               for e in examples]
    assert get_task("qa").resampled_score(qa_rows, params)(np.arange(2)) == pytest.approx(
        squad_metrics(answers, examples)["f1"])

    from transfer.tasks.translation import translation_scores

    pairs = [{"reference": "the house is small", "translation": "the house is tiny"},
             {"reference": "good morning", "translation": "good morning"}]
    chrf = get_task("translation").resampled_score(pairs, params)(np.arange(2))
    assert chrf == pytest.approx(translation_scores([p["translation"] for p in pairs],
                                                    [p["reference"] for p in pairs])["chrf"], abs=1e-3)


def test_drawing_whole_groups_widens_an_interval_whose_gain_sits_in_a_few_groups():
    """Questions on one article stand or fall together: a gain made on 4 of 40 articles is less sure than 40
    independent questions would make it, and the group draw says so."""
    groups = [f"article{i // 10}" for i in range(400)]               # 40 articles of 10 questions
    baseline = np.zeros(400, dtype=bool)
    better = baseline.copy()
    better[:40] = True                                               # right on every question of 4 articles
    examples = paired_bootstrap(accuracy_on(better), accuracy_on(baseline), 400, resamples=1000, seed=1,
                                points=100)
    articles = paired_bootstrap(accuracy_on(better), accuracy_on(baseline), 400, resamples=1000, seed=1,
                                points=100, groups=groups)
    assert articles["resampled_groups"] == 40 and "resampled_groups" not in examples
    width = {name: high - low for name, (low, high) in (("examples", examples["gain_ci95_points"]),
                                                       ("articles", articles["gain_ci95_points"]))}
    assert width["articles"] > 2 * width["examples"]
    # one group per example is the example draw over again
    alone = paired_bootstrap(accuracy_on(better), accuracy_on(baseline), 400, resamples=1000, seed=1, points=100,
                             groups=[str(i) for i in range(400)])
    assert abs((alone["gain_ci95_points"][1] - alone["gain_ci95_points"][0]) - width["examples"]) < 2
    with pytest.raises(ValueError, match="3 groups for 400 examples"):
        paired_bootstrap(accuracy_on(better), accuracy_on(baseline), 400, resamples=10, seed=1, points=100,
                         groups=["a", "b", "c"])


def test_rows_name_their_group_only_when_every_row_has_one():
    assert row_groups([{"group": "a"}, {"group": "b"}]) == ["a", "b"]
    assert row_groups([{"group": "a"}, {"group": ""}]) is None and row_groups([{"id": 1}]) is None
