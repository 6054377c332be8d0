"""distill: compress the chosen model into a smaller student (knowledge distillation).

The student keeps every `distill.keep_every`-th layer of models/target and learns from the
teacher's temperature-softened outputs on labeled and unlabeled target text, plus the hard labels.
Writes models/student, metrics/distill.json (sizes, macro-F1 of both on the target test split,
quality retained) and metrics/distill_speed.json (inference samples/s of both, measured here).
Tasks with a label head only (classification); for the others the stage records why it does not apply.
"""

from __future__ import annotations

from pathlib import Path

from transfer.core.artifacts import atomic_path, load_dataset_output, write_json
from transfer.core.errors import run_stage
from transfer.core.params import load_params
from transfer.tasks.classification import classification_metrics, predict
from transfer.tasks.registry import task_for
from transfer.training.checkpoints import resumable
from transfer.training.distillation import train_student

TEACHER, STUDENT, TOKENIZED = Path("models/target"), Path("models/student"), Path("data/tokenized/target")


def not_applicable(task: str, reason: str) -> None:
    with atomic_path(STUDENT) as out:
        out.mkdir(parents=True)
        (out / "NOT_APPLICABLE.txt").write_text(reason + "\n")
    write_json("metrics/distill.json", {"applicable": False, "task": task, "reason": reason})
    write_json("metrics/distill_speed.json", {"applicable": False})
    print(f"distill: not applicable: {reason}")


def main() -> None:
    params = load_params()
    task = task_for(params)
    if "distill" in task.skipped_stages:
        not_applicable(task.name, task.skipped_stages["distill"])
        return
    target = load_dataset_output(TOKENIZED)
    run = resumable(params, STUDENT, {}, [TOKENIZED, TEACHER])
    with atomic_path(STUDENT) as out:
        teacher, student = train_student(params, task, TEACHER, target, out, run)
    run.finish()

    test = target["test"].sort("length")
    report, speed = {}, {}
    for name, model_dir, model in (("teacher", TEACHER, teacher), ("student", STUDENT, student)):
        label_ids, predicted, samples_per_second = predict(model_dir, test, params)
        report[name] = {"layers": model.config.num_hidden_layers, "parameters": model.num_parameters(),
                        "macro_f1": classification_metrics(label_ids, predicted, params.data.labels)["macro_f1"]}
        speed[f"{name}_samples_per_second"] = round(samples_per_second, 1)
    report["size_ratio"] = round(report["student"]["parameters"] / report["teacher"]["parameters"], 3)
    report["quality_retained"] = round(report["student"]["macro_f1"] / max(report["teacher"]["macro_f1"], 1e-9), 4)
    speed["speedup"] = round(speed["student_samples_per_second"] / speed["teacher_samples_per_second"], 2)
    write_json("metrics/distill.json", report)
    write_json("metrics/distill_speed.json", speed)
    print(f"distill: student {report['student']['layers']} layers, {report['size_ratio']:.0%} of the parameters, "
          f"{report['quality_retained']:.1%} of the teacher's macro-F1, {speed['speedup']}x faster inference")


if __name__ == "__main__":
    run_stage(main)
