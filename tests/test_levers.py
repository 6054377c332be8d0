"""The levers of finetune: label-shift EM, class-balanced pseudo-labels, weight-space ensembling, and the
three of them through train_strategy on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import synthetic_rows, tiny_params
from transfer.training.label_shift import class_priors, em_priors, fit_temperature, reweight, tempered
from transfer.training.self_training import select_pseudo_labels
from transfer.training.weight_ensembling import interpolate, select_mix, snapshot

LABELS = ["negative", "neutral", "positive"]


def yaml_params() -> dict:
    import yaml

    from tests.conftest import ROOT

    return yaml.safe_load((ROOT / "params.yaml").read_text())


def calibrated_posteriors(priors: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact posteriors of a 1-D Gaussian class-conditional model under `priors`, and the true classes."""
    rng = np.random.default_rng(seed)
    means = np.arange(len(priors), dtype=float)
    classes = rng.choice(len(priors), size=n, p=priors)
    x = rng.normal(means[classes], 1.0)
    likelihood = np.exp(-0.5 * (x[:, None] - means[None, :]) ** 2)
    joint = likelihood * priors
    return joint / joint.sum(axis=1, keepdims=True), classes


def test_em_recovers_the_target_priors_from_posteriors_trained_under_others():
    train_priors = np.array([1 / 3, 1 / 3, 1 / 3])
    target_priors = np.array([0.6, 0.1, 0.3])
    # Posteriors the classifier gives on target data: computed under its training priors.
    _, classes = calibrated_posteriors(target_priors, 20000, seed=0)
    rng = np.random.default_rng(1)
    x = rng.normal(classes.astype(float), 1.0)
    likelihood = np.exp(-0.5 * (x[:, None] - np.arange(3)[None, :]) ** 2)
    posteriors = likelihood * train_priors / (likelihood * train_priors).sum(axis=1, keepdims=True)
    naive = posteriors.mean(axis=0)
    estimated = em_priors(posteriors, train_priors)
    assert np.abs(estimated - target_priors).max() < 0.03            # EM finds them
    assert np.abs(naive - target_priors).max() > 0.1                 # averaging posteriors does not
    corrected = reweight(posteriors, train_priors, estimated).argmax(axis=1)
    assert np.mean(corrected == classes) > np.mean(posteriors.argmax(axis=1) == classes)
    with pytest.raises(ValueError, match="do not match 2 priors"):
        em_priors(posteriors, np.array([0.5, 0.5]))


def test_temperature_scaling_undoes_over_confidence():
    honest, classes = calibrated_posteriors(np.array([0.5, 0.5]), 4000, seed=2)
    over_confident = tempered(honest, 1 / 3)  # logits x 3
    assert fit_temperature(over_confident, classes) == pytest.approx(3.0, rel=0.1)
    assert np.allclose(tempered(over_confident, 3.0), honest, atol=1e-6)


def test_class_priors_never_give_a_class_zero():
    assert class_priors(np.array([0, 0, 2]), 3).tolist() == pytest.approx([0.5, 1 / 6, 1 / 3])


def test_pseudo_labels_have_a_quota_per_class_in_the_labeled_proportions():
    probabilities = np.array([[0.95, 0.05], [0.97, 0.03], [0.99, 0.01], [0.92, 0.08],
                              [0.30, 0.70], [0.45, 0.55], [0.20, 0.80], [0.60, 0.40]])
    # 8 rows, share 0.5, priors 1:1 -> at most 2 per class; positives are less confident but still taken.
    rows, labels = select_pseudo_labels(probabilities, threshold=0.6, share=0.5, priors=np.array([0.5, 0.5]))
    assert rows.tolist() == [1, 2, 4, 6] and labels.tolist() == [0, 0, 1, 1]
    rows, _ = select_pseudo_labels(probabilities, threshold=0.75, share=0.5, priors=np.array([0.5, 0.5]))
    assert rows.tolist() == [1, 2, 6]  # nothing below the threshold, even to fill a quota


def test_weight_interpolation_and_mix_selection():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    start = snapshot(model)
    end = {name: tensor + 1.0 for name, tensor in start.items()}
    halfway = interpolate(start, end, 0.5)
    assert torch.allclose(halfway["weight"], start["weight"] + 0.5)
    target_bias = start["bias"] + 0.25  # the score peaks at mix 0.25
    mix, scores = select_mix(model, start, end, [0.0, 0.25, 0.5, 1.0],
                             lambda m: -float((m.bias - target_bias).abs().sum().detach()))
    assert mix == 0.25 and max(scores, key=scores.get) == 0.25
    assert torch.allclose(model.bias, target_bias)  # the chosen mix is what the model holds
    _, flat = select_mix(model, start, end, [0.0, 1.0], lambda m: 1.0)
    assert torch.allclose(model.weight, end["weight"])  # ties go to the larger mix (plain fine-tuning)


def test_levers_through_train_strategy_record_what_they_chose(tiny_model, tmp_path, monkeypatch):
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from transfer.core.params import parse_params
    from transfer.tasks.classification import class_probabilities, tokenize_rows
    from transfer.tasks.registry import get_task
    from transfer.training.checkpoints import ResumableRun
    from transfer.training.levers import output_layer
    from transfer.training.strategies import train_strategy

    raw = tiny_params(tiny_model, {})
    raw["finetune"].update(strategy="sequential", target_epochs=6, source_epochs=4, learning_rate=3e-3,
                           source_learning_rate=3e-3, select_best=False,
                           weight_ensembling={"mixes": [0.0, 0.5, 1.0]},
                           self_training={"rounds": 1, "threshold": 0.0, "share": 0.5, "epochs": 2}, label_shift="em")
    params = parse_params(raw)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    monkeypatch.chdir(tmp_path)

    def split(domain: str, n: int, seed: int, labeled: bool = True) -> datasets.Dataset:
        rows = synthetic_rows(domain, n, seed)
        return tokenize_rows(rows if labeled else [{**r, "label": None} for r in rows], tokenizer, LABELS, 32)

    source = datasets.DatasetDict({"train": split("source", 60, 1)})
    target = datasets.DatasetDict({"train": split("target", 30, 2), "validation": split("target", 12, 3),
                                   "unlabeled": split("target", 40, 4, labeled=False)})
    train_strategy(params, get_task("classification"), "sequential", str(tiny_model), source, target,
                   tmp_path / "model", tmp_path / "curves.csv", ResumableRun("m", {}, root=tmp_path / "ckpt"))

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model").eval()
    chosen = model.config.transfer_levers
    assert chosen["weight_ensembling"]["mix"] in (0.0, 0.5, 1.0)
    assert set(chosen["weight_ensembling"]["validation_scores"]) == {"0.0", "0.5", "1.0"}
    (round_,) = chosen["self_training"]
    assert round_["of_unlabeled"] == 40 and 0 < round_["pseudo_labels"] <= 20 + 3  # share 0.5, ceil per class
    assert sum(round_["per_class"]) == round_["pseudo_labels"]
    priors = chosen["label_shift"]
    assert sum(priors["estimated_target_priors"]) == pytest.approx(1.0, abs=1e-3)
    assert min(priors["estimated_target_priors"]) >= 1 / 43  # smoothed: no class is ruled out
    assert "self_training_1" in (tmp_path / "curves.csv").read_text()
    # The saved bias carries log(target / train priors): removing it gives back the uncorrected model.
    shift = np.log(np.array(priors["estimated_target_priors"]) / np.array(priors["train_priors"]))
    corrected = class_probabilities(model, target["unlabeled"], tokenizer, 16)
    with torch.no_grad():
        output_layer(model).bias -= torch.tensor(shift, dtype=torch.float32)
    calibrated = class_probabilities(model, target["unlabeled"], tokenizer, 16)
    assert np.allclose(reweight(calibrated, np.array(priors["train_priors"]),
                                np.array(priors["estimated_target_priors"])), corrected, atol=1e-4)
    assert 0.25 <= priors["temperature"] <= 20


def test_the_defaults_use_logit_adjustment_alone(tiny_model):
    from transfer.core.params import parse_params
    from transfer.tasks.registry import task_for
    from transfer.training.levers import levers_enabled

    raw = tiny_params(tiny_model, {})
    assert levers_enabled(parse_params(raw)) and raw["finetune"]["logit_adjustment"] != [0.0]
    raw["finetune"]["logit_adjustment"] = [0.0]
    assert not levers_enabled(parse_params(raw))
    raw["finetune"]["label_shift"] = "em"
    assert levers_enabled(parse_params(raw))
    raw["task"], raw["data"]["labels"] = "qa", []
    with pytest.raises(Exception, match="label_shift work on class probabilities"):
        task_for(parse_params(raw))


def test_logit_adjustment_picks_the_strength_that_lifts_validation_macro_f1_and_folds_it_into_the_bias():
    import datasets

    from transfer.core.params import parse_params
    from transfer.tasks.classification import macro_f1
    from transfer.training.levers import adjust_logits

    priors = np.array([0.45, 0.1, 0.45])
    posteriors, classes = calibrated_posteriors(priors, 600, seed=3)  # Bayes-optimal: the rare class is rarely said

    class Task:  # the validation posteriors above, whatever the model
        def probabilities(self, model, dataset, tokenizer, params):
            return posteriors

        def label_score(self, labels, predicted, params):
            return macro_f1(labels, predicted, 3)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = type("Config", (), {"num_labels": 3})()
            self.head = torch.nn.Linear(4, 3)

    def target(train_labels):
        return datasets.DatasetDict({"train": datasets.Dataset.from_dict({"label": train_labels}),
                                     "validation": datasets.Dataset.from_dict({"label": classes.tolist()})})

    raw = yaml_params()
    raw["finetune"]["logit_adjustment"] = [0.0, 0.5, 1.0]
    params = parse_params(raw)
    model = Model()
    before = model.head.bias.detach().clone()
    skewed = [0] * 45 + [1] * 10 + [2] * 45
    report = adjust_logits(model, None, task=Task(), params=params, target=target(skewed))["logit_adjustment"]
    scores = {float(k): v for k, v in report["validation_scores"].items()}
    assert set(scores) == {0.0, 0.5, 1.0} and report["strength"] > 0
    assert scores[report["strength"]] == max(scores.values()) > scores[0.0]
    train_priors = np.array(report["train_priors"])
    assert np.allclose(train_priors, class_priors(np.array(skewed), 3))
    assert np.allclose(model.head.bias.detach() - before, -report["strength"] * np.log(train_priors), atol=1e-6)
    balanced = adjust_logits(Model(), None, task=Task(), params=params, target=target([0, 1, 2] * 30))
    assert balanced["logit_adjustment"]["strength"] == 0.0  # equal priors: every strength ties, the weakest wins


def test_the_run_summary_names_the_levers_that_acted_and_leaves_out_the_skipped_ones():
    from transfer.analysis.report import lever_words

    evaluation = {"levers": {"label_shift": {"temperature": 1.2}, "logit_adjustment": {"skipped": "em"}}}
    assert lever_words(evaluation) == "; levers: label shift"
    evaluation = {"levers": {"setfit": {"target_examples": 30}, "logit_adjustment": {"strength": 0.5}}}
    assert lever_words(evaluation) == ("; levers: SetFit pairs of 0 source and 30 target examples, logit "
                                       "adjustment tau=0.5 chosen on validation")
    assert lever_words({}) == ""
