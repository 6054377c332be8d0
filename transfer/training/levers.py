"""What finetune does after a strategy's phases to make the transfer pay (finetune.weight_ensembling,
self_training, label_shift): each uses target data only (validation labels, unlabeled target text), and
each records what it chose in the model's config (`transfer_levers`), which evaluate reports.

Order: weight ensembling picks the mix of the weights before and after the target phase; self-training
then labels the unlabeled text with that model and trains students; label-shift correction or logit
adjustment comes last, on the model that ships, folded into the classifier's bias so every later stage
predicts with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import datasets
import numpy as np
import torch

from transfer.core.errors import ModelError
from transfer.core.params import Params
from transfer.training.label_shift import calibrated_target_priors, choose_strength, class_priors
from transfer.training.self_training import select_pseudo_labels, with_pseudo_labels
from transfer.training.weight_ensembling import select_mix, snapshot

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task

TrainPhase = Callable[..., object]  # train_phase with the model, tokenizer, task, params and run bound


def levers_enabled(params: Params) -> bool:
    config = params.finetune
    return (config.weight_ensembling.mixes != [1.0] or config.self_training.rounds > 0 or config.label_shift != "none"
            or config.logit_adjustment != [0.0]
            or config.keep_source.l2sp > 0 or config.keep_source.replay > 0 or config.mixed_mlm.weight > 0)


def ensemble_and_self_train(model, tokenizer, *, task: Task, params: Params, start: dict[str, torch.Tensor] | None,
                            target: datasets.DatasetDict, train: TrainPhase, phases: dict) -> dict:
    """Weight ensembling (needs `start`, the weights before the target phase) and self-training rounds,
    on `model` in place; returns what was chosen. Student phases are added to `phases` (the curves)."""
    config, report = params.finetune, {}
    if config.weight_ensembling.mixes != [1.0] and start is not None:
        mix, scores = select_mix(model, start, snapshot(model), config.weight_ensembling.mixes,
                                 lambda candidate: task.validation_score(candidate, target["validation"], tokenizer,
                                                                         params))
        report["weight_ensembling"] = {"mix": mix, "validation_scores": {str(k): round(v, 4)
                                                                          for k, v in scores.items()}}
    elif config.weight_ensembling.mixes != [1.0]:
        report["weight_ensembling"] = {"skipped": "this strategy has no target phase to interpolate across"}
    rounds = config.self_training.rounds
    if rounds and len(target["unlabeled"]) == 0:
        raise ModelError("finetune.self_training: there is no unlabeled target text (every valid target train row "
                         "is labeled); lower data.target_train_labeled or set self_training.rounds: 0")
    priors = class_priors(np.asarray(target["train"]["label"]), len(params.data.labels)) if rounds else None
    for round_ in range(1, rounds + 1):
        probabilities = task.probabilities(model, target["unlabeled"], tokenizer, params)
        rows, labels = select_pseudo_labels(probabilities, config.self_training.threshold,
                                            config.self_training.share, priors)
        if start is not None:
            model.load_state_dict(start)  # the student starts where the target phase started
        student_train = datasets.concatenate_datasets([target["train"],
                                                       with_pseudo_labels(target["unlabeled"], rows, labels)])
        phases[f"self_training_{round_}"] = train(model, train=student_train, evaluation=target["validation"],
                                                  epochs=config.self_training.epochs,
                                                  learning_rate=config.learning_rate, phase=f"self_training_{round_}")
        report.setdefault("self_training", []).append(
            {"round": round_, "pseudo_labels": len(rows), "of_unlabeled": len(target["unlabeled"]),
             "per_class": np.bincount(labels, minlength=len(params.data.labels)).tolist()})
    return report


def adjust_priors(model, tokenizer, *, task: Task, params: Params, target: datasets.DatasetDict,
                  label_shift: bool = True) -> dict:
    """The last lever, on the model that ships: label-shift correction (em) or logit adjustment, when on.
    Both set the output layer's class priors; em, asked for by name, wins over the default-on adjustment.
    label_shift=False (the baseline): logit adjustment only, which reads nothing but the labels and the
    validation split, so the labels-only yardstick gets it too (the same care as the transfer)."""
    adjusting = params.finetune.logit_adjustment != [0.0]
    if label_shift and params.finetune.label_shift == "em":
        report = correct_label_shift(model, tokenizer, task=task, params=params, target=target)
        if adjusting:
            report["logit_adjustment"] = {"skipped": "label_shift: em sets the class priors itself"}
        return report
    if adjusting and not task.label_head:  # on by default, so recorded rather than refused
        return {"logit_adjustment": {"skipped": f"task {task.name} has no class probabilities to adjust"}}
    if adjusting and not output_layers(model):
        return {"logit_adjustment": {"skipped": "the classifier's output layer has no bias to fold it into (a "
                                                "decoder's `score` layer is bias-free)"}}
    return adjust_logits(model, tokenizer, task=task, params=params, target=target) if adjusting else {}


def correct_label_shift(model, tokenizer, *, task: Task, params: Params, target: datasets.DatasetDict) -> dict:
    """Calibrate (a temperature fitted on target validation), estimate the target priors by EM on the
    unlabeled text, and fold both into the output layer: weights and bias / T, bias + log(pi_t / pi_s)."""
    if len(target["unlabeled"]) == 0:
        raise ModelError("finetune.label_shift: em estimates the target's class priors on unlabeled target text, "
                         "and there is none; lower data.target_train_labeled or set label_shift: none")
    train_priors = class_priors(np.asarray(target["train"]["label"]), len(params.data.labels))
    temperature, target_priors = calibrated_target_priors(
        task.probabilities(model, target["validation"], tokenizer, params), np.asarray(target["validation"]["label"]),
        task.probabilities(model, target["unlabeled"], tokenizer, params), train_priors)
    output = output_layer(model)
    with torch.no_grad():
        output.weight /= temperature
        output.bias /= temperature
        output.bias += torch.as_tensor(np.log(target_priors / train_priors), dtype=output.bias.dtype)
    return {"label_shift": {"temperature": round(temperature, 4), "train_priors": train_priors.round(6).tolist(),
                            "estimated_target_priors": target_priors.round(6).tolist()}}


def adjust_logits(model, tokenizer, *, task: Task, params: Params, target: datasets.DatasetDict) -> dict:
    """Post-hoc logit adjustment (Menon et al. 2021): subtract tau * log(train priors) from the logits, tau
    chosen among finetune.logit_adjustment by the validation score (ties: the weakest), folded into the bias.

    Why: with 9% neutral labels the argmax almost never says neutral, and macro-F1 weighs that class as much
    as the others; dividing the posteriors by the priors (tau = 1) is the Bayes rule for a balanced error.
    """
    train_priors = class_priors(np.asarray(target["train"]["label"]), len(params.data.labels))
    chosen, scores = choose_strength(task.probabilities(model, target["validation"], tokenizer, params),
                                     np.asarray(target["validation"]["label"]), train_priors,
                                     params.finetune.logit_adjustment,
                                     lambda labels, predicted: task.label_score(labels, predicted, params))
    with torch.no_grad():
        output = output_layer(model)
        output.bias -= torch.as_tensor(chosen * np.log(train_priors), dtype=output.bias.dtype)
    return {"logit_adjustment": {"strength": chosen, "validation_scores": {str(k): round(v, 4) for k, v in
                                                                           scores.items()},
                                 "train_priors": train_priors.round(6).tolist()}}


def output_layer(model) -> torch.nn.Linear:
    """The last linear layer with one output per class (BERT's `classifier`, RoBERTa's `out_proj`, `score`)."""
    candidates = output_layers(model)
    if not candidates:
        raise ModelError("finetune.label_shift / logit_adjustment: the classifier has no output layer with a bias to "
                         "correct; set label_shift: none and logit_adjustment: [0.0]")
    return candidates[-1]


def output_layers(model) -> list[torch.nn.Linear]:
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)
            and m.out_features == model.config.num_labels and m.bias is not None]
