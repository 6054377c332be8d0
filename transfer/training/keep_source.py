"""Keeping what the source phase taught while the target phase trains (finetune.keep_source).

The target phase of `sequential` runs 8 epochs at a high learning rate on 100-200 examples, and can
overwrite the source phase. Two remedies from the transfer literature, both on the target phase only:

- L2-SP (Li et al. 2018, "Explicit inductive bias for transfer learning"): the loss gains
  l2sp/2 * ||w - w_source||^2 over every trained weight, a pull toward the weights the source phase
  ended with instead of plain weight decay's pull toward zero;
- source replay: a seeded sample of source examples (replay x the target train set's size) trains
  alongside the target examples, as rehearsal does against catastrophic forgetting.
"""

from __future__ import annotations

from typing import Any

import datasets
import numpy as np
import torch

from transfer.core.params import KeepSourceParams
from transfer.training.mixed_objective import ClassifierWithMLM
from transfer.training.trainer import LengthSortedTrainer


class L2SPTrainer(LengthSortedTrainer):
    """Adds l2sp/2 * ||w - anchor||^2 to the training loss (not to evaluation losses, which select epochs)."""

    def __init__(self, *args, anchor: dict[str, torch.Tensor], strength: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.anchor, self.strength = anchor, strength

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                      num_items_in_batch=num_items_in_batch)
        if not model.training:
            return result
        loss, outputs = result if return_outputs else (result, None)
        anchored = model.classifier if isinstance(model, ClassifierWithMLM) else model
        loss = loss + self.strength / 2 * distance_to_anchor(anchored, self.anchor)
        return (loss, outputs) if return_outputs else loss


def distance_to_anchor(model: torch.nn.Module, anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """||w - anchor||^2 summed over the trainable parameters the anchor holds."""
    terms = [(parameter - anchor[name].to(parameter.device)).pow(2).sum()
             for name, parameter in model.named_parameters() if parameter.requires_grad and name in anchor]
    if not terms:
        raise ValueError("finetune.keep_source.l2sp: none of the model's trainable weights has a source-phase "
                         "value to be pulled toward")
    return torch.stack(terms).sum()


def replay_sample(source_train: datasets.Dataset, target_train: datasets.Dataset, replay: float,
                  seed: int) -> datasets.Dataset:
    """round(replay x len(target_train)) source examples (all of them at most), drawn with the seed, in the
    target train set's columns."""
    count = min(len(source_train), round(replay * len(target_train)))
    rows = np.random.default_rng(seed).choice(len(source_train), size=count, replace=False)
    columns = [c for c in target_train.column_names if c in source_train.column_names]
    missing = sorted(set(target_train.column_names) - set(columns))
    if missing:
        raise ValueError(f"finetune.keep_source.replay: the source train set lacks the target's columns {missing}")
    return source_train.select(sorted(rows.tolist())).select_columns(columns).cast(target_train.features)


def keep_source_arguments(config: KeepSourceParams, source_train: datasets.Dataset, target_train: datasets.Dataset,
                          anchor: dict[str, torch.Tensor] | None, seed: int) -> tuple[datasets.Dataset, dict[str, Any]]:
    """The target phase's train set and Trainer arguments under `config`, with a `report` entry for the
    model's `transfer_levers` (empty when both remedies are off)."""
    arguments: dict[str, Any] = {"report": {}}
    if config.replay > 0:
        replayed = replay_sample(source_train, target_train, config.replay, seed)
        target_train = datasets.concatenate_datasets([target_train, replayed])
        arguments["report"].setdefault("keep_source", {})["replayed_source_examples"] = len(replayed)
    if config.l2sp > 0:
        if anchor is None:
            raise ValueError("finetune.keep_source.l2sp needs the weights the source phase ended with")
        arguments |= {"trainer_class": L2SPTrainer, "anchor": anchor, "strength": config.l2sp}
        arguments["report"].setdefault("keep_source", {})["l2sp"] = config.l2sp
    return target_train, arguments
