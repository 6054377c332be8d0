"""evaluate: target-test quality of the transferred model and of the target-only baseline.

Writes metrics/eval.json (the task's scores for both models, and the gain over the baseline in points,
flagged as negative transfer when the primary score's gain is below -evaluate.negative_transfer_margin)
and metrics/plots/predictions_<model>.csv, one row per test example, drawn as a confusion matrix of
`actual` x `predicted`: the labels for classification; for QA whether the question has an answer x the
outcome (exact match, partial overlap, wrong span, abstained), for translation the sentence chrF band,
with the gold and predicted text beside them.
Scores: classification accuracy, macro-F1, per-class scores and confusion matrix (scikit-learn); QA
exact match and F1 after SQuAD answer normalization; translation chrF and BLEU (sacrebleu).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import NamedTuple

import datasets
import numpy as np

from stages.artifacts import load_dataset_output, write_csv, write_json
from stages.errors import run_stage
from stages.modeling import classification_metrics, load_classifier, load_kwargs, load_tokenizer, training_arguments
from stages.params import Params, load_params
from stages.tasks import METRIC_NAMES, METRICS, POINTS

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


def score_model(model_dir: Path, target: datasets.DatasetDict, params: Params) -> tuple[dict, list[dict]]:
    """(the task's scores, one row per test example: id, actual, predicted, and the texts) of a trained model."""
    if params.task == "qa":
        from transformers import AutoModelForQuestionAnswering

        from stages.qa import answer_outcome, predict_answers, squad_metrics

        examples, tokenizer = target["test_examples"], load_tokenizer(str(model_dir), params)
        model = AutoModelForQuestionAnswering.from_pretrained(model_dir, **load_kwargs(params, model_dir))
        answers = predict_answers(model, tokenizer, examples, target["test"], params.evaluate.batch_size,
                                  params.qa.n_best, params.qa.max_answer_length)
        rows = [{"id": e["id"], "actual": "answerable" if e["answers"]["text"] else "unanswerable",
                 "predicted": answer_outcome(answers[e["id"]], e["answers"]["text"]),
                 "gold": " | ".join(e["answers"]["text"]), "prediction": answers[e["id"]]} for e in examples]
        return squad_metrics(answers, list(examples)), sorted(rows, key=lambda r: r["id"])
    if params.task == "translation":
        from stages.translation import chrf_band, load_seq2seq, translate, translation_scores

        config, test, tokenizer = params.translation, target["test"], load_tokenizer(str(model_dir), params)
        model = load_seq2seq(str(model_dir), tokenizer, **load_kwargs(params, model_dir))
        hypotheses = translate(model, tokenizer, test["source_text"], num_beams=config.num_beams,
                               max_new_tokens=config.max_new_tokens, length_penalty=config.length_penalty,
                               batch_size=params.evaluate.batch_size, max_source_length=config.max_source_length)
        rows = [{"id": i, "actual": "test sentences", "predicted": chrf_band(hyp, ref), "reference": ref,
                 "translation": hyp} for i, ref, hyp in zip(test["id"], test["target_text"], hypotheses, strict=True)]
        return translation_scores(hypotheses, test["target_text"]), sorted(rows, key=lambda r: r["id"])
    labels = params.data.labels
    test = target["test"].sort("length")
    label_ids, predictions, _ = predict(model_dir, test, params)
    rows = [{"id": i, "actual": labels[a], "predicted": labels[p]}
            for i, a, p in sorted(zip(test["id"], label_ids, predictions, strict=True))]
    return classification_metrics(label_ids, predictions, labels), rows


def main() -> None:
    params = load_params()
    target = load_dataset_output(TOKENIZED / "target")
    results = {}
    for name, model_dir in MODELS.items():
        results[name], rows = score_model(model_dir, target, params)
        write_csv(Path("metrics/plots") / f"predictions_{name}.csv", rows)

    metrics, points = METRICS[params.task], POINTS[params.task]
    gains = {metric: points * (results["target"][metric] - results["baseline"][metric]) for metric in metrics}
    report = {
        "task": params.task,
        "strategy": params.finetune.strategy,
        "pretrain_domain": params.pretrain_domain.enabled,
        "test_examples": len(target["test_examples"] if params.task == "qa" else target["test"]),
        "target": results["target"],
        "baseline": results["baseline"],
        **{f"gain_{metric}_points": round(gain, 2) for metric, gain in gains.items()},
        "negative_transfer": gains[metrics[0]] < -params.evaluate.negative_transfer_margin,
    }
    write_json("metrics/eval.json", report)
    primary, second = metrics
    print(f"evaluate: {params.finetune.strategy} {METRIC_NAMES[primary]} {results['target'][primary]:.4f} "
          f"({METRIC_NAMES[second]} {results['target'][second]:.4f}); target_only baseline "
          f"{results['baseline'][primary]:.4f}; gain {gains[primary]:+.2f} points"
          + ("  ** NEGATIVE TRANSFER **" if report["negative_transfer"] else ""))


if __name__ == "__main__":
    run_stage(main)
