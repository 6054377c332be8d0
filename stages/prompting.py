"""prompting: zero- and few-shot baselines with a decoder model.name, no training (classification).

What the LLM does on the target test split with only a prompt (and, few-shot, k labeled target train
examples in it), next to what transfer achieves; transfer/tasks/prompting.py says how a label is
scored. Writes metrics/prompting.json (macro-F1, accuracy per method), data/prompting/ (per-example
predictions, which compare reads for the gain's interval, and what was used: verbalizers,
demonstrations, an example prompt) and metrics/prompting_speed.json (inference samples/s). An encoder
model.name, or a task without classes, records why it does not apply.
"""

from __future__ import annotations

import time
from pathlib import Path

from transfer.core.artifacts import atomic_path, read_jsonl, write_csv, write_json
from transfer.core.modeling import backbone_of, resolve_model
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.core.switches import switched_off
from transfer.tasks.classification import classification_metrics
from transfer.tasks.prompting import demonstration_pool, load_prompted_model, prompt_scores
from transfer.tasks.registry import task_for

AUGMENTED, OUTPUTS = Path("data/augmented/target"), Path("data/prompting")
METRICS, SPEED = Path("metrics/prompting.json"), Path("metrics/prompting_speed.json")


def predicted_counts(scores, labels: list[str]) -> dict[str, int]:
    """How often each label is predicted: a prompted model that names one label for everything shows here."""
    chosen = scores.argmax(axis=1)
    return {label: int((chosen == i).sum()) for i, label in enumerate(labels)}


def not_applicable(reason: str, switched: bool = False) -> None:
    with atomic_path(OUTPUTS) as out:
        out.mkdir(parents=True)
        (out / "NOT_APPLICABLE.txt").write_text(reason + "\n")
    write_json(METRICS, {"applicable": False, **({"enabled": False} if switched else {}), "reason": reason})
    write_json(SPEED, {"applicable": False})
    print(f"prompting: not applicable: {reason}")


def main() -> None:
    params = load_params()
    task = task_for(params)
    base = resolve_model(params.model.name)
    if not params.prompting.enabled:
        return not_applicable(switched_off("prompting"), switched=True)
    if not task.label_head:
        return not_applicable(f"task {task.name} has no classes to score verbalizers for")
    if not params.prompting.methods:
        return not_applicable("prompting.methods is empty")
    if backbone_of(base, params) != "decoder":
        return not_applicable(f"model.name {params.model.name} is not a decoder-only LM (prompting scores a causal "
                              f"LM's next words)")
    labels = params.data.labels
    model, tokenizer = load_prompted_model(params)
    test = read_jsonl(AUGMENTED / "test.jsonl")
    labeled = demonstration_pool(read_jsonl(AUGMENTED / "train.jsonl"))
    index = {label: i for i, label in enumerate(labels)}
    actual = [index[row["label"]] for row in test]
    report, used, speed = {}, {}, {}
    with atomic_path(OUTPUTS) as out:
        out.mkdir(parents=True)
        for method in params.prompting.methods:
            start = time.perf_counter()
            result = prompt_scores(model, tokenizer, [row["text"] for row in test], labeled, params, method)
            used[method] = result.used
            predicted = result.scores.argmax(axis=1)
            speed[f"{method}_samples_per_second"] = round(len(test) / (time.perf_counter() - start), 2)
            quality = classification_metrics(actual, predicted, labels)
            report[method] = {"macro_f1": quality["macro_f1"], "accuracy": quality["accuracy"],
                              "in_context_examples": len(used[method]["demonstrations"]),
                              "chat_template": result.used["chat_template"],
                              "calibration": params.prompting.calibration,
                              "per_class": quality["per_class"]}
            if result.calibrated is not None:  # the raw scores beside the calibrated ones the method predicts with
                raw = classification_metrics(actual, result.raw.argmax(axis=1), labels)
                report[method]["uncalibrated"] = {"macro_f1": raw["macro_f1"], "accuracy": raw["accuracy"],
                                                  "predicted_counts": predicted_counts(result.raw, labels)}
            report[method]["predicted_counts"] = predicted_counts(result.scores, labels)
            write_csv(out / f"predictions_{method}.csv",
                      sorted(({"id": row["id"], "actual": row["label"], "predicted": labels[p]}
                              for row, p in zip(test, predicted, strict=True)), key=lambda r: r["id"]))
            raw_note = (f" (uncalibrated {report[method]['uncalibrated']['macro_f1']:.4f})"
                        if "uncalibrated" in report[method] else "")
            print(f"prompting: {method} macro-F1 {quality['macro_f1']:.4f}{raw_note} on {len(test)} test examples "
                  f"({speed[f'{method}_samples_per_second']} samples/s)")
        write_json(out / "used.json", used)
    write_json(METRICS, {"applicable": True, "test_examples": len(test), **report})
    write_json(SPEED, speed)  # beside the cached outputs: a new measurement re-runs nothing


if __name__ == "__main__":
    run_stage(main)
