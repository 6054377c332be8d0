"""The LLM suite's bookkeeping (bench/llm_suite.py): its SmolLM2 arms must run the documented recipe's settings,
and every arm must be scored on the same test rows, or its paired interval compares different examples."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import datasets
import numpy as np
import pytest

from transfer.core.params import load_params

BENCH = Path(__file__).resolve().parents[1] / "bench" / "llm_suite.py"


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("llm_suite_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_llm_arms_run_the_documented_recipe_with_the_suites_source_budget(suite):
    params = suite.with_settings(load_params(), [*suite.RECIPE_BENCH.RECIPE, *suite.SUITE_SETTINGS])
    assert params.model.name == "embedded:SmolLM2-135M-Instruct" and params.finetune.peft == "lora"
    assert params.finetune.learning_rates == [2.0e-3] and params.tokenize.max_length == 128
    assert params.data.source_train_max == 300 and params.distill.enabled is True
    with pytest.raises(KeyError):
        suite.with_settings(load_params(), ["finetune.no_such_section.key=1"])


def test_every_arm_is_scored_on_one_seeded_subset_of_the_test_split(suite):
    test = datasets.Dataset.from_dict({"id": [f"t{i}" for i in range(50)], "label": [i % 2 for i in range(50)]})
    subset = suite.test_subset(test, 20, seed=42)
    assert len(subset) == 20 and subset["id"] == suite.test_subset(test, 20, seed=42)["id"]
    assert subset["id"] != suite.test_subset(test, 20, seed=43)["id"]
    assert [int(i[1:]) for i in subset["id"]] == sorted(int(i[1:]) for i in subset["id"])  # the split's order
    assert suite.test_subset(test, 80, seed=42)["id"] == test["id"]
    shuffled = test.shuffle(seed=0)
    assert suite.by_ids(shuffled, subset["id"])["id"] == subset["id"]


def test_a_resumed_run_scores_the_arms_an_earlier_process_finished_as_if_it_had_not_stopped(suite):
    """The arms file holds each finished arm's predictions: without them a resumed run could not give the
    paired interval of an arm over a baseline that ran in the earlier process."""
    test = datasets.Dataset.from_dict({"id": [f"t{i}" for i in range(40)], "label": [i % 2 for i in range(40)]})
    rng = np.random.default_rng(0)
    arms = {method: rng.random((40, 2)) for method in ("target_only", "zero_shot", "few_shot")}
    uninterrupted = suite.SUITE.Scorer(test, ["a", "b"], "accuracy")
    for method, probabilities in arms.items():
        uninterrupted.add(method, probabilities, 1.0)
    record = {"arms": {method: {"result": dict(uninterrupted.results[method]),
                                "predicted": uninterrupted.predicted[method].tolist()}
                       for method in ("target_only", "zero_shot")}}
    resumed = suite.SUITE.Scorer(test, ["a", "b"], "accuracy")
    suite.restored(resumed, json.loads(json.dumps(record)))
    resumed.add("few_shot", arms["few_shot"], 1.0)
    uninterrupted.gains(42)
    resumed.gains(42)
    assert resumed.results == uninterrupted.results
    assert resumed.results["zero_shot"]["gain_ci95_points"] == uninterrupted.results["zero_shot"]["gain_ci95_points"]


def test_an_arm_added_to_a_run_finished_without_saved_predictions_is_paired_with_target_only_run_again(suite):
    """A pair and seed finished before its arms were saved with predictions keeps its arms' results and
    gains; a new arm's interval pairs it with target_only run again (the same seed: the same predictions)."""
    test = datasets.Dataset.from_dict({"id": [f"t{i}" for i in range(40)], "label": [i % 2 for i in range(40)]})
    rng = np.random.default_rng(1)
    arms = {method: rng.random((40, 2)) for method in ("target_only", "zero_shot", "minilm_student")}
    first = suite.SUITE.Scorer(test, ["a", "b"], "accuracy")
    first.add("target_only", arms["target_only"], 1.0)
    first.add("zero_shot", arms["zero_shot"], 1.0)
    first.gains(42)
    finished = json.loads(json.dumps({"pair": "p", "seed": 42, "methods": first.results, "timing_note": "alone"}))
    record = suite.record_of_finished(finished)
    assert record["test_ids"] is None and record["extra"] == {"timing_note": "alone"}
    assert all(arm["predicted"] is None for arm in record["arms"].values())

    reopened = suite.SUITE.Scorer(test, ["a", "b"], "accuracy")
    suite.restored(reopened, record)
    assert not reopened.predicted  # nothing to pair with until target_only runs again
    reopened.add("target_only", arms["target_only"], 2.0)
    reopened.add("minilm_student", arms["minilm_student"], 1.0)
    reopened.gains(42)
    assert reopened.results["zero_shot"] == first.results["zero_shot"]
    everything = suite.SUITE.Scorer(test, ["a", "b"], "accuracy")
    for method, probabilities in arms.items():
        everything.add(method, probabilities, 1.0)
    everything.gains(42)
    assert reopened.results["minilm_student"]["gain_ci95_points"] == everything.results["minilm_student"][
        "gain_ci95_points"]


def test_head_to_head_pairs_the_llm_paths_with_the_defaults_on_the_same_rows(suite):
    test = datasets.Dataset.from_dict({"id": [f"t{i}" for i in range(60)], "label": [i % 2 for i in range(60)]})
    actual = np.asarray(test["label"])
    right, wrong = np.eye(2)[actual], np.eye(2)[1 - actual]
    scorer = suite.SUITE.Scorer(test, ["a", "b"], "accuracy")
    for method, probabilities in (("target_only", wrong), ("minilm_sequential", wrong), ("lora_sequential", right),
                                  ("student", right), ("minilm_student", right)):
        scorer.add(method, probabilities, 1.0)
    compared = suite.head_to_head(scorer, "accuracy", seed=42)
    assert compared["lora_sequential - minilm_sequential"] == {"difference_points": 100.0,
                                                                "ci95_points": [100.0, 100.0], "significant": True}
    assert compared["student - minilm_student"]["difference_points"] == 0.0
    assert compared["student - minilm_student"]["significant"] is False
    del scorer.predicted["student"]  # restored without predictions: nothing to pair
    assert list(suite.head_to_head(scorer, "accuracy", seed=42)) == ["lora_sequential - minilm_sequential"]


def test_pooled_head_to_heads_draw_seeds_and_rows_and_check_the_saved_scores(suite):
    """Pooled over a pair's seeds and over the pairs: a path right wherever the default is wrong is +100 with no
    spread; identical predictions are 0 and not significant; a run without predictions is left out; a saved
    score its predictions do not give stops the table (the labels were read wrong)."""
    actual = {seed: np.asarray([(i + seed) % 2 for i in range(40)]) for seed in (42, 43)}
    runs, arms = [], {}
    for pair, seeds in (("tweets-to-airline", (42, 43)), ("imdb-to-drugs", (42,))):
        for seed in seeds:
            right, wrong = actual[seed], 1 - actual[seed]
            predicted = {"lora_sequential": right, "minilm_sequential": wrong, "student": right,
                         "minilm_student": right}
            runs.append({"pair": pair, "seed": seed, "primary": "accuracy",
                         "methods": {m: {"accuracy": float(np.mean(p == actual[seed]))} for m, p in predicted.items()}})
            arms[f"{pair}/{seed}"] = {"test_ids": [f"{seed}-{i}" for i in range(40)],
                                      "arms": {m: {"predicted": p.tolist()} for m, p in predicted.items()}}
    runs.append({"pair": "tweets-to-drugs", "seed": 42, "primary": "macro_f1", "methods": {}})
    arms["tweets-to-drugs/42"] = {"test_ids": [], "arms": {"lora_sequential": {"predicted": None}}}

    def labels_of(pair, seed, test_ids):
        assert test_ids == tuple(f"{seed}-{i}" for i in range(40))
        return actual[seed]
    pooled = {(p["comparison"], p["scope"]): p
              for p in suite.pooled_differences(runs, arms, resamples=200, labels_of=labels_of)}
    everywhere = pooled[("lora_sequential - minilm_sequential", "all pairs")]
    assert everywhere["seeds"] == {"tweets-to-airline": 2, "imdb-to-drugs": 1}
    assert (everywhere["difference_points"], everywhere["ci95_points"], everywhere["significant"]) == (
        100.0, [100.0, 100.0], True)
    tie = pooled[("student - minilm_student", "tweets-to-airline")]
    assert (tie["difference_points"], tie["significant"]) == (0.0, False)
    assert "| lora_sequential - minilm_sequential | all pairs | 2, 1 | +100.0 [+100.0, +100.0]* |" in \
        suite.pooled_rows(list(pooled.values()))
    runs[0]["methods"]["student"]["accuracy"] = 0.5
    with pytest.raises(RuntimeError, match="tweets-to-airline 42 student: the saved predictions score 1.0000"):
        suite.pooled_differences(runs, arms, resamples=10, labels_of=labels_of)


def test_a_wall_time_taken_beside_other_work_is_marked_with_what_it_ran_beside(suite):
    runs = [{"pair": "p", "seed": 42, "methods": {"target_only": {"seconds": 10.0, "timing": suite.ALONE},
                                                  "zero_shot": {"seconds": 20.0, "timing": "beside a test run"}}},
            {"pair": "p", "seed": 43, "timing_note": "beside a QA bench",  # saved before arms had their own note
             "methods": {"target_only": {"seconds": 30.0}, "zero_shot": {"seconds": 40.0, "timing": suite.ALONE}}}]
    table = suite.cost_rows(runs)
    assert "| target_only | 10 | 30 (a) |" in table and "| zero_shot | 20 (b) | 40 |" in table
    assert "- (a) beside a QA bench: an upper bound" in table and "- (b) beside a test run: an upper bound" in table


def test_the_decoders_page_shows_the_suites_tables_as_the_bench_wrote_them(suite):
    """docs/decoders.md's suite table is written by bench/llm_suite.py, never by hand: it must be what
    bench/llm_suite.md (the bench's own output) holds."""
    page = suite.DOCS.read_text()
    start, end = suite.DOCS_MARKERS
    shown = page.split(start, 1)[1].split(end, 1)[0].strip()
    made_by, tables = shown.split("\n", 1)
    bench_md = (BENCH.parent / "llm_suite.md").read_text()
    assert made_by.startswith("Made by `") and made_by.split("`")[1] in bench_md.split("\n", 1)[0]
    assert tables.strip() and tables.strip() in bench_md
