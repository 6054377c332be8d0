"""teacher_outputs: the teacher's class logits over the target train, unlabeled and validation rows, and
its own test score, computed once for distill. The teacher is the chosen model (models/trained/target), or with
distill.teacher: zero_shot | few_shot the prompted decoder model.name (its verbalizer log-likelihoods).

A cached output of its own so that the student (distill.*) retrains without re-running the teacher,
the expensive half when the teacher is an LLM. Writes data/teacher/soft_labels.jsonl ({id, logits}),
data/teacher/teacher.json (size, test macro-F1) and metrics/teacher_speed.json (inference samples/s).
Tasks with a label head only (classification); for the others, and with distill.enabled false, the stage
records why it does not run.
"""

from __future__ import annotations

import time
from pathlib import Path

from transfer.core.artifacts import (
    atomic_path,
    load_dataset_output,
    read_jsonl,
    trained_folder,
    write_json,
    write_jsonl,
)
from transfer.core.modeling import load_tokenizer
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.tasks.classification import classification_metrics, load_classifier, predict
from transfer.tasks.prompting import demonstration_pool, load_prompted_model, prompt_scores
from transfer.tasks.registry import task_for
from transfer.training.distillation import DISTILLED_SPLITS, skip_reason, soft_labels

TEACHER, OUTPUTS, TOKENIZED = trained_folder("target"), Path("data/teacher"), Path("data/tokenized/target")
AUGMENTED, SPEED = Path("data/augmented/target"), Path("metrics/teacher_speed.json")


def main() -> None:
    params = load_params()
    task = task_for(params)
    with atomic_path(OUTPUTS) as out:
        out.mkdir(parents=True)
        reason = skip_reason(params, task)
        if reason:
            write_json(out / "teacher.json", {"applicable": False, "reason": reason})
            write_json(SPEED, {"applicable": False})
            print(f"teacher_outputs: not run: {reason}")
            return
        if params.distill.teacher == "trained":
            logits, teacher = trained_teacher(params)
        else:
            logits, teacher = prompted_teacher(params, params.distill.teacher)
        write_jsonl(out / "soft_labels.jsonl", [{"id": row_id, "logits": values} for row_id, values in logits.items()])
        # Measured speed varies run to run: beside the cached output, so distill re-runs only on new logits.
        write_json(SPEED, {"teacher_samples_per_second": teacher.pop("samples_per_second")})
        write_json(out / "teacher.json", teacher)
    print(f"teacher_outputs: {teacher['strategy']} teacher: logits of {len(logits)} rows, test macro-F1 "
          f"{teacher['macro_f1']:.4f}")


def trained_teacher(params) -> tuple[dict, dict]:
    """The chosen model's logits, and its size and test score."""
    target = load_dataset_output(TOKENIZED)
    teacher = load_classifier(str(TEACHER), params)
    logits = soft_labels(teacher, load_tokenizer(str(TEACHER), params), target, params.evaluate.batch_size)
    label_ids, predicted, samples_per_second = predict(TEACHER, target["test"].sort("length"), params)
    return logits, {"strategy": teacher.config.to_dict().get("transfer_strategy"),
                    "layers": teacher.config.num_hidden_layers, "parameters": teacher.num_parameters(),
                    "macro_f1": classification_metrics(label_ids, predicted, params.data.labels)["macro_f1"],
                    "samples_per_second": round(samples_per_second, 1)}


def prompted_teacher(params, method: str) -> tuple[dict, dict]:
    """A prompted decoder as the teacher: its verbalizer log-likelihoods are the logits (no training)."""
    model, tokenizer = load_prompted_model(params)
    rows = {split: read_jsonl(AUGMENTED / f"{split}.jsonl") for split in (*DISTILLED_SPLITS, "test")
            if (AUGMENTED / f"{split}.jsonl").exists()}
    pool = demonstration_pool(rows["train"])
    logits = {}
    for split in DISTILLED_SPLITS:
        if rows.get(split):
            scores = prompt_scores(model, tokenizer, [row["text"] for row in rows[split]], pool, params, method).scores
            logits |= {row["id"]: [round(float(v), 6) for v in score] for row, score in zip(rows[split], scores,
                                                                                           strict=True)}
    labels = params.data.labels
    start = time.perf_counter()
    scores = prompt_scores(model, tokenizer, [row["text"] for row in rows["test"]], pool, params, method).scores
    seconds = time.perf_counter() - start
    actual = [labels.index(row["label"]) for row in rows["test"]]
    return logits, {"strategy": method, "layers": model.config.num_hidden_layers,
                    "parameters": model.num_parameters(),
                    "macro_f1": classification_metrics(actual, scores.argmax(axis=1), labels)["macro_f1"],
                    "samples_per_second": round(len(actual) / seconds, 1)}


if __name__ == "__main__":
    run_stage(main)
