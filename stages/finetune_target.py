"""finetune_target: train the target-domain classifier with the chosen transfer strategy.

    python -m stages.finetune_target             # finetune.strategy, from models/domain -> models/target
    python -m stages.finetune_target --baseline  # target_only from the base model     -> models/baseline

The baseline is what the transfer is measured against: plain fine-tuning of the base model on
the scarce target labels, without source data and without domain-adaptive pretraining.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import datasets
import numpy as np
import torch

from stages.artifacts import atomic_path
from stages.modeling import (
    compute_trainer_metrics,
    load_classifier,
    load_tokenizer,
    resolve_model,
    set_seed,
    training_arguments,
    write_curves,
)
from stages.params import Params, load_params

TOKENIZED, DOMAIN = Path("data/tokenized"), Path("models/domain")


def class_weight_loss(train: datasets.Dataset, n_labels: int):
    """Cross-entropy weighted by inverse class frequency (augment.rebalance: class_weights)."""
    counts = np.bincount(np.asarray(train["label"]), minlength=n_labels).astype(np.float64)
    weights = torch.tensor(counts.sum() / (n_labels * np.maximum(counts, 1)), dtype=torch.float32)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"]
        return torch.nn.functional.cross_entropy(logits.view(-1, n_labels), labels.view(-1),
                                                 weight=weights.to(logits.device))
    return loss


def train_phase(model, tokenizer, train: datasets.Dataset, evaluation: datasets.Dataset | None, *, params: Params,
                epochs: float, learning_rate: float, scratch: Path, loss=None):
    """One Trainer run; with an evaluation set, keeps the epoch with the best macro-F1."""
    from transformers import DataCollatorWithPadding, Trainer

    config = params.finetune
    select_best = evaluation is not None and config.select_best
    args = training_arguments(scratch, seed=params.seed, epochs=epochs, learning_rate=learning_rate,
                              batch_size=config.batch_size, eval_each_epoch=select_best,
                              weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation if select_best else None,
                      data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
                      compute_metrics=compute_trainer_metrics, compute_loss_func=loss)
    trainer.train()
    return trainer


def finetune(params: Params, strategy: str, init: str, out: Path, curves: Path) -> None:
    source = datasets.load_from_disk(str(TOKENIZED / "source"))
    target = datasets.load_from_disk(str(TOKENIZED / "target"))
    set_seed(params.seed)
    tokenizer = load_tokenizer(init, params)
    model = load_classifier(init, params)
    loss = (class_weight_loss(target["train"], len(params.data.labels))
            if params.augment.rebalance == "class_weights" else None)
    phases = {}
    with tempfile.TemporaryDirectory(prefix="finetune-") as scratch:
        if strategy == "sequential":
            phases["source"] = train_phase(model, tokenizer, source["train"], None, params=params,
                                           epochs=params.finetune.source_epochs,
                                           learning_rate=params.finetune.source_learning_rate,
                                           scratch=Path(scratch) / "source")
        phases["target"] = train_phase(model, tokenizer, target["train"], target["validation"], params=params,
                                       epochs=params.finetune.target_epochs,
                                       learning_rate=params.finetune.learning_rate,
                                       scratch=Path(scratch) / "target", loss=loss)
    write_curves(curves, phases)
    model.config.transfer_strategy = strategy
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", action="store_true", help="train the target_only baseline from the base model")
    cli = parser.parse_args()
    params = load_params()
    if cli.baseline:
        strategy, init, name = "target_only", resolve_model(params.model.name), "baseline"
    else:
        strategy, init, name = params.finetune.strategy, str(DOMAIN), "target"
    print(f"finetune_target: strategy={strategy} from {init} -> models/{name}")
    with atomic_path(Path("models") / name) as out:
        finetune(params, strategy, init, out, Path("metrics/curves") / f"{name}.csv")


if __name__ == "__main__":
    main()
