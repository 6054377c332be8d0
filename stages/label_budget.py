"""label_budget: the target test score against the number of labeled target examples.

The score is the task's primary one: macro-F1, QA F1 or chrF (written macro-F1 below).

The `budget_baseline` / `budget_target` matrices in dvc.yaml train target_only and the chosen
strategy on nested, label-stratified subsets of the labeled target train set
(`finetune_target --labels N`); the full budget is the headline pair (models/baseline,
models/target), already scored in metrics/eval.json. This stage scores the rest and answers the
practitioner's question: how many target labels does the transfer save? (transfer/analysis/label_budget.py
defines labels_saved.) At each size, the transfer's gain over target_only comes with its 95% interval
(a bootstrap over the test examples and the label_budget.seeds).
Writes metrics/label_budget.json, metrics/plots/label_budget.csv (the DVC plot) and the trainings' wall
times, metrics/budget_timing.json.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from transfer.analysis.label_budget import labels_saved
from transfer.analysis.significance import rows_gain_interval
from transfer.core.artifacts import load_dataset_output, read_csv, read_json, write_csv, write_json
from transfer.core.modeling import TRAINING_REPORT
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.tasks.registry import task_for
from transfer.training.label_subsets import original_rows

BUDGET = Path("models/budget")
CURVES = ("target_only", "transfer")  # the baseline recipe, and finetune.strategy from models/domain


def main() -> None:
    params = load_params()
    task = task_for(params)
    config = params.label_budget
    metric, metric_name = task.primary, task.metrics[task.primary]
    headline = read_json("metrics/eval.json")
    target = load_dataset_output("data/tokenized/target")
    full_budget = len(original_rows(target["train"]))

    scores: dict[str, dict[int, list[float]]] = {"target_only": {full_budget: [headline["baseline"][metric]]},
                                                 "transfer": {full_budget: [headline["target"][metric]]}}
    rows = {"target_only": {full_budget: [read_csv("metrics/plots/predictions_baseline.csv")]},
            "transfer": {full_budget: [read_csv("metrics/plots/predictions_target.csv")]}}
    # Sizes at or above the labeled set: their budget stages trained nothing (finetune_target --labels).
    dropped = sorted(size for size in config.sizes if size >= full_budget)
    sizes = [size for size in config.sizes if size < full_budget]
    timing = {}
    for curve, prefix in (("target_only", "baseline"), ("transfer", "chosen")):
        for size in sizes:
            scores[curve][size], rows[curve][size] = [], []
            for seed in config.seeds:
                model_dir = BUDGET / f"{prefix}-{size}-{seed}"
                timing[f"{curve}@{size} labels-{seed}"] = read_json(model_dir / TRAINING_REPORT)["wall_time_s"]
                result, example_rows = task.score(model_dir, target, params)
                scores[curve][size].append(result[metric])
                rows[curve][size].append(example_rows)
                print(f"label_budget: {curve} with {size} labels (seed {seed}): {metric_name} "
                      f"{scores[curve][size][-1]:.4f}")

    means = {curve: {n: statistics.mean(v) for n, v in points.items()} for curve, points in scores.items()}
    spreads = {curve: {n: statistics.stdev(v) if len(v) > 1 else 0.0 for n, v in points.items()}
               for curve, points in scores.items()}
    saved = labels_saved(means["target_only"], means["transfer"], full_budget, metric, metric_name)
    report = {"strategy": headline["strategy"], "pretrain_domain": headline["pretrain_domain"],
              "full_budget": full_budget, "seeds": len(config.seeds),
              "curve": {curve: {str(n): round(f, 4) for n, f in sorted(points.items())}
                        for curve, points in means.items()},
              "gain_points": {str(n): round(task.points * (means["transfer"][n] - means["target_only"][n]), 2)
                              for n in sorted(means["transfer"])},
              "gain_ci95": {str(n): rows_gain_interval(task, params, rows["transfer"][n], rows["target_only"][n],
                                                       f"label_budget: the {n}-label transfer model")
                            for n in sorted(rows["transfer"])},
              **saved}
    prompting = read_json("metrics/prompting.json")
    if prompting.get("applicable"):  # a decoder's prompting baselines: points at the labels in their prompts
        report["prompting"] = {method: {"labels": prompting[method]["in_context_examples"],
                                        metric: round(prompting[method][metric], 4)}
                               for method in ("zero_shot", "few_shot") if method in prompting}
    if dropped:
        report["dropped_sizes"] = dropped
        report["dropped_note"] = (f"label_budget.sizes {dropped} are not below the {full_budget} labeled target "
                                  f"train examples after cleaning; the full budget is the headline pair")
        print(f"label_budget: {report['dropped_note']}")
    write_json("metrics/label_budget.json", report)
    write_json("metrics/budget_timing.json", timing)  # a measurement, kept apart from the scores
    write_csv("metrics/plots/label_budget.csv",
              [{"labels": n, **{curve: round(means[curve][n], 4) for curve in CURVES},
                **{f"{curve}_std": round(spreads[curve][n], 4) for curve in CURVES}}
               for n in sorted(means["target_only"])])
    if saved["labels_saved"] is None:
        print(f"label_budget: {saved['note']}")
    else:
        print(f"label_budget: target_only needs {full_budget} labels for {metric_name} "
              f"{saved[f'quality_{metric}']:.4f}; "
              f"{headline['strategy']} reaches it with {saved['transfer_labels_needed']:.0f}"
              f"{' or fewer' if saved['labels_saved_is_lower_bound'] else ''}: "
              f"{saved['labels_saved']:.0f} labels saved")


if __name__ == "__main__":
    run_stage(main)
