"""finetune.strategy: auto (k-fold selection with the baseline as floor) and finetune.keep_source (L2-SP,
source replay): the folds, the choice, the guard, and both through training on the tiny model."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from tests.conftest import synthetic_rows, tiny_params
from transfer.training.selection import BASELINE, Recipe, choose, cross_validate, label_folds

LABELS = ["negative", "neutral", "positive"]


def labeled_set(n: int, augmented_every: int = 0) -> datasets.Dataset:
    """`n` original rows with classes 0, 1, 2 in turn, and an augmented copy of every k-th."""
    rows = [{"id": f"r{i}", "origin_id": f"r{i}", "label": i % 3} for i in range(n)]
    if augmented_every:
        rows += [{"id": f"r{i}-aug", "origin_id": f"r{i}", "label": i % 3} for i in range(0, n, augmented_every)]
    return datasets.Dataset.from_list(rows)


def test_folds_hold_each_original_out_once_stratified_and_keep_copies_with_their_original():
    train = labeled_set(30, augmented_every=2)
    splits = label_folds(train, folds=3, seed=7)
    assert len(splits) == 3
    held = [i for _, heldout in splits for i in heldout]
    assert sorted(train.select(held)["id"]) == sorted(f"r{i}" for i in range(30))  # once each, no copy held out
    for training, heldout in splits:
        assert set(np.bincount(np.asarray(train["label"])[heldout]).tolist()) <= {3, 4}  # 10 per class over 3
        held_origins = set(train.select(heldout)["origin_id"])
        assert not held_origins & set(train.select(training)["origin_id"])  # no copy of a held-out row trains
        assert len(training) == sum(o not in held_origins for o in train["origin_id"])  # everything else does
    assert label_folds(train, folds=3, seed=7) == splits  # seeded
    with pytest.raises(Exception, match="3 folds of 2 labeled"):
        label_folds(labeled_set(2), folds=3, seed=7)


def test_choice_takes_the_best_mean_and_the_guard_ships_the_baseline_when_no_candidate_beats_it():
    picked = choose({BASELINE: [0.50, 0.52], "target_only": [0.55, 0.57], "sequential": [0.60, 0.50]})
    assert picked["chosen"] == "target_only" and not picked["guard_applied"]
    assert picked["scores"]["sequential"] == {"mean": 0.55, "std": pytest.approx(0.0707, abs=1e-4),
                                              "folds": [0.6, 0.5]}
    guarded = choose({BASELINE: [0.60, 0.62], "target_only": [0.55, 0.57], "sequential": [0.58, 0.60]})
    assert guarded["chosen"] == BASELINE and guarded["best_candidate"] == "sequential" and guarded["guard_applied"]
    tie = choose({BASELINE: [0.5], "sequential": [0.5]})
    assert tie["chosen"] == "sequential"  # not below the baseline: the transfer ships


def test_cross_validation_trains_each_recipe_on_each_fold():
    train = labeled_set(12)
    splits = label_folds(train, folds=2, seed=0)
    calls = []

    def fit_and_score(name, recipe, fold, training, heldout):
        calls.append((name, fold, len(training), len(heldout)))
        return {"baseline": 0.25, "sequential": 0.5}[name] + fold / 4

    recipes = {BASELINE: Recipe("target_only", "base", False), "sequential": Recipe("sequential", "domain", True)}
    scores = cross_validate(recipes, splits, train, fit_and_score)
    assert scores == {BASELINE: [0.5, 0.75], "sequential": [0.75, 1.0]}
    assert calls == [(BASELINE, 1, 6, 6), (BASELINE, 2, 6, 6), ("sequential", 1, 6, 6), ("sequential", 2, 6, 6)]


def tiny_setting(tiny_model, **finetune):
    from transformers import AutoTokenizer

    from transfer.core.params import parse_params
    from transfer.tasks.classification import tokenize_rows

    raw = tiny_params(tiny_model, {})
    raw["finetune"].update(target_epochs=3, source_epochs=2, learning_rate=3e-3, source_learning_rate=3e-3,
                           select_best=False, **finetune)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)

    def split(domain: str, n: int, seed: int) -> datasets.Dataset:
        return tokenize_rows(synthetic_rows(domain, n, seed), tokenizer, LABELS, 32)

    source = datasets.DatasetDict({"train": split("source", 48, 1)})
    target = datasets.DatasetDict({"train": split("target", 24, 2), "validation": split("target", 9, 3),
                                   "unlabeled": split("target", 12, 4)})
    return parse_params(raw), source, target


def test_l2sp_keeps_the_target_phase_near_the_source_weights_and_replay_mixes_source_examples(tiny_model, tmp_path):
    from transfer.tasks.registry import get_task
    from transfer.training.checkpoints import ResumableRun
    from transfer.training.keep_source import distance_to_anchor, replay_sample
    from transfer.training.strategies import fit_strategy
    from transfer.training.weight_ensembling import snapshot

    distances, reports = {}, {}
    for l2sp in (0.0, 50.0):
        params, source, target = tiny_setting(tiny_model, strategy="sequential",
                                               keep_source={"l2sp": l2sp, "replay": 0.5})
        run = ResumableRun(f"m{l2sp}", {}, root=tmp_path / "ckpt")
        fit_strategy(params, get_task("classification"), "source_only", str(tiny_model), source, target, run)
        source_only = fit_strategy(params, get_task("classification"), "source_only", str(tiny_model), source,
                                   target, run)[0]  # restored from the finished phase
        assert "skipped" in source_only.config.transfer_levers["keep_source"]  # no target phase to act on
        after_source = snapshot(source_only)
        model, _, phases = fit_strategy(params, get_task("classification"), "sequential", str(tiny_model), source,
                                        target, run)
        distances[l2sp] = float(distance_to_anchor(model, after_source).detach())
        reports[l2sp] = model.config.transfer_levers["keep_source"]
        assert phases["target"].state.global_step > 0
    assert distances[50.0] < 0.5 * distances[0.0]  # the pull toward the source weights holds them close
    assert reports[50.0] == {"replayed_source_examples": 12, "l2sp": 50.0}
    assert reports[0.0] == {"replayed_source_examples": 12}
    replayed = replay_sample(source["train"], target["train"], 0.5, seed=1)
    assert len(replayed) == 12 and replayed.features == target["train"].features
    assert set(replayed["id"]) <= set(source["train"]["id"])
    assert len(replay_sample(source["train"], target["train"], 10.0, seed=1)) == 48  # never more than there is


def test_auto_cross_validates_each_recipe_trains_the_source_phase_once_and_records_the_choice(tiny_model,
                                                                                             tmp_path, capsys):
    from transfer.tasks.registry import get_task
    from transfer.training.checkpoints import ResumableRun
    from transfer.training.selection import select_recipe

    params, source, target = tiny_setting(tiny_model, strategy="auto",
                                          auto={"candidates": ["target_only", "sequential"], "folds": 2})
    run = ResumableRun("auto", {}, root=tmp_path / "ckpt")
    recipes = {BASELINE: Recipe("target_only", str(tiny_model), False),
               "target_only": Recipe("target_only", str(tiny_model), True),
               "sequential": Recipe("sequential", str(tiny_model), True)}
    selection = select_recipe(params, get_task("classification"), recipes, source, target, run)
    assert selection["folds"] == 2 and selection["score"] == "macro_f1"
    assert set(selection["scores"]) == {BASELINE, "target_only", "sequential"}
    assert all(len(s["folds"]) == 2 and 0 <= s["mean"] <= 1 for s in selection["scores"].values())
    assert selection["chosen"] in recipes
    means = {name: s["mean"] for name, s in selection["scores"].items()}
    assert means[selection["chosen"]] >= means[BASELINE]  # never below the baseline recipe
    phases = sorted(p.name for p in (tmp_path / "ckpt" / "auto").iterdir() if p.is_dir())
    assert phases.count("source") == 1 and "auto_sequential_fold2_target" in phases
    assert "phase `source` already finished" in capsys.readouterr().out  # the second fold reused it


def test_params_refuse_auto_for_tasks_without_classes_and_duplicate_candidates(tiny_model):
    from transfer.core.params import parse_params
    from transfer.tasks.registry import task_for

    raw = tiny_params(tiny_model, {})
    raw["finetune"]["auto"] = {"candidates": ["sequential", "sequential"], "folds": 3}
    with pytest.raises(Exception, match="each candidate once"):
        parse_params(raw)
    raw["finetune"].update(strategy="auto", auto={"candidates": ["sequential"], "folds": 3})
    raw["task"], raw["data"]["labels"] = "qa", []
    with pytest.raises(Exception, match="auto need a label head"):
        task_for(parse_params(raw))
    raw = tiny_params(tiny_model, {})
    raw["finetune"].update(strategy="auto", auto={"candidates": ["sequential", "joint"], "folds": 3})
    raw["augment"]["rebalance"] = "class_weights"
    with pytest.raises(Exception, match="not to finetune.strategy joint"):
        parse_params(raw)
