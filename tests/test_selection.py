"""finetune.strategy: auto (k-fold selection with the baseline as floor) and finetune.keep_source (L2-SP,
source replay): the folds, the choice, the guard, and both through training on the tiny model."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

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
    with pytest.raises(Exception, match="no class has that many .* lower finetune.auto.folds"):
        label_folds(labeled_set(6), folds=3, seed=7)  # two examples of each class


def test_choice_takes_the_best_pooled_score_and_the_guard_ships_the_baseline_when_no_candidate_beats_it():
    def result(pooled, folds):
        return {"pooled": pooled, "folds": folds}

    picked = choose({BASELINE: result(0.51, [0.50, 0.52]), "target_only": result(0.56, [0.55, 0.57]),
                     "sequential": result(0.58, [0.66, 0.50])})
    assert picked["chosen"] == "sequential" and not picked["guard_applied"]  # pooled, not the fold mean (0.58)
    assert picked["scores"]["sequential"] == {"pooled": 0.58, "folds": [0.66, 0.5],
                                              "fold_std": pytest.approx(0.1131, abs=1e-4)}
    guarded = choose({BASELINE: result(0.61, [0.6]), "target_only": result(0.56, [0.56]),
                      "sequential": result(0.59, [0.59])})
    assert guarded["chosen"] == BASELINE and guarded["best_candidate"] == "sequential" and guarded["guard_applied"]
    tie = choose({BASELINE: result(0.5, [0.5]), "sequential": result(0.5, [0.5])})
    assert tie["chosen"] == "sequential"  # not below the baseline: the transfer ships


def test_cross_validation_scores_each_fold_and_all_held_out_predictions_pooled():
    from transfer.tasks.classification import macro_f1

    train = labeled_set(12)
    splits = label_folds(train, folds=2, seed=0)
    calls = []

    def predict(name, recipe, fold, training, heldout):
        calls.append((name, fold, len(training), len(heldout)))
        truth = np.asarray(heldout["label"])
        if name == BASELINE:  # always class 0
            return np.zeros_like(truth)
        return truth if fold == 1 else (truth + 1) % 3  # right on fold 1, wrong on fold 2

    recipes = {BASELINE: Recipe("target_only", "base", False), "sequential": Recipe("sequential", "domain", True)}
    results = cross_validate(recipes, splits, train, predict, lambda a, p: macro_f1(a, p, 3))
    assert results["sequential"]["folds"] == [1.0, 0.0]
    assert results["sequential"]["pooled"] == pytest.approx(0.5)  # half of the 12 right, every class alike
    assert results[BASELINE]["folds"] == [pytest.approx(1 / 6)] * 2 and results[BASELINE]["pooled"] == \
        pytest.approx(1 / 6)
    assert calls == [(BASELINE, 1, 6, 6), (BASELINE, 2, 6, 6), ("sequential", 1, 6, 6), ("sequential", 2, 6, 6)]


def tiny_setting(tiny_model, **finetune):
    from transformers import AutoTokenizer

    from transfer.core.params import parse_params
    from transfer.tasks.classification import tokenize_rows

    raw = tiny_params(tiny_model, {})
    raw["finetune"].update({"target_epochs": 3, "source_epochs": 2, "learning_rate": 3e-3,
                            "source_learning_rate": 3e-3, "select_best": False, **finetune})
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
    from transfer.core.params import candidate_name, candidate_params
    from transfer.tasks.registry import get_task
    from transfer.training.checkpoints import ResumableRun
    from transfer.training.selection import select_recipe

    gentle = {"name": "gentle", "strategy": "sequential", "finetune": {"learning_rate": 1e-3, "target_epochs": 2}}
    params, source, target = tiny_setting(tiny_model, strategy="auto",
                                          auto={"candidates": ["target_only", "sequential", gentle], "folds": 2})
    run = ResumableRun("auto", {}, root=tmp_path / "ckpt")
    recipes = {BASELINE: Recipe("target_only", str(tiny_model), False)}
    for candidate in params.finetune.auto.candidates:
        own = candidate_params(params, candidate)
        recipes[candidate_name(candidate)] = Recipe(own.finetune.strategy, str(tiny_model), True, own)
    assert recipes["gentle"].params.finetune.learning_rate == 1e-3 and recipes["gentle"].strategy == "sequential"
    selection = select_recipe(params, get_task("classification"), recipes, source, target, run)
    assert selection["folds"] == 2 and selection["score"] == "macro_f1"
    assert set(selection["scores"]) == {BASELINE, "target_only", "sequential", "gentle"}
    assert all(len(s["folds"]) == 2 and 0 <= s["pooled"] <= 1 for s in selection["scores"].values())
    assert selection["chosen"] in recipes
    pooled = {name: s["pooled"] for name, s in selection["scores"].items()}
    assert pooled[selection["chosen"]] >= pooled[BASELINE]  # never below the baseline recipe
    phases = sorted(p.name for p in (tmp_path / "ckpt" / "auto").iterdir() if p.is_dir())
    assert phases.count("source") == 1 and "auto_sequential_fold2_target" in phases  # gentle shares it too
    assert "auto_gentle_fold2_target" in phases and not any(p.endswith("_source") for p in phases)
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
    raw["finetune"]["auto"]["candidates"] = ["sequential", {"name": "j", "strategy": "dann", "finetune": {}}]
    with pytest.raises(Exception, match="not to finetune.strategy dann"):
        parse_params(raw)
    raw["augment"]["rebalance"] = "none"
    raw["finetune"]["auto"]["candidates"] = [{"name": "m", "strategy": "sequential",
                                              "finetune": {"peft": "lora", "mixed_mlm": {"weight": 1.0}}}]
    with pytest.raises(Exception, match="candidates m: mixed_mlm shares the encoder"):
        parse_params(raw)


@pytest.fixture(scope="module")
def tiny_mlm(tiny_model, tmp_path_factory):
    """The tiny encoder with an MLM head, as pretrain_domain saves it (models/domain)."""
    from transformers import AutoTokenizer, BertForMaskedLM

    folder = tmp_path_factory.mktemp("tiny-mlm")
    torch.manual_seed(0)
    mlm = BertForMaskedLM.from_pretrained(tiny_model)
    mlm.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(folder)
    return folder


def test_mixed_objective_adds_the_weighted_mlm_loss_of_unlabeled_text_through_the_shared_encoder(tiny_mlm):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from transfer.training.mixed_objective import MixedBatchCollator, with_mlm_head

    params, _, target = tiny_setting(tiny_mlm, mixed_mlm={"weight": 2.0})
    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm)
    classifier = AutoModelForSequenceClassification.from_pretrained(tiny_mlm, num_labels=3)
    model = with_mlm_head(classifier, str(tiny_mlm), params)
    assert model.mlm.mlm.bert is classifier.bert  # one encoder
    assert model.mlm.mlm.cls.predictions.decoder.weight is classifier.bert.embeddings.word_embeddings.weight
    torch.manual_seed(3)
    batch = MixedBatchCollator(tokenizer, target["unlabeled"], 0.3)([target["train"][i] for i in range(8)])
    assert batch["mlm_input_ids"].shape[0] == 8 and (batch["mlm_targets"] != -100).any()
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    with torch.no_grad():
        mixed = model(**batch)["loss"]
        plain = torch.nn.functional.cross_entropy(classifier(input_ids=batch["input_ids"],
                                                             attention_mask=batch["attention_mask"]).logits,
                                                  batch["labels"])
        mlm = model.mlm(input_ids=batch["mlm_input_ids"], attention_mask=batch["mlm_attention_mask"],
                        labels=batch["mlm_targets"])["loss"]
        assert float(mixed) == pytest.approx(float(plain + 2.0 * mlm), rel=1e-5)
        assert float(model.eval()(**batch)["loss"]) == pytest.approx(float(plain), rel=1e-5)  # evaluation: CE only


def test_mixed_objective_trains_checkpoints_and_refuses_a_model_without_an_mlm_head(tiny_model, tiny_mlm, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from transfer.core.errors import ModelError
    from transfer.tasks.registry import get_task
    from transfer.training.checkpoints import ResumableRun
    from transfer.training.mixed_objective import with_mlm_head
    from transfer.training.strategies import fit_strategy

    params, source, target = tiny_setting(tiny_mlm, strategy="target_only", mixed_mlm={"weight": 1.0},
                                          select_best=True)
    run = ResumableRun("mixed", {}, root=tmp_path / "ckpt")
    model, _, phases = fit_strategy(params, get_task("classification"), "target_only", str(tiny_mlm), source,
                                    target, run)
    assert model.config.transfer_levers["mixed_mlm"] == {"weight": 1.0}
    assert isinstance(model, torch.nn.Module) and not hasattr(model, "mlm")  # the classifier, not the wrapper
    losses = [entry["loss"] for entry in phases["target"].state.log_history if "loss" in entry]
    assert losses and losses[-1] < losses[0]
    model.save_pretrained(tmp_path / "out")
    AutoModelForSequenceClassification.from_pretrained(tmp_path / "out")
    with pytest.raises(ModelError, match="no trained MLM head"):
        with_mlm_head(AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=3), str(tiny_model),
                      params)


def test_candidates_with_their_own_finetune_settings(tiny_model):
    from transfer.core.params import candidate_params, parse_params
    from transfer.training.selection import source_phase_name

    raw = tiny_params(tiny_model, {})
    pulled = {"name": "l2sp-0.1", "strategy": "sequential", "finetune": {"keep_source": {"l2sp": 0.1}}}
    slow_source = {"name": "slow-source", "strategy": "sequential", "finetune": {"source_learning_rate": 1e-5}}
    raw["finetune"].update(strategy="auto", auto={"candidates": ["sequential", pulled, slow_source], "folds": 3})
    params = parse_params(raw)
    own = candidate_params(params, params.finetune.auto.candidates[1])
    assert own.finetune.keep_source.l2sp == 0.1 and own.finetune.keep_source.replay == 0.0  # merged, not replaced
    assert own.finetune.strategy == "sequential" and params.finetune.keep_source.l2sp == 0.0
    assert source_phase_name("l2sp-0.1", own, params) == "source"  # same source phase: shared
    slow = candidate_params(params, params.finetune.auto.candidates[2])
    assert source_phase_name("slow-source", slow, params) == "auto_slow-source_source"  # its own
    for bad, message in (({"learning_rate": -1}, "candidates bad: learning_rate"),
                         ({"learning_rat": 1e-4}, "learning_rat: unknown key"),
                         ({"strategy": "joint"}, "set `strategy:` beside `finetune:`")):
        raw["finetune"]["auto"]["candidates"] = [{"name": "bad", "strategy": "sequential", "finetune": bad}]
        with pytest.raises(Exception, match=message):
            parse_params(raw)
    raw["finetune"]["auto"]["candidates"] = ["sequential", {**pulled, "name": "sequential"}]
    with pytest.raises(Exception, match="each candidate once"):
        parse_params(raw)
