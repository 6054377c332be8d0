"""Knowledge distillation (Hinton et al. 2015): a student with every `keep_every`-th layer of the teacher
(DistilBERT-style), trained on the teacher's temperature-softened outputs over labeled and unlabeled
target text, plus the hard labels.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import TYPE_CHECKING

import datasets
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification

from transfer.core.errors import ModelError
from transfer.core.modeling import load_tokenizer, set_seed
from transfer.core.params import Params
from transfer.tasks.sentence_classifier import is_sentence_classifier, sentence_classifier_class
from transfer.training.checkpoints import ResumableRun
from transfer.training.strategies import DomainCollator, masked_mean_ce
from transfer.training.trainer import LengthSortedTrainer, train_phase

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task

LAYER_INDEX = re.compile(r"\.layer\.(\d+)\.")


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


def train_student(params: Params, task: Task, teacher_dir: Path, target: datasets.DatasetDict, out: Path,
                  run: ResumableRun):
    """Distill the classifier at `teacher_dir` into a student saved to `out`; returns (teacher, student)."""
    config = params.distill
    set_seed(params.seed)
    tokenizer = load_tokenizer(str(teacher_dir), params)
    teacher = task.load_model(str(teacher_dir), tokenizer, params)
    student = make_student(teacher, config.keep_every)
    train = datasets.concatenate_datasets([target["train"], target["unlabeled"]]) if "unlabeled" in target \
        else target["train"]
    train_phase(student, tokenizer, train, target["validation"], task=task, params=params, epochs=config.epochs,
                learning_rate=config.learning_rate, run=run, phase="student", trainer_class=DistillTrainer,
                data_collator=DomainCollator(tokenizer), teacher=teacher, temperature=config.temperature,
                alpha=config.alpha)
    student.config.transfer_strategy = f"distilled from {teacher.config.to_dict().get('transfer_strategy')}"
    student.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return teacher, student
