"""evaluate: target-test quality of the transferred model and of the target-only baseline.

Writes metrics/eval.json (the task's scores for both models, the gain over the baseline in points with the
primary gain's 95% paired-bootstrap interval over test examples and `significant` when it excludes zero,
flagged as negative transfer when the primary score's gain is below -evaluate.negative_transfer_margin;
what finetune's levers chose, when any is on, and what strategy: auto chose)
and metrics/plots/predictions_<model>.csv, one row per test example, drawn as a confusion matrix of
`actual` x `predicted`: the labels for classification; for QA whether the question has an answer x the
outcome (exact match, partial overlap, wrong span, abstained), for translation the sentence chrF band,
with the gold and predicted text beside them.
Scores (`Task.score`): classification accuracy, macro-F1, per-class scores and confusion matrix
(scikit-learn); QA exact match and F1 after SQuAD answer normalization; translation chrF and BLEU (sacrebleu).
"""

from __future__ import annotations

from pathlib import Path

from transfer.analysis.evaluation import headline_line, headline_report
from transfer.core.artifacts import load_dataset_output, read_json, write_csv, write_json
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.tasks.registry import task_for

TOKENIZED = Path("data/tokenized")
MODELS = {"target": Path("models/target"), "baseline": Path("models/baseline")}


def main() -> None:
    params = load_params()
    task = task_for(params)
    target = load_dataset_output(TOKENIZED / "target")
    results, rows = {}, {}
    for name, model_dir in MODELS.items():
        results[name], rows[name] = task.score(model_dir, target, params)
        write_csv(Path("metrics/plots") / f"predictions_{name}.csv", rows[name])
    # What finetune's levers chose (weight-ensembling mix, pseudo-labels, priors) and what strategy: auto
    # chose travel in the model config.
    config = read_json(MODELS["target"] / "config.json")
    report = headline_report(task, params, results, task.test_size(target), rows, config.get("transfer_levers"),
                             config.get("transfer_selection"))
    write_json("metrics/eval.json", report)
    print(headline_line(task, report))


if __name__ == "__main__":
    run_stage(main)
