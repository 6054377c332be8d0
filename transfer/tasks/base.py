"""The interface a task implements: everything the pipeline does differently for classification, QA,
translation (or a task you add) is a method or an attribute here, and nowhere else.

A stage looks its task up once (`transfer.tasks.task_for(params)`) and calls these; no module outside
`transfer/tasks/` branches on the task's name. Rows are dicts whose fields the task defines (the
domain and split travel with them); tokenized splits are `datasets.Dataset`s.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from transfer.core.strategy_registry import strategy_names
from transfer.data.corpora import stratified_take

if TYPE_CHECKING:  # annotations only: datasets is imported where tokenized data is made
    from pathlib import Path

    import datasets
    import numpy as np
    import pandas as pd

    from transfer.core.params import CleanParams, HubDataset, LocalFiles, Params


class Task(ABC):
    """One task: its rows, how they are checked, tokenized, trained on and scored."""

    name: ClassVar[str]
    # Scores reported with their gain over the baseline, display names; the first is the primary one, which
    # decides the label-budget curve, the comparison and negative transfer.
    metrics: ClassVar[dict[str, str]]
    # Points per unit of the primary metric in the reported gains (100 for a fraction, 1 for a percent).
    points: ClassVar[float]
    # The field holding the text a domain is made of: what pretrain_domain adapts on, domain_shift compares,
    # and the length bounds of clean apply to.
    text_field: ClassVar[str]
    # Fields clean normalizes (unicode, URLs, spaces); others (a QA context, whose answers are offsets) stay.
    normalized_fields: ClassVar[tuple[str, ...]]
    # Corpus keys in params (data.<domain>.<key>) only this task reads, and file formats only it reads.
    corpus_keys: ClassVar[tuple[str, ...]] = ()
    formats: ClassVar[tuple[str, ...]] = ()
    # A classifier over data.labels: the packaged corpora, EDA and rebalancing, per-domain loss weights in
    # joint, DANN and distillation need one.
    label_head: ClassVar[bool] = False
    # Splits tokenize writes (unlabeled target text is tokenized only where DANN can use it).
    tokenized_splits: ClassVar[tuple[str, ...]] = ("train", "validation", "test")
    # Whether a decoder-only LLM can be model.name (task_for refuses one where it cannot).
    decoder_backbone: ClassVar[bool] = False
    # Stages that pass through for this task, with the reason they print and record.
    skipped_stages: ClassVar[dict[str, str]] = {}
    # peft's TaskType name for LoRA adapters on this task's model.
    peft_task_type: ClassVar[str]
    # The Hugging Face pipeline task of its models (model cards' pipeline_tag).
    pipeline_tag: ClassVar[str]
    # TrainingArguments that pick the best epoch; {} keeps macro-F1 (training_arguments' default).
    best_epoch: ClassVar[dict[str, Any]] = {"metric_for_best_model": "loss", "greater_is_better": False}

    @property
    def primary(self) -> str:
        return next(iter(self.metrics))

    @property
    def strategies(self) -> tuple[str, ...]:
        """The registered strategies this task can run (those that need a label head only where it has one)."""
        return strategy_names(label_head=self.label_head)

    # --- params ---------------------------------------------------------------------------------------

    def check_params(self, params: Params) -> list[str]:
        """Problems of params.yaml for this task (besides the schema's), each naming its key."""
        return []

    # --- rows -----------------------------------------------------------------------------------------

    @abstractmethod
    def read_file(self, spec: LocalFiles, path: str | list[str], id_prefix: str) -> pd.DataFrame:
        """One local file (or aligned pair of files) as canonical rows with unique, prefixed ids."""

    @abstractmethod
    def read_hub_split(self, dataset: datasets.Dataset, spec: HubDataset, origin: str,
                       id_prefix: str) -> pd.DataFrame:
        """One split of a `datasets.load_dataset` result as canonical rows."""

    def carve(self, frame: pd.DataFrame, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(n rows for a split a corpus does not ship, the rest): stratified by label where there is one."""
        return stratified_take(frame, n, seed)

    def describe_rows(self, frame: pd.DataFrame) -> str:
        """How many examples a frame holds, in the task's words (for errors)."""
        return f"{len(frame)} rows"

    def strata(self, rows: list[dict]) -> list | None:
        """What the labeled budget is stratified by (None: a seeded random draw)."""
        return None

    @abstractmethod
    def unlabeled(self, row: dict) -> dict:
        """A labeled row stripped to unlabeled text (target train rows beyond data.target_train_labeled)."""

    def text(self, row: dict) -> str:
        return row[self.text_field]

    @abstractmethod
    def reject_reason(self, row: dict, labels: set[str], params: CleanParams) -> str | None:
        """Why clean rejects a normalized row (a short snake_case reason), or None."""

    def length_reason(self, text: str, params: CleanParams) -> str | None:
        if len(text) < params.min_chars:
            return "too_short"
        if len(text) > params.max_chars:
            return "too_long"
        return None

    def key_text(self, row: dict) -> str:
        """What makes two rows the same example, for de-duplication and the leakage guard."""
        return row[self.text_field]

    def check_training_sets(self, kept: dict[str, dict[str, list[dict]]], labels: list[str]) -> list[str]:
        """Stop (DataError) on training sets nothing can learn from; return warnings."""
        return []

    # --- model ----------------------------------------------------------------------------------------

    @abstractmethod
    def tokenize(self, rows: list[dict], tokenizer, params: Params, split: str) -> dict[str, datasets.Dataset]:
        """Model inputs of one split: {split: windows/rows} (plus any extra dataset scoring needs)."""

    @abstractmethod
    def load_model(self, init: str, tokenizer, params: Params, **options):
        """The task's model on the checkpoint at `init` (the base model, models/domain, or a trained one);
        `options` go to from_pretrained (model.quantization's, for classification)."""

    def collator(self, tokenizer, model):
        from transformers import DataCollatorWithPadding  # heavy: model side only (data stages import tasks)

        return DataCollatorWithPadding(tokenizer)

    def trainer_metrics(self, evaluation: datasets.Dataset | None, tokenizer, params: Params):
        """Trainer's compute_metrics over `evaluation` for best-epoch selection, or None (validation loss
        decides)."""
        return None

    @abstractmethod
    def score(self, model_dir: str, target: datasets.DatasetDict, params: Params) -> tuple[dict, list[dict]]:
        """(scores, one row per test example: id, actual, predicted and what a reader checks it by)."""

    @abstractmethod
    def resampled_score(self, rows: list[dict], params: Params) -> Callable[[np.ndarray], float]:
        """The primary score recomputed on the test examples at given positions of `rows` (what `score` returns
        per example), for the bootstrap interval of a gain."""

    def probabilities(self, model, dataset: datasets.Dataset, tokenizer, params: Params) -> np.ndarray:
        """Class probabilities of an in-memory model, one row per example in dataset order (the levers of
        finetune: self-training, label shift, weight ensembling). Tasks with a label head implement it."""
        raise NotImplementedError(f"task {self.name} has no class probabilities")

    def label_score(self, labels: np.ndarray, predicted: np.ndarray, params: Params) -> float:
        """The primary score of predicted class ids against the true ones (higher is better)."""
        raise NotImplementedError(f"task {self.name} has no class predictions to score")

    def validation_score(self, model, dataset: datasets.Dataset, tokenizer, params: Params) -> float:
        """The primary score of an in-memory model on a labeled set (higher is better)."""
        raise NotImplementedError(f"task {self.name} has no in-memory validation score")

    def trivial_baseline(self, target: datasets.DatasetDict, params: Params) -> dict | None:
        """A constant predictor's test scores, {"name": ..., <metric>: ...}: a model that does not beat it has
        learned nothing the scores can show (None: the task has no meaningful constant)."""
        return None

    def choose_decision_rule(self, model, tokenizer, target: datasets.DatasetDict, params: Params) -> dict:
        """What the shipped model decides with besides its weights, chosen on target validation and recorded in
        its config's `transfer_levers` (QA: when to abstain); {} for none. Both arms get it: it reads nothing
        but validation."""
        return {}

    def test_size(self, target: datasets.DatasetDict) -> int:
        return len(target["test"])

    # --- new inputs (transfer-predict) -------------------------------------------------------------------

    def input_columns(self, corpus) -> dict[str, str]:
        """{row field: input column} of what the model reads, named as `corpus` (data.target) names them, so a
        file shaped like the target data reads as it does."""
        raise NotImplementedError(f"task {self.name} does not predict on new inputs")

    def predictor(self, model_dir: Path, params: Params) -> Callable[[list[dict]], list[dict]]:
        """The model at `model_dir`, loaded once, as a function from input rows (normalized as clean does) to
        one prediction row each, in order, decided as evaluate decides (levers folded in, QA's abstention)."""
        raise NotImplementedError(f"task {self.name} does not predict on new inputs")

    def adaptation_texts(self, rows: list[dict]) -> list[str]:
        """The target texts pretrain_domain adapts on."""
        return [self.text(row) for row in rows]
