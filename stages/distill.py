"""distill: compress the chosen model into a smaller student (knowledge distillation).

The student (distill.student: a layer-dropped copy of an encoder teacher, or an encoder such as the packaged
MiniLM, the default for a decoder teacher) learns from the teacher's temperature-softened logits that
teacher_outputs computed once (data/teacher), plus the hard labels; it reads the target texts through
its own tokenizer. Writes models/student, metrics/distill.json (sizes and macro-F1 of both on the target
test split, quality retained, the student's gain over the target-only baseline with its 95% interval)
and metrics/distill_speed.json (the student's inference samples/s; the teacher's is teacher_outputs'), and
the student's model card, models/student/README.md (transfer/analysis/model_card.py).
Tasks with a label head only (classification); for the others, and with distill.enabled false, the stage
records why it does not run.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from transfer.analysis.model_card import CardFacts, model_card
from transfer.analysis.significance import rows_gain_interval
from transfer.core.artifacts import atomic_path, read_csv, read_json, read_jsonl, trained_folder, write_json
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.tasks.classification import classification_metrics, predict
from transfer.tasks.registry import task_for
from transfer.training.checkpoints import resumable
from transfer.training.distillation import DISTILLED_SPLITS, skip_reason, train_student

TEACHER, STUDENT, OUTPUTS = trained_folder("target"), Path("models/student"), Path("data/teacher")
AUGMENTED, PREDICTIONS = Path("data/augmented/target"), Path("data/predictions")


def not_applicable(task: str, reason: str) -> None:
    with atomic_path(STUDENT) as out:
        out.mkdir(parents=True)
        (out / "NOT_APPLICABLE.txt").write_text(reason + "\n")
    write_json("metrics/distill.json", {"applicable": False, "task": task, "reason": reason})
    write_json("metrics/distill_speed.json", {"applicable": False})
    print(f"distill: not run: {reason}")


def main() -> None:
    params = load_params()
    task = task_for(params)
    reason = skip_reason(params, task)
    if reason:
        not_applicable(task.name, reason)
        return
    logits = {row["id"]: row["logits"] for row in read_jsonl(OUTPUTS / "soft_labels.jsonl")}
    rows = {split: read_jsonl(AUGMENTED / f"{split}.jsonl") for split in (*DISTILLED_SPLITS, "test")
            if (AUGMENTED / f"{split}.jsonl").exists()}
    run = resumable(params, STUDENT, {}, [OUTPUTS, AUGMENTED, TEACHER])
    with atomic_path(STUDENT) as out:
        student, tokenizer, origin = train_student(params, task, TEACHER, rows, logits, out, run)
    run.finish()

    labels = params.data.labels
    test = task.tokenize(rows["test"], tokenizer, params, "test")["test"].sort("length")
    label_ids, predicted, samples_per_second = predict(STUDENT, test, params)
    student_rows = [{"id": i, "actual": labels[a], "predicted": labels[p]}
                    for i, a, p in sorted(zip(test["id"], label_ids, predicted, strict=True))]
    # The baseline over its training seeds, as evaluate scored them; the student is one seed (no claim).
    baseline_rows = [sorted(read_csv(path), key=lambda row: row["id"])
                     for path in sorted(PREDICTIONS.glob("baseline-*.csv"))]
    teacher = read_json(OUTPUTS / "teacher.json")
    report = {
        "teacher": {key: teacher[key] for key in ("strategy", "layers", "parameters", "macro_f1")},
        "student": {"from": origin, "layers": student.config.num_hidden_layers,
                    "parameters": student.num_parameters(),
                    "macro_f1": classification_metrics(label_ids, predicted, labels)["macro_f1"]},
    }
    baseline = statistics.mean(macro_f1_of(rows, labels) for rows in baseline_rows)
    report["size_ratio"] = round(report["student"]["parameters"] / report["teacher"]["parameters"], 3)
    report["quality_retained"] = round(report["student"]["macro_f1"] / max(report["teacher"]["macro_f1"], 1e-9), 4)
    report["student_gain_over_baseline_points"] = round((report["student"]["macro_f1"] - baseline) * task.points, 2)
    report |= {f"student_{key}": value for key, value in rows_gain_interval(
        task, params, [student_rows], baseline_rows, "the student").items()}
    write_json("metrics/distill.json", report)
    write_json("metrics/distill_speed.json", {"student_samples_per_second": round(samples_per_second, 1)})
    write_card(params, task, report, classification_metrics(label_ids, predicted, labels), len(test),
               {split: len(rows.get(split, [])) for split in DISTILLED_SPLITS})
    print(f"distill: student ({origin}) {report['student']['layers']} layers, {report['size_ratio']:.0%} of the "
          f"parameters, {report['quality_retained']:.1%} of the teacher's macro-F1, "
          f"{report['student_gain_over_baseline_points']:+.2f} points over the baseline, "
          f"{samples_per_second:.1f} samples/s")


def write_card(params, task, report: dict, scores: dict, test_examples: int, distilled: dict[str, int]) -> None:
    """models/student/README.md: the student's model card (transfer/analysis/model_card.py)."""
    config, teacher, student = params.distill, report["teacher"], report["student"]
    facts = CardFacts(
        title=f"Student distilled from the {teacher['strategy']} model",
        role=(f"A {student['layers']}-layer student ({student['from']}) of the pipeline's chosen model "
              f"({teacher['strategy']}, {teacher['layers']} layers): {report['size_ratio']:.0%} of its parameters, "
              f"{report['quality_retained']:.0%} of its macro-F1."),
        strategy=f"distilled from {teacher['strategy']}",
        scores={metric: scores[metric] for metric in task.metrics}, metric_names=task.metrics,
        test_examples=test_examples,
        gain={"points": report["student_gain_over_baseline_points"], "ci95": report["student_gain_ci95_points"],
              "significant": report["student_significant"],
              "over": "the target-only baseline (the mean over its training seeds)"},
        training=[f"Distillation ({config.teacher} teacher): temperature {config.temperature:g}, alpha "
                  f"{config.alpha:g} (soft-label weight), {config.epochs:g} epochs at learning rate "
                  f"{config.learning_rate:g}, on the teacher's logits over "
                  + ", ".join(f"{n} {split}" for split, n in distilled.items() if n) + " target texts"],
        limits=["One training seed: the student's own seed-to-seed spread is not measured."],
        base_model=None if student["from"].startswith("layers") else student["from"])  # layers: model.name's
    with atomic_path(STUDENT / "README.md") as path:
        path.write_text(model_card(params, facts, task), encoding="utf-8")


def macro_f1_of(rows: list[dict], labels: list[str]) -> float:
    index = {label: i for i, label in enumerate(labels)}
    return classification_metrics([index[r["actual"]] for r in rows], [index[r["predicted"]] for r in rows],
                                   labels)["macro_f1"]


if __name__ == "__main__":
    run_stage(main)
