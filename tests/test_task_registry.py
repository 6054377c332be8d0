"""A fourth task plugs in through the registry alone: a text-regression task defined here (rows {id, text,
label} where the label is a number) runs through the real tokenize and finetune_target stages on the tiny
model, with no edit anywhere else, and is scored by its own metric."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, synthetic_rows
from transfer.core.errors import ParamsError
from transfer.core.modeling import load_kwargs, load_tokenizer, training_arguments
from transfer.core.params import CleanParams, HubDataset, LocalFiles, Params
from transfer.data.corpora import canonical_frame
from transfer.data.tables import read_table
from transfer.tasks.base import Task
from transfer.tasks.registry import TASKS, register, task_for

SCORE = {"negative": "0.0", "neutral": "0.5", "positive": "1.0"}


class TextRegression(Task):
    """Predict a number from a text (a rating, a toxicity score): one linear output, MSE, Pearson's r."""

    name = "regression"
    metrics = {"pearson": "Pearson r", "neg_mse": "-MSE"}
    points = 100.0
    text_field = "text"
    normalized_fields = ("text",)
    peft_task_type = "SEQ_CLS"

    def read_file(self, spec: LocalFiles, path, id_prefix: str) -> pd.DataFrame:
        table = read_table(path, spec.format, spec.encoding)
        return canonical_frame(table, {"text": spec.text_column, "label": spec.label_column}, str(path), id_prefix)

    def read_hub_split(self, dataset, spec: HubDataset, origin: str, id_prefix: str) -> pd.DataFrame:
        return canonical_frame(dataset.to_pandas(), {"text": spec.text_column, "label": spec.label_column}, origin,
                               id_prefix)

    def unlabeled(self, row: dict) -> dict:
        return {**row, "label": None}

    def reject_reason(self, row: dict, labels: set[str], params: CleanParams) -> str | None:
        if not row["text"]:
            return "empty_text"
        try:
            float(row["label"])
        except (TypeError, ValueError):
            return "not_a_number"
        return self.length_reason(row["text"], params)

    def tokenize(self, rows: list[dict], tokenizer, params: Params, split: str) -> dict:
        import datasets

        dataset = datasets.Dataset.from_dict({"id": [r["id"] for r in rows], "origin_id": [r["id"] for r in rows],
                                              "text": [r["text"] for r in rows],
                                              "label": [float(r["label"]) for r in rows]})
        encode = lambda batch: {**tokenizer(batch["text"], truncation=True, max_length=params.tokenize.max_length)}  # noqa: E731
        dataset = dataset.map(encode, batched=True, remove_columns=["text"])
        return {split: dataset.map(lambda b: {"length": [len(ids) for ids in b["input_ids"]]}, batched=True)}

    def load_model(self, init: str, tokenizer, params: Params):
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(init, num_labels=1, problem_type="regression",
                                                                  **load_kwargs(params, init))

    def resampled_score(self, rows: list[dict], params: Params):
        actual = np.array([float(row["actual"]) for row in rows])
        predicted = np.array([float(row["predicted"]) for row in rows])
        return lambda positions: float(np.corrcoef(predicted[positions], actual[positions])[0, 1])

    def score(self, model_dir, target, params: Params) -> tuple[dict, list[dict]]:
        import tempfile

        from transformers import DataCollatorWithPadding, Trainer

        tokenizer = load_tokenizer(str(model_dir), params)
        model = self.load_model(str(model_dir), tokenizer, params)
        with tempfile.TemporaryDirectory() as scratch:
            args = training_arguments(scratch, seed=0, epochs=1, learning_rate=1e-5, batch_size=1,
                                      eval_each_epoch=False, group_by_length=False)
            output = Trainer(model=model, args=args, data_collator=DataCollatorWithPadding(tokenizer)).predict(
                target["test"])
        predicted, actual = np.asarray(output.predictions).ravel(), np.asarray(target["test"]["label"])
        scores = {"pearson": float(np.corrcoef(predicted, actual)[0, 1]),
                  "neg_mse": float(-np.mean((predicted - actual) ** 2))}
        rows = [{"id": i, "actual": a, "predicted": round(float(p), 3)}
                for i, a, p in zip(target["test"]["id"], actual, predicted, strict=True)]
        return scores, rows


@pytest.fixture
def regression_task():
    task = register(TextRegression())
    yield task
    del TASKS[task.name]


def write_rows(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_a_task_defined_outside_the_package_runs_through_tokenize_and_finetune(regression_task, tiny_model,
                                                                               tmp_path, monkeypatch):
    from stages import finetune_target, tokenize

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw.update(task="regression")
    raw["model"]["name"] = str(tiny_model)
    raw["data"].update(labels=[], source={"kind": "files", "path": "source.csv"},
                       target={"kind": "files", "path": "target.csv"})
    raw["tokenize"]["max_length"] = 32
    raw["finetune"].update(target_epochs=12, batch_size=8, learning_rate=3e-3, select_best=True)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    scored = lambda rows: [{**r, "label": SCORE[r["label"]]} for r in rows]  # noqa: E731
    for domain, seed in (("source", 1), ("target", 2)):
        for split, n in (("train", 60), ("validation", 15), ("test", 30)):
            write_rows(tmp_path / "data/augmented" / domain / f"{split}.jsonl",
                       scored(synthetic_rows(domain, n, seed + len(split))))

    params = Params.model_validate(raw)
    assert task_for(params) is regression_task
    tokenize.main()
    monkeypatch.setattr(sys, "argv", ["finetune_target", "--baseline"])
    finetune_target.main()

    training = json.loads((tmp_path / "models/trained/baseline/training.json").read_text())
    assert training["strategy"] == "target_only"
    import datasets

    target = datasets.load_from_disk(str(tmp_path / "data/tokenized/target"))
    assert set(target) == {"train", "validation", "test"}  # its own tokenized splits, float labels
    assert target["train"].features["label"].dtype == "float64"
    scores, rows = regression_task.score(tmp_path / "models/trained/baseline", target, params)
    assert len(rows) == 30
    # Trained with its own loss (MSE via problem_type), the model ranks the test texts' scores.
    assert scores["pearson"] > 0.5, scores


def test_task_specific_params_rules_come_from_the_task(regression_task):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw.update(task="regression")  # the shipped params: packaged corpora and class names are classification's
    with pytest.raises(ParamsError) as error:
        task_for(Params.model_validate(raw))
    assert "packaged corpora are classification data" in str(error.value)
    assert "data.labels: class names are for classification" in str(error.value)
