"""Transfer strategies on top of `transformers.Trainer`: what differs is the data mix and the loss.

- joint: source and target examples in the same batches, loss = a_s * L_source + a_t * L_target.
- dann: domain-adversarial training (Ganin et al. 2016): a domain classifier on the [CLS] state,
  fed with labeled source and (un)labeled target text through a gradient-reversal layer whose
  strength follows lambda(p) = 2 / (1 + exp(-gamma * p)) - 1 over training progress p.
- lora: low-rank adapters (peft) on any strategy, merged back so the output loads with
  `from_pretrained` like any other model.
- setfit, sequential_setfit: not Trainer phases but SetFit's own training (setfit_training.py).

`train_strategy` runs a strategy's phases (sequential: source, then target) and saves the model;
`train_source_model` the source phase alone, which the finetune_source stage trains once for every run
that starts with it (source_phase.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import torch
from torch import nn
from transformers import DataCollatorWithPadding, TrainerCallback

from transfer.core.artifacts import write_json
from transfer.core.errors import ParamsError
from transfer.core.modeling import backbone_kind, backbone_of, load_tokenizer, resolve_model, set_seed
from transfer.core.params import Params
from transfer.core.strategy_registry import get_strategy
from transfer.training.checkpoints import ResumableRun
from transfer.training.keep_source import keep_source_arguments
from transfer.training.levers import adjust_priors, ensemble_and_self_train, levers_enabled
from transfer.training.mixed_objective import mixed_objective_arguments
from transfer.training.quantization import merge_into_full_precision, prepare_for_training, quantized_loading
from transfer.training.setfit_training import fit_setfit_strategy
from transfer.training.source_phase import (
    SETTINGS_FILE,
    STATE_FILE,
    finished_source_phase,
    source_settings,
)
from transfer.training.trainer import LengthSortedTrainer, class_weight_loss, train_phase, write_curves
from transfer.training.weight_ensembling import snapshot

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task

SOURCE, TARGET = 0, 1


def with_domain(dataset: datasets.Dataset, domain: int) -> datasets.Dataset:
    return dataset.add_column("domain", [domain] * len(dataset))


class DomainCollator:
    """Dynamic padding that keeps the `domain` column and maps missing labels (-1) to -100."""

    def __init__(self, tokenizer):
        self.pad = DataCollatorWithPadding(tokenizer)

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        keep = ("input_ids", "attention_mask", "token_type_ids", "label", "domain")
        batch = self.pad([{k: v for k, v in f.items() if k in keep} for f in features])
        batch["labels"] = batch["labels"].masked_fill(batch["labels"] < 0, -100)
        return batch


def masked_mean_ce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask & (labels != -100)
    if not mask.any():
        return logits.sum() * 0.0
    return nn.functional.cross_entropy(logits[mask], labels[mask])


class JointTrainer(LengthSortedTrainer):
    """Multi-task loss over mixed batches: each domain's mean loss, weighted."""

    def __init__(self, *args, source_weight: float, target_weight: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.domain_weights = (source_weight, target_weight)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels, domain = inputs.pop("labels"), inputs.pop("domain")
        outputs = model(**inputs)
        loss = sum(weight * masked_mean_ce(outputs.logits, labels, domain == d)
                   for d, weight in enumerate(self.domain_weights))
        return (loss, outputs) if return_outputs else loss


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by -strength."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, strength: float) -> torch.Tensor:
        ctx.strength = strength
        return features.view_as(features)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.strength * grad, None


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """Ganin et al.'s schedule: 0 at the start (the domain head is still noise), towards 1 at the end."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


class DomainAdversarialModel(nn.Module):
    """A sequence classifier plus a domain head on its last [CLS] hidden state, behind gradient reversal.

    Only `classifier` is saved: the domain head is scaffolding for training.
    """

    def __init__(self, classifier, domain_weight: float = 1.0):
        super().__init__()
        self.classifier = classifier
        hidden = classifier.config.hidden_size
        self.domain_head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self.domain_weight = domain_weight
        self.reversal_strength = 0.0

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, domain=None):
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = self.classifier(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **extra)
        if labels is None:
            return {"logits": out.logits}
        task_loss = masked_mean_ce(out.logits, labels, torch.ones_like(labels, dtype=torch.bool))
        loss = task_loss
        if domain is not None:
            features = GradientReversal.apply(out.hidden_states[-1][:, 0], self.reversal_strength)
            loss = loss + self.domain_weight * nn.functional.cross_entropy(self.domain_head(features), domain)
        return {"loss": loss, "logits": out.logits}


class ReversalSchedule(TrainerCallback):
    """Sets the gradient-reversal strength from training progress before every step."""

    def __init__(self, model: DomainAdversarialModel, gamma: float):
        self.model, self.gamma = model, gamma

    def on_step_begin(self, args, state, control, **kwargs: Any):
        self.model.reversal_strength = dann_lambda(state.global_step / max(state.max_steps, 1), self.gamma)


def apply_lora(model, r: int, alpha: int, dropout: float, target_modules: str | list[str],
               task_type: str = "SEQ_CLS"):
    """Wrap the task model with LoRA adapters (task_type: a peft TaskType name); the task head (classifier,
    QA span head) stays fully trainable. `target_modules`: see lora_targets."""
    from peft import LoraConfig, TaskType, get_peft_model  # optional: only finetune.peft: lora needs peft

    config = LoraConfig(task_type=TaskType[task_type], r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=lora_targets(model.config, target_modules))
    return get_peft_model(model, config)


def lora_targets(config, requested: str | list[str]) -> str | list[str] | None:
    """`auto`: every linear projection of a decoder ("all-linear", as QLoRA found adapters on attention
    alone fall short for LLMs), and peft's per-architecture default for encoders (None: query/value for
    BERT-like models); anything else goes to peft as given."""
    if requested != "auto":
        return requested
    return "all-linear" if backbone_kind(config) == "decoder" else None


def merge_lora(model):
    """Fold the adapters into the weights: the saved model needs no peft to load."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def trainable_model(params: Params, task: Task, weights: str, tokenizer):
    """The task's model from `weights`, ready for a gradient phase: 4-bit and prepared where
    model.quantization asks, LoRA-wrapped where finetune.peft does. Returns (model, quantized)."""
    config = params.finetune
    quantized = quantized_loading(params)
    model = task.load_model(weights, tokenizer, params, **quantized)
    if quantized:
        model = prepare_for_training(model, params)
    if config.peft == "lora" and model.config.model_type == "encoder-decoder":
        raise ParamsError("finetune.peft: lora would leave the randomly initialised cross-attention of a warm-started "
                          "encoder-decoder frozen (only the adapters train); use a pretrained seq2seq model.name "
                          "with lora, or finetune.peft: none")
    if config.peft == "lora":
        model = apply_lora(model, config.lora.r, config.lora.alpha, config.lora.dropout, config.lora.target_modules,
                           task.peft_task_type)
    return model, bool(quantized)


def merged(model, quantized: bool, full_precision):
    """The trained model as it ships: LoRA adapters merged, into `full_precision()`'s weights for a
    4-bit model."""
    return merge_into_full_precision(model, full_precision) if quantized else merge_lora(model)


def train_source_model(params: Params, task: Task, init: str, source: datasets.DatasetDict, out: Path,
                       run: ResumableRun) -> None:
    """The source phase alone (source_only without levers), saved to `out` with its settings and Trainer
    state, for fit_strategy's `source_model`. LoRA adapters are merged: a target phase after it trains
    adapters of its own."""
    config = params.finetune
    set_seed(params.seed)
    tokenizer = load_tokenizer(init, params)
    model, quantized = trainable_model(params, task, init, tokenizer)
    trainer = train_phase(model, tokenizer=tokenizer, task=task, params=params, run=run, train=source["train"],
                          evaluation=None, epochs=config.source_epochs, learning_rate=config.source_learning_rate,
                          phase="source")
    model = merged(model, quantized, lambda: task.load_model(init, tokenizer, params))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # Timings out (train_runtime, samples per second): the same training must publish the same bytes, or
    # DVC would re-run everything that starts from it.
    trainer.state.log_history = [{key: value for key, value in entry.items()
                                  if not key.endswith(("_runtime", "_per_second"))}
                                 for entry in trainer.state.log_history]
    trainer.state.save_to_json(str(out / STATE_FILE))
    write_json(out / SETTINGS_FILE, source_settings(params))


def train_strategy(params: Params, task: Task, strategy: str, init: str, source: datasets.DatasetDict,
                   target: datasets.DatasetDict, out: Path, curves: Path, run: ResumableRun,
                   levers: bool = True, selection: dict | None = None, source_phase: str = "source",
                   source_model: str | None = None) -> None:
    """Train the task's model from `init` with `strategy` on tokenized source and target data, then apply
    finetune's levers unless `levers` is False (the baseline); save it (adapters merged) with its tokenizer
    to `out`, and its learning curves to `curves`. `selection` (strategy: auto) goes into its config;
    `source_model`: see fit_strategy."""
    save_fitted(fit_strategy(params, task, strategy, init, source, target, run, levers=levers,
                             source_phase=source_phase, source_model=source_model), out, curves, selection)


def save_fitted(fitted: tuple, out: Path, curves: Path, selection: dict | None = None) -> None:
    """fit_strategy's (model, tokenizer, phases) saved: the model with its tokenizer to `out`, its learning
    curves to `curves` (and `<stem>_eval.csv` beside it); `selection` (strategy: auto) into its config."""
    model, tokenizer, phases = fitted
    write_curves(curves, phases, curves.with_name(f"{curves.stem}_eval.csv"))
    if selection:
        model.config.transfer_selection = selection
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def fit_strategy(params: Params, task: Task, strategy: str, init: str, source: datasets.DatasetDict,
                 target: datasets.DatasetDict, run: ResumableRun, *, levers: bool = True, phase_prefix: str = "",
                 source_phase: str = "source", source_model: str | None = None):
    """The trained model (adapters merged, `transfer_strategy` and `transfer_levers` in its config), its
    tokenizer, and each phase's Trainer (for the curves).

    `source_model`: a folder of train_source_model's, trained with these params' source settings; a
    strategy that starts with the source phase starts from it instead of training the phase. Otherwise
    phases are checkpointed in `run` under `phase_prefix` + their name, but for the source phase, under
    `source_phase`: it reads no target data, so the cross-validation folds of strategy: auto and the final
    model share one.
    """
    config = params.finetune
    if isinstance(config.learning_rate, list):
        raise ValueError(f"fit_strategy trains at one learning rate, and finetune.learning_rate is the grid "
                         f"{config.learning_rate}: choose with transfer.training.tuning.fit_over_learning_rates")
    set_seed(params.seed)
    tokenizer = load_tokenizer(init, params)
    declared = get_strategy(strategy)  # transfer/core/strategy_registry.py
    if declared.setfit:
        return fit_setfit(params, task, strategy, init, source, target, tokenizer, levers=levers)
    after_source = source_model is not None and declared.source_phase
    weights = source_model if after_source else init
    model, quantized = trainable_model(params, task, weights, tokenizer)

    def train(model, *, phase: str, **kwargs):
        return train_phase(model, tokenizer=tokenizer, task=task, params=params, run=run,
                           phase=source_phase if phase == "source" else phase_prefix + phase, **kwargs)

    mixed_validation = with_domain(target["validation"], TARGET)
    phases = {}
    if after_source:
        phases["source"] = finished_source_phase(source_model)
    elif declared.source_phase:
        phases["source"] = train(model, train=source["train"], evaluation=None, epochs=config.source_epochs,
                                 learning_rate=config.source_learning_rate, phase="source")
    levers = levers and levers_enabled(params)
    start, chosen = None, {}
    if declared.train is not None:  # a registered strategy of its own: its phases, then the common levers
        phases |= declared.train(model, train, params=params, task=task, source=source, target=target)
    if strategy in ("target_only", "sequential"):
        start = snapshot(model) if levers else None
        loss = (class_weight_loss(target["train"], len(params.data.labels))
                if params.augment.rebalance == "class_weights" else None)
        target_train, keep_source = target["train"], {}
        if levers and strategy == "sequential":
            target_train, keep_source = keep_source_arguments(config.keep_source, source["train"], target_train,
                                                              start, params.seed)
            chosen |= keep_source.pop("report")
        phase_model, mlm_arguments = model, {}
        if levers and config.mixed_mlm.weight > 0:
            phase_model, mlm_arguments = mixed_objective_arguments(model, tokenizer, init, target["unlabeled"],
                                                                   params, loss)
            loss, chosen["mixed_mlm"] = None, {"weight": config.mixed_mlm.weight}
        phases["target"] = train(phase_model, train=target_train, evaluation=target["validation"],
                                 epochs=config.target_epochs, learning_rate=config.learning_rate, phase="target",
                                 compute_loss_func=loss, **keep_source, **mlm_arguments)
    if levers and strategy != "sequential" and (config.keep_source.l2sp or config.keep_source.replay):
        chosen["keep_source"] = {"skipped": "keep_source acts on the target phase of sequential, after a source phase"}
    if strategy == "joint" and not task.label_head:
        # QA windows / sentence pairs of both domains in one shuffled set (no per-domain loss weights).
        mixed = datasets.concatenate_datasets([source["train"], target["train"]])
        phases["joint"] = train(model, train=mixed, evaluation=target["validation"], epochs=config.source_epochs,
                                learning_rate=config.learning_rate, phase="joint")
    elif strategy == "joint":
        mixed = datasets.concatenate_datasets([with_domain(source["train"], SOURCE),
                                               with_domain(target["train"], TARGET)])
        phases["joint"] = train(model, train=mixed, evaluation=mixed_validation, epochs=config.source_epochs,
                                learning_rate=config.learning_rate, phase="joint", trainer_class=JointTrainer,
                                data_collator=DomainCollator(tokenizer), source_weight=config.joint.source_weight,
                                target_weight=config.joint.target_weight)
    if strategy == "dann":
        adversarial = DomainAdversarialModel(model, config.dann.domain_weight)
        mixed = datasets.concatenate_datasets([with_domain(source["train"], SOURCE),
                                               with_domain(target["train"], TARGET),
                                               with_domain(target["unlabeled"], TARGET)])
        phases["dann"] = train(adversarial, train=mixed, evaluation=mixed_validation, epochs=config.source_epochs,
                               learning_rate=config.learning_rate, phase="dann",
                               data_collator=DomainCollator(tokenizer),
                               callbacks=[ReversalSchedule(adversarial, config.dann.gamma)])
    if levers:
        chosen |= ensemble_and_self_train(model, tokenizer, task=task, params=params, start=start, target=target,
                                          train=train, phases=phases)
    model = merged(model, quantized, lambda: task.load_model(weights, tokenizer, params))
    # Logit adjustment is chosen on validation from the labels alone: the baseline gets it as well.
    chosen |= adjust_priors(model, tokenizer, task=task, params=params, target=target, label_shift=levers)
    chosen |= task.choose_decision_rule(model, tokenizer, target, params)
    model.config.transfer_strategy = strategy
    if chosen:
        model.config.transfer_levers = chosen
    return model, tokenizer, phases


def fit_setfit(params: Params, task: Task, strategy: str, init: str, source: datasets.DatasetDict,
               target: datasets.DatasetDict, tokenizer, *, levers: bool = True):
    """fit_strategy for the SetFit strategies: no Trainer phases (no curves, no checkpoints: a killed run
    trains again); of the levers, only label-shift correction and logit adjustment apply to a fitted head."""
    if backbone_of(init, params) != "encoder":
        raise ParamsError(f"finetune.strategy {strategy}: SetFit trains a sentence-transformer encoder, and "
                          f"model.name {params.model.name} is not one; use sequential (LoRA on a decoder) or an "
                          f"encoder model.name")
    model, trained_on = fit_setfit_strategy(params, strategy, init, resolve_model(params.model.name), source,
                                            target, tokenizer)
    chosen = {"setfit": trained_on}
    levers = levers and levers_enabled(params)
    if levers:
        chosen |= adjust_priors(model, tokenizer, task=task, params=params, target=target)
    config = params.finetune
    skipped = [name for name, on in (("weight_ensembling", config.weight_ensembling.mixes != [1.0]),
                                     ("self_training", config.self_training.rounds > 0),
                                     ("keep_source", config.keep_source.l2sp or config.keep_source.replay),
                                     ("mixed_mlm", config.mixed_mlm.weight > 0)) if on and levers]
    for name in skipped:
        chosen[name] = {"skipped": f"{name} acts on a gradient target phase, which {strategy} does not have"}
    model.config.transfer_strategy = strategy
    model.config.transfer_levers = chosen
    return model, tokenizer, {}
