"""Transfer strategies on top of `transformers.Trainer`: what differs is the data mix and the loss.

- joint: source and target examples in the same batches, loss = a_s * L_source + a_t * L_target.
- dann: domain-adversarial training (Ganin et al. 2016): a domain classifier on the [CLS] state,
  fed with labeled source and (un)labeled target text through a gradient-reversal layer whose
  strength follows lambda(p) = 2 / (1 + exp(-gamma * p)) - 1 over training progress p.
- lora: low-rank adapters (peft) on any strategy, merged back so the output loads with
  `from_pretrained` like any other model.
- distillation: a student with every other layer of the teacher, trained on the teacher's soft
  labels (labeled and unlabeled target text) plus the hard labels.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

import datasets
import torch
from torch import nn
from transformers import DataCollatorWithPadding, TrainerCallback

from stages.errors import ModelError
from stages.modeling import LengthSortedTrainer

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


def _masked_mean_ce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
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
        loss = sum(weight * _masked_mean_ce(outputs.logits, labels, domain == d)
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
        task_loss = _masked_mean_ce(out.logits, labels, torch.ones_like(labels, dtype=torch.bool))
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


def apply_lora(model, r: int, alpha: int, dropout: float, target_modules: list[str], task: str = "classification"):
    """Wrap the task model with LoRA adapters; the task head (classifier, QA span head) stays fully trainable."""
    from peft import LoraConfig, TaskType, get_peft_model

    task_type = {"classification": TaskType.SEQ_CLS, "qa": TaskType.QUESTION_ANS,
                 "translation": TaskType.SEQ_2_SEQ_LM}[task]
    config = LoraConfig(task_type=task_type, r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=target_modules)
    return get_peft_model(model, config)


def merge_lora(model):
    """Fold the adapters into the weights: the saved model needs no peft to load."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


# --- knowledge distillation ---------------------------------------------------------------------

LAYER_INDEX = re.compile(r"\.layer\.(\d+)\.")


def make_student(teacher, keep_every: int = 2):
    """A shallower copy of `teacher` initialised from every `keep_every`-th layer (DistilBERT-style).

    Works for encoders whose layers are named `...layer.<i>...` (BERT, RoBERTa, ELECTRA, MiniLM...).
    """
    from transformers import AutoModelForSequenceClassification

    n_layers = teacher.config.num_hidden_layers
    kept = list(range(0, n_layers, keep_every))
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(kept)
    student = AutoModelForSequenceClassification.from_config(config)
    new_index = {old: new for new, old in enumerate(kept)}
    state = {}
    for key, value in teacher.state_dict().items():
        match = LAYER_INDEX.search(key)
        if match is None:
            state[key] = value
        elif int(match.group(1)) in new_index:
            state[LAYER_INDEX.sub(f".layer.{new_index[int(match.group(1))]}.", key, count=1)] = value
    missing, unexpected = student.load_state_dict(state, strict=False)
    if missing or unexpected or not any(LAYER_INDEX.search(k) for k in state):
        raise ModelError(f"distill: cannot map the teacher's layers onto a student (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}); distillation supports BERT-like encoders")
    return student


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE on the labeled rows (Hinton et al. 2015).

    Unlabeled rows (label -100) contribute through the teacher term alone.
    """
    soft = nn.functional.kl_div(nn.functional.log_softmax(student_logits / temperature, dim=-1),
                                nn.functional.softmax(teacher_logits / temperature, dim=-1),
                                reduction="batchmean") * temperature**2
    hard = _masked_mean_ce(student_logits, labels, torch.ones_like(labels, dtype=torch.bool))
    return alpha * soft + (1 - alpha) * hard


class DistillTrainer(LengthSortedTrainer):
    def __init__(self, *args, teacher, temperature: float, alpha: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.eval()
        self.temperature, self.alpha = temperature, alpha

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        inputs.pop("domain", None)
        outputs = model(**inputs)
        with torch.no_grad():
            teacher_logits = self.teacher.to(outputs.logits.device)(**inputs).logits
        loss = distillation_loss(outputs.logits, teacher_logits, labels, self.temperature, self.alpha)
        return (loss, outputs) if return_outputs else loss
