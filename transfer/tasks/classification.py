"""Text classification: rows {id, text, label}, a sequence classifier over data.labels, accuracy and macro-F1.

The only task with a label head, so the one that the packaged corpora, EDA and rebalancing, joint's
per-domain loss weights, DANN and distillation serve.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from transfer.core.errors import DataError
from transfer.core.modeling import backbone_kind, load_kwargs, load_tokenizer, training_arguments
from transfer.core.params import CleanParams, HubDataset, LocalFiles, Params
from transfer.data.corpora import canonical_frame
from transfer.data.tables import read_table
from transfer.data.training_sets import BUDGET_KEYS
from transfer.tasks.base import Task
from transfer.tasks.sentence_classifier import is_sentence_classifier, sentence_classifier_class


class Predictions(NamedTuple):
    label_ids: np.ndarray
    predicted: np.ndarray
    samples_per_second: float  # inference alone, as Trainer.predict measured it


class Classification(Task):
    name = "classification"
    metrics = {"macro_f1": "macro-F1", "accuracy": "accuracy"}
    points = 100.0  # macro-F1 is a fraction
    text_field = "text"
    normalized_fields = ("text",)
    corpus_keys = ("text_column", "label_column", "label_map")
    label_head = True
    decoder_backbone = True
    # Unlabeled target text (label -1) feeds the domain classifier of DANN.
    tokenized_splits = ("train", "validation", "test", "unlabeled")
    peft_task_type = "SEQ_CLS"
    pipeline_tag = "text-classification"
    best_epoch = {}

    def check_params(self, params: Params) -> list[str]:
        if len(params.data.labels) < 2:
            return ["data.labels: classification needs at least 2 class names"]
        return []

    # --- rows -----------------------------------------------------------------------------------------

    def read_file(self, spec: LocalFiles, path: str | list[str], id_prefix: str) -> pd.DataFrame:
        return self.frame(read_table(path, spec.format, spec.encoding), spec, str(path), id_prefix)

    def read_hub_split(self, dataset, spec: HubDataset, origin: str, id_prefix: str) -> pd.DataFrame:
        import datasets  # heavy: only hub corpora need it

        df = dataset.to_pandas()
        feature = dataset.features.get(spec.label_column)
        if isinstance(feature, datasets.ClassLabel):  # integer ids -> names: names cross stage boundaries
            df[spec.label_column] = [feature.int2str(int(v)) for v in df[spec.label_column]]
        return self.frame(df, spec, origin, id_prefix)

    @staticmethod
    def frame(df: pd.DataFrame, spec: LocalFiles | HubDataset, origin: str, id_prefix: str) -> pd.DataFrame:
        """Text and label columns; `label_map` renames labels (class ids or other names) to data.labels."""
        frame = canonical_frame(df, {"text": spec.text_column, "label": spec.label_column}, origin, id_prefix)
        if spec.label_map:
            frame["label"] = pd.Series([None if label is None else spec.label_map.get(label, label)
                                        for label in frame["label"]], index=frame.index, dtype=object)
        return frame

    def strata(self, rows: list[dict]) -> list:
        return [row["label"] for row in rows]

    def unlabeled(self, row: dict) -> dict:
        return {**row, "label": None}

    def reject_reason(self, row: dict, labels: set[str], params: CleanParams) -> str | None:
        text = row["text"]
        if not text:
            return "empty_text"
        if row["split"] != "unlabeled":
            if row["label"] is None:
                return "missing_label"
            if row["label"] not in labels:
                return "unknown_label"
        return self.length_reason(text, params)

    def check_training_sets(self, kept: dict[str, dict[str, list[dict]]], labels: list[str]) -> list[str]:
        """Stops: a train set with fewer than two classes (nothing to tell apart), or a declared class that
        no train set of either domain has (nothing can learn it). Warns: a class one domain's train set lacks
        (the other domain can teach it, e.g. sequential), a class absent from the target test set (its F1 is 0
        and pulls macro-F1 down)."""
        trains = {domain: Counter(row["label"] for row in splits["train"]) for domain, splits in kept.items()}
        for domain, counts in trains.items():
            if len(counts) < 2:
                found = ", ".join(f"{label} ({n})" for label, n in counts.items()) or "no rows"
                raise DataError(f"clean: the {domain} train set has {len(counts)} class after cleaning ({found}); "
                                f"a classifier needs at least two: check {BUDGET_KEYS[domain]}, data.labels and the "
                                f"label column of the {domain} data (metrics/clean.json lists the labels it "
                                f"rejected)")
        untaught = [label for label in labels if not any(label in counts for counts in trains.values())]
        if untaught:
            raise DataError(f"clean: data.labels lists {untaught}, but no train example of either domain has that "
                            f"label after cleaning; remove it from data.labels or add labeled examples")
        warnings = []
        for domain, other in (("source", "target"), ("target", "source")):
            missing = [label for label in labels if label not in trains[domain] and label in trains[other]]
            if missing:
                warnings.append(f"the {domain} train set has no example of {missing}: only the {other} domain's "
                                f"labels teach that class")
        test = Counter(row["label"] for row in kept["target"].get("test", []))
        absent = [label for label in labels if label not in test]
        if absent:
            warnings.append(f"the target test set has no example of {absent}: that class scores F1 0, which "
                            f"lowers macro-F1")
        return warnings

    # --- model ----------------------------------------------------------------------------------------

    def tokenize(self, rows: list[dict], tokenizer, params: Params, split: str) -> dict:
        return {split: tokenize_rows(rows, tokenizer, params.data.labels, params.tokenize.max_length)}

    def load_model(self, init: str, tokenizer, params: Params, **options):
        return load_classifier(init, params, **options)

    def trainer_metrics(self, evaluation, tokenizer, params: Params):
        return compute_trainer_metrics

    def resampled_score(self, rows: list[dict], params: Params):
        labels = params.data.labels
        index = {label: i for i, label in enumerate(labels)}
        actual = np.array([index[row["actual"]] for row in rows])
        predicted = np.array([index[row["predicted"]] for row in rows])
        return lambda positions: macro_f1(actual[positions], predicted[positions], len(labels))

    def probabilities(self, model, dataset, tokenizer, params: Params) -> np.ndarray:
        # The training stages' evaluation batch (Trainer's per_device_eval_batch_size): a finetune param.
        return class_probabilities(model, dataset, tokenizer, params.finetune.batch_size * 2)

    def label_score(self, labels: np.ndarray, predicted: np.ndarray, params: Params) -> float:
        return macro_f1(np.asarray(labels), np.asarray(predicted), len(params.data.labels))

    def validation_score(self, model, dataset, tokenizer, params: Params) -> float:
        predicted = self.probabilities(model, dataset, tokenizer, params).argmax(axis=1)
        return self.label_score(np.asarray(dataset["label"]), predicted, params)

    def trivial_baseline(self, target, params: Params) -> dict:
        """The majority class of the labeled target train set, predicted for every test example."""
        train = target["train"]  # its originals: augmented copies (id != origin_id) would weigh their class twice
        labels = [label for label, id_, origin in zip(train["label"], train["id"], train["origin_id"], strict=True)
                  if id_ == origin]
        majority = int(np.bincount(np.asarray(labels), minlength=len(params.data.labels)).argmax())
        actual = np.asarray(target["test"]["label"])
        scores = classification_metrics(actual, np.full_like(actual, majority), params.data.labels)
        return {"name": f"majority class '{params.data.labels[majority]}'",
                **{metric: scores[metric] for metric in self.metrics}}

    def input_columns(self, corpus) -> dict[str, str]:
        return {"text": getattr(corpus, "text_column", "text")}

    def predictor(self, model_dir, params: Params):
        """The label and each class's probability (softmax of the logits; logit adjustment and label-shift
        priors are folded into the output layer, so these are what evaluate decides by)."""
        labels = params.data.labels
        tokenizer = load_tokenizer(str(model_dir), params)
        model = load_classifier(str(model_dir), params).eval()

        def predict_texts(rows: list[dict]) -> list[dict]:
            dataset = tokenize_rows([{"id": r["id"], "text": r["text"], "label": None} for r in rows], tokenizer,
                                    labels, params.tokenize.max_length)
            probabilities = class_probabilities(model, dataset, tokenizer, params.evaluate.batch_size)
            return [{"label": labels[int(p.argmax())], "score": round(float(p.max()), 4),
                     **{f"p_{label}": round(float(q), 4) for label, q in zip(labels, p, strict=True)}}
                    for p in probabilities]
        return predict_texts

    def score(self, model_dir, target, params: Params) -> tuple[dict, list[dict]]:
        labels = params.data.labels
        test = target["test"].sort("length")
        label_ids, predictions, _ = predict(model_dir, test, params)
        rows = [{"id": i, "actual": labels[a], "predicted": labels[p]}
                for i, a, p in sorted(zip(test["id"], label_ids, predictions, strict=True))]
        return classification_metrics(label_ids, predictions, labels), rows


def tokenize_rows(rows: list[dict], tokenizer, label_names: list[str], max_length: int):
    """Labels become class ids of a ClassLabel feature, so the names travel with the data (-1: unlabeled);
    `origin_id` names the original row of an augmented copy (label budgets keep copies with their origin)."""
    import datasets  # heavy: model side only (ingest and clean import this module too)

    features = datasets.Features({"id": datasets.Value("string"), "origin_id": datasets.Value("string"),
                                  "text": datasets.Value("string"), "label": datasets.ClassLabel(names=label_names)})
    label_ids = [-1 if r["label"] is None else label_names.index(r["label"]) for r in rows]
    dataset = datasets.Dataset.from_dict(
        {"id": [r["id"] for r in rows], "origin_id": [r.get("origin_id") or r["id"] for r in rows],
         "text": [r["text"] for r in rows], "label": label_ids}, features=features)

    def encode(batch: dict) -> dict:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    return dataset.map(encode, batched=True, batch_size=1000, remove_columns=["text"], desc="tokenize")


def load_classifier(name_or_path: str, params: Params, **options):
    """A sequence classifier whose config carries the label names (id2label) from params; a SetFit model
    (config.transfer_head) loads as the SentenceEmbeddingClassifier it was saved as."""
    from transformers import AutoConfig, AutoModelForSequenceClassification  # heavy: model side only

    labels = params.data.labels
    keywords = dict(num_labels=len(labels), id2label=dict(enumerate(labels)),
                    label2id={label: i for i, label in enumerate(labels)}, **load_kwargs(params, name_or_path),
                    **options)
    config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=params.model.trust_remote_code)
    if is_sentence_classifier(config):
        config.update({key: keywords.pop(key) for key in ("num_labels", "id2label", "label2id")})
        return sentence_classifier_class(config).from_pretrained(name_or_path, config=config, **keywords)
    if backbone_kind(config) == "decoder" and config.pad_token_id is None:
        # A decoder classifier pools the last token that is not padding, so it must know the pad id.
        keywords["pad_token_id"] = load_tokenizer(name_or_path, params).pad_token_id
    return AutoModelForSequenceClassification.from_pretrained(name_or_path, **keywords)


def predict(model_dir, test, params: Params) -> Predictions:
    """Predictions in the order of `test` (callers sort it by length: batches then carry little padding).

    Trainer returns label_ids in the order it ran, so we check them against the dataset before
    trusting that predictions line up with example ids.
    """
    from transformers import DataCollatorWithPadding, Trainer  # heavy: model side only

    tokenizer = load_tokenizer(str(model_dir), params)
    model = load_classifier(str(model_dir), params)
    with tempfile.TemporaryDirectory(prefix="evaluate-") as scratch:
        args = training_arguments(scratch, seed=params.seed, epochs=1, learning_rate=1e-5, batch_size=1,
                                  eval_each_epoch=False, group_by_length=False,
                                  per_device_eval_batch_size=params.evaluate.batch_size)
        trainer = Trainer(model=model, args=args, data_collator=DataCollatorWithPadding(tokenizer))
        output = trainer.predict(test)
    label_ids = np.asarray(output.label_ids)
    if not np.array_equal(label_ids, np.asarray(test["label"])):
        raise RuntimeError("evaluate: Trainer returned predictions in a different order than the test set")
    return Predictions(label_ids, np.asarray(output.predictions).argmax(-1),
                       float(output.metrics["test_samples_per_second"]))


def class_probabilities(model, dataset, tokenizer, batch_size: int) -> np.ndarray:
    """Softmax class probabilities of an in-memory classifier, in the order of `dataset`."""
    logits = class_logits(model, dataset, tokenizer, batch_size)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


def class_logits(model, dataset, tokenizer, batch_size: int) -> np.ndarray:
    """Class logits of an in-memory classifier, in the order of `dataset`: batches of near-equal length
    (no Trainer, no length-grouped sampler, so no reordering to undo)."""
    import torch  # heavy: model side only
    from transformers import DataCollatorWithPadding

    collate = DataCollatorWithPadding(tokenizer)
    keep = [c for c in ("input_ids", "attention_mask", "token_type_ids") if c in dataset.column_names]
    lengths = np.asarray(dataset["length"] if "length" in dataset.column_names
                         else [len(ids) for ids in dataset["input_ids"]])
    order = np.argsort(lengths, kind="stable")
    logits = np.zeros((len(dataset), model.config.num_labels), dtype=np.float64)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = collate([{c: dataset[int(i)][c] for c in keep} for i in rows])
            logits[rows] = model(**{k: v.to(model.device) for k, v in batch.items()}).logits.double().cpu().numpy()
    model.train(was_training)
    return logits


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


def macro_f1(actual: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over every declared class (F1 0 for a class neither predicted nor present, as sklearn's
    f1_score with labels= and zero_division=0), from counts: fast enough for a thousand resamples."""
    true_positives = np.bincount(actual[actual == predicted], minlength=n_classes)
    support = np.bincount(actual, minlength=n_classes)
    predicted_count = np.bincount(predicted, minlength=n_classes)
    denominator = support + predicted_count
    f1 = np.divide(2 * true_positives, denominator, out=np.zeros(n_classes), where=denominator > 0)
    return float(f1.mean())


def compute_trainer_metrics(eval_prediction) -> dict[str, float]:
    """Trainer's compute_metrics: scores against the label_ids Trainer returns, never dataset order."""
    logits, label_ids = eval_prediction.predictions, eval_prediction.label_ids
    predictions = np.asarray(logits).argmax(-1)
    return {"accuracy": float(accuracy_score(label_ids, predictions)),
            "macro_f1": float(f1_score(label_ids, predictions, average="macro", zero_division=0))}
