"""evaluate: target-test quality of the transferred model and of the target-only baseline, over their seeds.

Each headline arm is trained with `seed` and with seed + each of finetune.seed_offsets (models/trained/<arm>
and models/trained/<arm>_seeds/<seed>). Ships the `seed` model of each to models/<arm> with its model card,
README.md (transfer/analysis/model_card.py: Hugging Face metadata and the scores below).
Writes metrics/eval.json: per arm the mean and standard deviation of the task's scores over its seeds, every
seed's scores and what each chose on validation (learning rate, epoch, logit adjustment); the gain of the means
in points with the primary gain's 95% interval from a bootstrap over test examples and seeds, `significant` only
where both arms have two or more seeds (null with the reason otherwise); negative transfer when the primary gain
is below -evaluate.negative_transfer_margin; a warning for each model that predicts one class on all of
validation (it did not learn); what finetune's levers and strategy: auto chose. Also
metrics/plots/predictions_<arm>.csv for the `seed` models, one row per test example, drawn as a confusion matrix
of `actual` x `predicted`: the labels for classification; for QA whether the question has an answer x the outcome
(exact match, partial overlap, wrong span, abstained), for translation the sentence chrF band, with the gold and
predicted text beside them; and every seed's rows in data/predictions/<arm>-<seed>.csv, which compare,
label_budget and distill resample.
Scores (`Task.score`): classification accuracy, macro-F1, per-class scores and confusion matrix
(scikit-learn); QA exact match and F1 after SQuAD answer normalization; translation chrF and BLEU (sacrebleu).
"""

from __future__ import annotations

from pathlib import Path

from transfer.analysis.evaluation import ARMS, headline_line, headline_report
from transfer.analysis.model_card import headline_facts, model_card
from transfer.core.artifacts import (
    atomic_path,
    load_dataset_output,
    read_json,
    seed_folders,
    ship_model,
    shipped_folder,
    trained_folder,
    write_csv,
    write_json,
)
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.tasks.registry import task_for

TOKENIZED, PREDICTIONS = Path("data/tokenized"), Path("data/predictions")
TUNING = "tuning.json"


def main() -> None:
    params = load_params()
    task = task_for(params)
    target = load_dataset_output(TOKENIZED / "target")
    results, rows, tuning = {}, {}, {}
    with atomic_path(PREDICTIONS) as predictions:
        predictions.mkdir(parents=True)
        for arm in ARMS:
            results[arm], rows[arm], tuning[arm] = {}, {}, {}
            for seed, model_dir in seed_folders(trained_folder(arm), params.seed,
                                                params.finetune.seed_offsets).items():
                results[arm][seed], rows[arm][seed] = task.score(model_dir, target, params)
                write_csv(predictions / f"{arm}-{seed}.csv", rows[arm][seed])
                if (model_dir / TUNING).exists():
                    tuning[arm][seed] = read_json(model_dir / TUNING)
                print(f"evaluate: {arm} seed {seed}: {task.metrics[task.primary]} "
                      f"{results[arm][seed][task.primary]:.4f}")
            write_csv(Path("metrics/plots") / f"predictions_{arm}.csv", rows[arm][params.seed])
    # What finetune's levers chose (weight-ensembling mix, pseudo-labels, priors) and what strategy: auto
    # chose travel in the config of the `seed` model.
    config = read_json(trained_folder("target") / "config.json")
    report = headline_report(task, params, results, task.test_size(target), rows, tuning,
                             config.get("transfer_levers"), config.get("transfer_selection"),
                             task.trivial_baseline(target, params))
    write_json("metrics/eval.json", report)
    labeled = len(set(target["train"]["origin_id"]))  # augmented copies and QA windows share their origin's id
    for arm in ARMS:
        ship_model(trained_folder(arm), shipped_folder(arm),
                   model_card(params, headline_facts(report, arm, params, task, labeled), task))
    print(headline_line(task, report))
    for warning in report["warnings"]:
        print(f"evaluate: WARNING: {warning}")


if __name__ == "__main__":
    run_stage(main)
