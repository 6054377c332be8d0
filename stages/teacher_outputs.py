"""teacher_outputs: the chosen model's (models/target) class logits over the target train, unlabeled and
validation rows, and its own test score, computed once for distill.

A cached output of its own so that the student (distill.*) retrains without re-running the teacher,
the expensive half when the teacher is an LLM. Writes data/teacher/soft_labels.jsonl ({id, logits}) and
data/teacher/teacher.json (size, test macro-F1, inference samples/s).
Tasks with a label head only (classification); for the others the stage records why it does not apply.
"""

from __future__ import annotations

from pathlib import Path

from transfer.core.artifacts import atomic_path, load_dataset_output, write_json, write_jsonl
from transfer.core.errors import run_stage
from transfer.core.modeling import load_tokenizer
from transfer.core.params import load_params
from transfer.tasks.classification import classification_metrics, load_classifier, predict
from transfer.tasks.registry import task_for
from transfer.training.distillation import soft_labels

TEACHER, OUTPUTS, TOKENIZED = Path("models/target"), Path("data/teacher"), Path("data/tokenized/target")


def main() -> None:
    params = load_params()
    task = task_for(params)
    with atomic_path(OUTPUTS) as out:
        out.mkdir(parents=True)
        if "distill" in task.skipped_stages:
            write_json(out / "teacher.json", {"applicable": False, "reason": task.skipped_stages["distill"]})
            print(f"teacher_outputs: not applicable: {task.skipped_stages['distill']}")
            return
        target = load_dataset_output(TOKENIZED)
        teacher = load_classifier(str(TEACHER), params)
        logits = soft_labels(teacher, load_tokenizer(str(TEACHER), params), target, params.evaluate.batch_size)
        write_jsonl(out / "soft_labels.jsonl", [{"id": row_id, "logits": values} for row_id, values in logits.items()])
        label_ids, predicted, samples_per_second = predict(TEACHER, target["test"].sort("length"), params)
        write_json(out / "teacher.json", {
            "strategy": teacher.config.to_dict().get("transfer_strategy"), "layers": teacher.config.num_hidden_layers,
            "parameters": teacher.num_parameters(),
            "macro_f1": classification_metrics(label_ids, predicted, params.data.labels)["macro_f1"],
            "samples_per_second": round(samples_per_second, 1)})
    print(f"teacher_outputs: logits of {len(logits)} rows, test macro-F1 of the teacher computed")


if __name__ == "__main__":
    run_stage(main)
