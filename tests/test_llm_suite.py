"""The LLM suite's bookkeeping (bench/llm_suite.py): its SmolLM2 arms must run the documented recipe's settings,
and every arm must be scored on the same test rows, or its paired interval compares different examples."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import datasets
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
    assert params.finetune.learning_rates == [5.0e-4] and params.tokenize.max_length == 128
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
