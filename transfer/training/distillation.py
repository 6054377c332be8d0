"""Knowledge distillation (Hinton et al. 2015): a student trained on the teacher's temperature-softened
outputs over labeled and unlabeled target text, plus the hard labels.

The teacher's logits are computed once (`soft_labels`, the teacher_outputs stage) and read from the data:
a student retrains without re-running the teacher, which for an LLM teacher is most of the cost. The
student is a copy of an encoder teacher with every `keep_every`-th layer (DistilBERT-style), or any
encoder classifier named in distill.student (the packaged MiniLM for a decoder teacher), which then
reads the texts through its own tokenizer.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import datasets
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification

from transfer.core.errors import ModelError, ParamsError
from transfer.core.modeling import backbone_kind, load_tokenizer, resolve_model, set_seed
from transfer.core.params import Params
from transfer.tasks.classification import class_logits, load_classifier
from transfer.tasks.sentence_classifier import is_sentence_classifier, sentence_classifier_class
from transfer.training.checkpoints import ResumableRun
from transfer.training.strategies import DomainCollator, masked_mean_ce
from transfer.training.trainer import LengthSortedTrainer, train_phase

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task

LAYER_INDEX = re.compile(r"\.layer\.(\d+)\.")
NOT_ENABLED = ("distill.enabled is false; dvc exp run -S distill.enabled=true trains the student (off by default "
               "to pay for the headline's training seeds: docs/performance.md)")


def skip_reason(params: Params, task: Task) -> str | None:
    """Why teacher_outputs and distill train nothing in this run (switched off, or a task without a label
    head), or None when they run."""
    if not params.distill.enabled:
        return NOT_ENABLED
    return task.skipped_stages.get("distill")


def make_student(teacher, keep_every: int = 2):
    """A shallower copy of `teacher` initialised from every `keep_every`-th layer (DistilBERT-style).

    Works for encoders whose layers are named `...layer.<i>...` (BERT, RoBERTa, ELECTRA, MiniLM...).
    """
    n_layers = teacher.config.num_hidden_layers
    kept = list(range(0, n_layers, keep_every))
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(kept)
    student = (sentence_classifier_class(config)(config) if is_sentence_classifier(config)
               else AutoModelForSequenceClassification.from_config(config))
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
    hard = masked_mean_ce(student_logits, labels, torch.ones_like(labels, dtype=torch.bool))
    return alpha * soft + (1 - alpha) * hard


class DistillTrainer(LengthSortedTrainer):
    """The distillation loss against the `teacher_logits` each batch carries."""

    def __init__(self, *args, temperature: float, alpha: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.temperature, self.alpha = temperature, alpha

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels, teacher_logits = inputs.pop("labels"), inputs.pop("teacher_logits")
        inputs.pop("domain", None)
        outputs = model(**inputs)
        loss = distillation_loss(outputs.logits, teacher_logits.to(outputs.logits.dtype), labels, self.temperature,
                                 self.alpha)
        return (loss, outputs) if return_outputs else loss


class SoftLabelCollator(DomainCollator):
    """Dynamic padding, unlabeled rows at -100, and the teacher's logits of each row."""

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = super().__call__(features)
        batch["teacher_logits"] = torch.tensor([f["teacher_logits"] for f in features], dtype=torch.float32)
        return batch


DISTILLED_SPLITS = ("train", "unlabeled", "validation")  # validation: best-epoch selection scores the same loss


def soft_labels(teacher, tokenizer, target: datasets.DatasetDict, batch_size: int) -> dict[str, list[float]]:
    """The teacher's class logits per row id over the splits the student learns from."""
    logits: dict[str, list[float]] = {}
    for split in DISTILLED_SPLITS:
        if split not in target or len(target[split]) == 0:
            continue
        values = class_logits(teacher, target[split], tokenizer, batch_size)
        for row_id, row in zip(target[split]["id"], values, strict=True):
            if row_id in logits:
                raise ModelError(f"distill: row id {row_id!r} occurs twice in the target train/unlabeled/validation "
                                 f"splits; soft labels are keyed by id")
            logits[row_id] = [round(float(v), 6) for v in row]
    return logits


def default_student(teacher_config) -> str | None:
    """distill.student: auto: a layer-dropped copy of an encoder teacher (None), the packaged MiniLM for a
    decoder (a shallower decoder would still be an LLM; the point is a small encoder to serve)."""
    return DEFAULT_STUDENT if backbone_kind(teacher_config) == "decoder" else None


DEFAULT_STUDENT = "embedded:all-MiniLM-L6-v2"


def build_student(params: Params, teacher_dir: Path):
    """(student model, its tokenizer, where it came from): see default_student."""
    config = params.distill
    teacher_config = AutoConfig.from_pretrained(str(teacher_dir), trust_remote_code=params.model.trust_remote_code)
    name = default_student(teacher_config) if config.student == "auto" else config.student
    if name is None:
        teacher = load_classifier(str(teacher_dir), params)
        return (make_student(teacher, config.keep_every), load_tokenizer(str(teacher_dir), params),
                f"layers 0, {config.keep_every}, {2 * config.keep_every}, ... of the teacher")
    path = resolve_model(name)
    if backbone_kind(AutoConfig.from_pretrained(path, trust_remote_code=params.model.trust_remote_code)) != "encoder":
        raise ParamsError(f"distill.student: {name} is not an encoder; the student is a small encoder classifier "
                          f"(e.g. {DEFAULT_STUDENT}), or auto")
    return load_classifier(path, params), load_tokenizer(path, params), name


def train_student(params: Params, task: Task, teacher_dir: Path, rows: dict[str, list[dict]],
                  logits: dict[str, list[float]], out: Path, run: ResumableRun, phase: str = "student"):
    """Distill the teacher's `logits` (by row id) into a student saved to `out`, reading `rows` (the
    augmented target splits) through the student's tokenizer; returns (student, its tokenizer, origin).
    `phase` names its checkpoints in `run` (two students in one run need two names)."""
    config = params.distill
    set_seed(params.seed)
    student, tokenizer, origin = build_student(params, teacher_dir)
    splits = {split: with_soft_labels(task.tokenize(rows[split], tokenizer, params, split)[split], logits)
              for split in DISTILLED_SPLITS if rows.get(split)}
    train = datasets.concatenate_datasets([splits[s] for s in ("train", "unlabeled") if s in splits])
    train_phase(student, tokenizer, train, splits.get("validation"), task=task, params=params, epochs=config.epochs,
                learning_rate=config.learning_rate, run=run, phase=phase, trainer_class=DistillTrainer,
                data_collator=SoftLabelCollator(tokenizer), temperature=config.temperature, alpha=config.alpha)
    teacher_strategy = json.loads((teacher_dir / "config.json").read_text()).get("transfer_strategy")
    student.config.transfer_strategy = f"distilled from {teacher_strategy}"
    student.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return student, tokenizer, origin


def with_soft_labels(dataset: datasets.Dataset, logits: dict[str, list[float]]) -> datasets.Dataset:
    missing = [row_id for row_id in dataset["id"] if row_id not in logits]
    if missing:
        raise ModelError(f"distill: no teacher output for {len(missing)} rows (e.g. {missing[:3]}); the soft labels in "
                         f"data/teacher are older than the data: run `dvc repro teacher_outputs`")
    return dataset.add_column("teacher_logits", [logits[row_id] for row_id in dataset["id"]])
