"""evaluate: target-test quality of the transferred model and of the target-only baseline.

Writes metrics/eval.json (accuracy, macro-F1, per-class scores, and the gain over the baseline in
macro-F1 points, flagged as negative transfer below -evaluate.negative_transfer_margin) and
metrics/plots/predictions_<model>.csv (one row per test example: the confusion-matrix plot).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import NamedTuple

import datasets
import numpy as np

from stages.artifacts import load_dataset_output, write_csv, write_json
from stages.modeling import classification_metrics, load_classifier, load_tokenizer, training_arguments
from stages.params import Params, load_params

TOKENIZED = Path("data/tokenized")
MODELS = {"target": Path("models/target"), "baseline": Path("models/baseline")}


class Predictions(NamedTuple):
    label_ids: np.ndarray
    predicted: np.ndarray
    samples_per_second: float  # inference alone, as Trainer.predict measured it


def predict(model_dir: Path, test: datasets.Dataset, params: Params) -> Predictions:
    """Predictions in the order of `test` (callers sort it by length: batches then carry little padding).

    Trainer returns label_ids in the order it ran, so we check them against the dataset before
    trusting that predictions line up with example ids.
    """
    from transformers import DataCollatorWithPadding, Trainer

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


def main() -> None:
    params = load_params()
    labels = params.data.labels
    test = load_dataset_output(TOKENIZED / "target")["test"]
    test = test.sort("length")
    results = {}
    for name, model_dir in MODELS.items():
        label_ids, predictions, _ = predict(model_dir, test, params)
        results[name] = classification_metrics(label_ids, predictions, labels)
        write_csv(Path("metrics/plots") / f"predictions_{name}.csv",
                  [{"id": i, "actual": labels[a], "predicted": labels[p]}
                   for i, a, p in sorted(zip(test["id"], label_ids, predictions, strict=True))])

    gain = 100 * (results["target"]["macro_f1"] - results["baseline"]["macro_f1"])
    report = {
        "strategy": params.finetune.strategy,
        "pretrain_domain": params.pretrain_domain.enabled,
        "test_examples": len(test),
        "target": results["target"],
        "baseline": results["baseline"],
        "gain_macro_f1_points": round(gain, 2),
        "gain_accuracy_points": round(100 * (results["target"]["accuracy"] - results["baseline"]["accuracy"]), 2),
        "negative_transfer": gain < -params.evaluate.negative_transfer_margin,
    }
    write_json("metrics/eval.json", report)
    print(f"evaluate: {params.finetune.strategy} macro-F1 {results['target']['macro_f1']:.4f} "
          f"(accuracy {results['target']['accuracy']:.4f}); target_only baseline "
          f"{results['baseline']['macro_f1']:.4f}; gain {gain:+.2f} points"
          + ("  ** NEGATIVE TRANSFER **" if report["negative_transfer"] else ""))


if __name__ == "__main__":
    main()
