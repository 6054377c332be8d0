"""distill: compress the chosen model into a smaller student (knowledge distillation).

The student keeps every `distill.keep_every`-th layer of models/target and learns from the
teacher's temperature-softened outputs on labeled and unlabeled target text, plus the hard labels.
Writes models/student, metrics/distill.json (sizes, macro-F1 of both on the target test split,
quality retained) and metrics/distill_speed.json (inference samples/s of both, measured here).
Classification only: for QA and translation the stage records that it does not apply.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from stages.artifacts import atomic_path, load_dataset_output, write_json
from stages.checkpoints import resumable
from stages.errors import run_stage
from stages.evaluate import predict
from stages.finetune_target import train_phase
from stages.modeling import classification_metrics, load_classifier, load_tokenizer, set_seed
from stages.params import load_params
from stages.strategies import DistillTrainer, DomainCollator, make_student

TEACHER, STUDENT, TOKENIZED = Path("models/target"), Path("models/student"), Path("data/tokenized/target")


def not_applicable(task: str) -> None:
    reason = (f"distillation is implemented for classification (soft labels over classes); task {task} would need "
              f"span-logit (QA) or sequence-level (translation) distillation")
    with atomic_path(STUDENT) as out:
        out.mkdir(parents=True)
        (out / "NOT_APPLICABLE.txt").write_text(reason + "\n")
    write_json("metrics/distill.json", {"applicable": False, "task": task, "reason": reason})
    write_json("metrics/distill_speed.json", {"applicable": False})
    print(f"distill: not applicable: {reason}")


def main() -> None:
    params = load_params()
    if params.task != "classification":
        not_applicable(params.task)
        return
    config = params.distill
    target = load_dataset_output(TOKENIZED)
    set_seed(params.seed)
    tokenizer = load_tokenizer(str(TEACHER), params)
    teacher = load_classifier(str(TEACHER), params)
    student = make_student(teacher, config.keep_every)
    train = datasets.concatenate_datasets([target["train"], target["unlabeled"]]) if "unlabeled" in target \
        else target["train"]
    run = resumable(params, STUDENT, {}, [TOKENIZED, TEACHER])
    with atomic_path(STUDENT) as out:
        train_phase(student, tokenizer, train, target["validation"], params=params, epochs=config.epochs,
                    learning_rate=config.learning_rate, run=run, phase="student", trainer_class=DistillTrainer,
                    data_collator=DomainCollator(tokenizer), teacher=teacher, temperature=config.temperature,
                    alpha=config.alpha)
        student.config.transfer_strategy = f"distilled from {teacher.config.to_dict().get('transfer_strategy')}"
        student.save_pretrained(out)
        tokenizer.save_pretrained(out)
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
