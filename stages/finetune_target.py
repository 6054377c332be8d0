"""finetune_target: train the target-domain model with the chosen transfer strategy.

    python -m stages.finetune_target             # finetune.strategy, from models/domain -> models/target
    python -m stages.finetune_target --baseline  # target_only from the base model     -> models/baseline
    python -m stages.finetune_target --labels 50 --out models/budget/...  # a point of the label-budget curve

The baseline is what the transfer is measured against: fine-tuning of the base model on the scarce
target labels, without source data and without domain-adaptive pretraining (with the same
finetune.peft, so that the gain measures the transfer, not full fine-tuning against adapters).
The model is a sequence classifier, a span-extraction QA head, or a seq2seq model (task in params),
always on the same encoder; QA and translation keep the epoch with the lowest validation loss.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import datasets
import numpy as np
import torch

from stages.artifacts import atomic_path, load_dataset_output, write_json
from stages.checkpoints import ResumableRun, checkpoint_arguments, resumable
from stages.cpu_dropout import configure_dropout
from stages.errors import ParamsError, run_stage
from stages.label_subsets import budget_subset, original_rows
from stages.modeling import (
    TRAINING_REPORT,
    LengthSortedTrainer,
    compute_trainer_metrics,
    load_classifier,
    load_tokenizer,
    resolve_model,
    set_seed,
    training_arguments,
    write_curves,
)
from stages.params import STRATEGIES, Params, load_params
from stages.strategies import (
    SOURCE,
    TARGET,
    DomainAdversarialModel,
    DomainCollator,
    JointTrainer,
    ReversalSchedule,
    apply_lora,
    merge_lora,
    with_domain,
)

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
                epochs: float, learning_rate: float, run: ResumableRun, phase: str, trainer_class=None,
                data_collator=None, **trainer_kwargs):
    """One Trainer run, resumable; with an evaluation set, keeps the epoch with the best macro-F1
    (classification) or the lowest validation loss (QA, translation: their scores need decoding)."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding

    config = params.finetune
    select_best = evaluation is not None and config.select_best
    by_loss = {} if params.task == "classification" else {"metric_for_best_model": "loss", "greater_is_better": False}
    args = training_arguments(run.phase_dir(phase), seed=params.seed, epochs=epochs, learning_rate=learning_rate,
                              batch_size=config.batch_size, eval_each_epoch=select_best,
                              weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio,
                              remove_unused_columns=data_collator is None, **(by_loss if select_best else {}),
                              **checkpoint_arguments(params.checkpoint.every_steps, mid_epoch=not select_best,
                                                     examples=len(train), batch_size=config.batch_size))
    configure_dropout(model, params, args.device)
    if data_collator is None:
        data_collator = (DataCollatorForSeq2Seq(tokenizer, model=model) if params.task == "translation"
                         else DataCollatorWithPadding(tokenizer))
    trainer = (trainer_class or LengthSortedTrainer)(
        model=model, args=args, train_dataset=train, eval_dataset=evaluation if select_best else None,
        data_collator=data_collator, processing_class=tokenizer,
        compute_metrics=compute_trainer_metrics if params.task == "classification" else None, **trainer_kwargs)
    return run.train(trainer, phase)


def load_task_model(init: str, tokenizer, params: Params):
    """The task's model on the encoder at `init` (the base model, or models/domain after adaptation)."""
    from transformers import AutoModelForQuestionAnswering

    from stages.modeling import load_kwargs
    from stages.translation import load_seq2seq

    if params.task == "qa":
        return AutoModelForQuestionAnswering.from_pretrained(init, **load_kwargs(params, init))
    if params.task == "translation":
        return load_seq2seq(init, tokenizer, **load_kwargs(params, init))
    return load_classifier(init, params)


def finetune(params: Params, strategy: str, init: str, out: Path, curves: Path, run: ResumableRun,
             labels: int | None = None) -> None:
    config = params.finetune
    source = load_dataset_output(TOKENIZED / "source")
    target = load_dataset_output(TOKENIZED / "target")
    if labels is not None:
        target["train"] = budget_subset(target["train"], labels, params.seed)
    set_seed(params.seed)
    tokenizer = load_tokenizer(init, params)
    model = load_task_model(init, tokenizer, params)
    if config.peft == "lora" and model.config.model_type == "encoder-decoder":
        raise ParamsError("finetune.peft: lora would leave the randomly initialised cross-attention of a warm-started "
                         "encoder-decoder frozen (only the adapters train); use a pretrained seq2seq model.name "
                         "with lora, or finetune.peft: none")
    if config.peft == "lora":
        model = apply_lora(model, config.lora.r, config.lora.alpha, config.lora.dropout, config.lora.target_modules,
                           params.task)
    train = partial(train_phase, tokenizer=tokenizer, params=params, run=run)
    mixed_validation = with_domain(target["validation"], TARGET)
    phases = {}
    if strategy in ("source_only", "sequential"):
        phases["source"] = train(model, train=source["train"], evaluation=None, epochs=config.source_epochs,
                                 learning_rate=config.source_learning_rate, phase="source")
    if strategy in ("target_only", "sequential"):
        loss = (class_weight_loss(target["train"], len(params.data.labels))
                if params.augment.rebalance == "class_weights" else None)
        phases["target"] = train(model, train=target["train"], evaluation=target["validation"],
                                 epochs=config.target_epochs, learning_rate=config.learning_rate, phase="target",
                                 compute_loss_func=loss)
    if strategy == "joint" and params.task != "classification":
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
    write_curves(curves, phases, curves.with_name(f"{curves.stem}_eval.csv"))
    model = merge_lora(model)
    model.config.transfer_strategy = strategy
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", action="store_true", help="train the target_only baseline from the base model")
    parser.add_argument("--strategy", choices=STRATEGIES, help="override finetune.strategy (compare stages)")
    parser.add_argument("--seed", type=int, help="override seed (compare stages)")
    parser.add_argument("--out", type=Path, help="output folder (default models/target or models/baseline)")
    parser.add_argument("--labels", type=int, help="train on this many labeled target examples (label_budget stages)")
    cli = parser.parse_args()
    params = load_params()
    if cli.seed is not None:
        params = params.model_copy(update={"seed": cli.seed})
    if cli.baseline:
        strategy, init, out = "target_only", resolve_model(params.model.name), cli.out or Path("models/baseline")
    else:
        strategy, init, out = cli.strategy or params.finetune.strategy, str(DOMAIN), cli.out or Path("models/target")
    if cli.labels is not None:
        available = len(original_rows(load_dataset_output(TOKENIZED / "target")["train"]))
        if cli.labels >= available:
            # label_budget drops this size from the curve with a note; the full budget is the headline pair.
            reason = (f"--labels {cli.labels} is not below the {available} labeled target train examples: the "
                      f"full budget is the headline models' point of the curve")
            with atomic_path(out) as tmp:
                tmp.mkdir(parents=True)
                write_json(tmp / TRAINING_REPORT, {"strategy": strategy, "seed": params.seed, "labels": cli.labels,
                                                   "skipped": reason})
            print(f"finetune_target: nothing to train: {reason}")
            return
    # Plot curves of the two headline models; compare runs keep theirs beside the model.
    curves = Path("metrics/curves") / f"{out.name}.csv" if cli.out is None else None
    budget = "" if cli.labels is None else f" labels={cli.labels}"
    print(f"finetune_target: strategy={strategy} seed={params.seed}{budget} from {init} -> {out}")
    started = time.perf_counter()
    run = resumable(params, out, {"strategy": strategy, "init": init, "labels": cli.labels}, [TOKENIZED, init])
    with atomic_path(out) as tmp:
        finetune(params, strategy, init, tmp, curves or tmp / "curves.csv", run, cli.labels)
        # Wall time is a measurement, not a result: kept apart so quality metrics stay identical run to run.
        write_json(tmp / TRAINING_REPORT, {"strategy": strategy, "seed": params.seed, "peft": params.finetune.peft,
                                           "labels": cli.labels,
                                           "wall_time_s": round(time.perf_counter() - started, 1)})
    run.finish()


if __name__ == "__main__":
    run_stage(main)
