"""Training loops shared by every strategy: length-sorted batches, one resumable Trainer run per phase,
and the learning curves `dvc plots` draws."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np
import torch
from transformers import Trainer

from transfer.core.artifacts import write_csv
from transfer.core.modeling import training_arguments
from transfer.core.params import Params
from transfer.training.checkpoints import ResumableRun, checkpoint_arguments
from transfer.training.cpu_dropout import configure_dropout

if TYPE_CHECKING:  # the stage passes its task in: training code does not depend on the tasks
    from transfer.tasks.base import Task


class LengthSortedBatches(torch.utils.data.Sampler):
    """Indices in batches of near-equal length (a full sort), the batches in random order.

    Trainer's group_by_length sorts only within random groups of up to 50 batches (48 examples for
    200 labeled reviews at batch 16), leaving ~28% padding; a full sort leaves almost none. Ties are
    broken at random and the batch order reshuffled every epoch from torch's global RNG, as
    Trainer's own samplers do (it seeds and checkpoints that RNG). The short last batch goes last so
    that Trainer's batch slicing stays aligned.
    """

    def __init__(self, lengths: list[int], batch_size: int):
        self.lengths, self.batch_size = list(lengths), batch_size

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        order = sorted(torch.randperm(len(self.lengths)).tolist(), key=self.lengths.__getitem__)
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        last = batches.pop() if len(batches[-1]) < self.batch_size else None
        shuffled = [batches[i] for i in torch.randperm(len(batches)).tolist()] + ([last] if last else [])
        return iter([i for batch in shuffled for i in batch])


def example_lengths(dataset: datasets.Dataset) -> list[int]:
    # Trainer may have dropped columns the model does not take, `length` among them.
    return dataset["length"] if "length" in dataset.column_names else [len(ids) for ids in dataset["input_ids"]]


class LongestFirst(torch.utils.data.Sampler):
    """Evaluation order: indices sorted by length, the longest first, so that each batch holds texts of
    near-equal length (little padding) and a batch too large for memory fails at once."""

    def __init__(self, lengths: list[int]):
        self.order = sorted(range(len(lengths)), key=lambda i: -lengths[i])

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self):
        return iter(self.order)


class LengthSortedTrainer(Trainer):
    """Trainer whose group_by_length batches come from LengthSortedBatches, and whose evaluation batches are
    length-sorted (Trainer's own evaluation goes through its random length-grouped sampler: more padding)."""

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy == "group_by_length" and isinstance(dataset, datasets.Dataset):
            return LengthSortedBatches(example_lengths(dataset),
                                       self.args.train_batch_size * self.args.gradient_accumulation_steps)
        return super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        # Metrics are computed over all predictions gathered in one order, so the order is free; under a
        # distributed launch Trainer shards sequentially (its own choice is kept).
        if self.args.world_size <= 1 and isinstance(eval_dataset, datasets.Dataset) and len(eval_dataset):
            return LongestFirst(example_lengths(eval_dataset))
        return super()._get_eval_sampler(eval_dataset)


TRAIN_CURVE_FIELDS = ("phase", "step", "epoch", "loss", "learning_rate")
EVAL_CURVE_FIELDS = ("phase", "step", "epoch", "eval_loss", "eval_macro_f1")
# Validation scores a task logs besides those (QA's F1), in the table where a run has them.
OPTIONAL_EVAL_CURVE_FIELDS = ("eval_f1",)


def write_curves(path: str | Path, phases: dict[str, Any], eval_path: str | Path | None = None) -> None:
    """Learning curves for `dvc plots` from each phase's Trainer: training-loss rows to `path`, and the
    per-epoch evaluations to `eval_path`. Apart, because one table with both kinds of row draws each line
    through an empty cell at every other row.

    Steps run on across phases so the curves line up; timings are left out (they differ run to run).
    """
    train, evaluations, offset = [], [], 0
    eval_fields = EVAL_CURVE_FIELDS + OPTIONAL_EVAL_CURVE_FIELDS
    for phase, trainer in phases.items():
        for entry in trainer.state.log_history:
            step = entry["step"] + offset
            if "loss" in entry:
                train.append({"phase": phase, **{f: entry.get(f, "") for f in TRAIN_CURVE_FIELDS[2:]}, "step": step})
            if "eval_loss" in entry:
                evaluations.append({"phase": phase, **{f: entry.get(f, "") for f in eval_fields[2:]}, "step": step})
        offset += trainer.state.global_step
    write_csv(path, train, fieldnames=TRAIN_CURVE_FIELDS)
    if eval_path is not None:
        logged = {key for row in evaluations for key, value in row.items() if value != ""}
        fields = EVAL_CURVE_FIELDS + tuple(f for f in OPTIONAL_EVAL_CURVE_FIELDS if f in logged)
        write_csv(eval_path, [{f: row[f] for f in fields} for row in evaluations], fieldnames=fields)


def class_weight_loss(train: datasets.Dataset, n_labels: int):
    """Cross-entropy weighted by inverse class frequency (augment.rebalance: class_weights)."""
    counts = np.bincount(np.asarray(train["label"]), minlength=n_labels).astype(np.float64)
    weights = torch.tensor(counts.sum() / (n_labels * np.maximum(counts, 1)), dtype=torch.float32)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"]
        return torch.nn.functional.cross_entropy(logits.view(-1, n_labels), labels.view(-1),
                                                 weight=weights.to(logits.device))
    return loss


def train_phase(model, tokenizer, train: datasets.Dataset, evaluation: datasets.Dataset | None, *, task: Task,
                params: Params, epochs: float, learning_rate: float, run: ResumableRun, phase: str,
                trainer_class=None, data_collator=None, **trainer_kwargs):
    """One Trainer run, resumable; with an evaluation set, keeps the best epoch by the task's criterion
    (macro-F1 for classification, F1 for QA, the lowest validation loss for translation)."""
    config = params.finetune
    select_best = evaluation is not None and len(evaluation) > 0 and config.select_best
    args = training_arguments(run.phase_dir(phase), seed=params.seed, epochs=epochs, learning_rate=learning_rate,
                              batch_size=config.batch_size, eval_each_epoch=select_best,
                              weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio,
                              remove_unused_columns=data_collator is None, **(task.best_epoch if select_best else {}),
                              **checkpoint_arguments(params.checkpoint.every_steps, mid_epoch=not select_best,
                                                     examples=len(train), batch_size=config.batch_size,
                                                     epochs=epochs))
    configure_dropout(model, params, args.device)
    trainer = (trainer_class or LengthSortedTrainer)(
        model=model, args=args, train_dataset=train, eval_dataset=evaluation if select_best else None,
        data_collator=data_collator or task.collator(tokenizer, model), processing_class=tokenizer,
        compute_metrics=task.trainer_metrics(evaluation if select_best else None, tokenizer, params), **trainer_kwargs)
    return run.train(trainer, phase)
