"""label_budget: the target test score against the number of labeled target examples.

The score is the task's primary one: macro-F1, QA F1 or chrF (written macro-F1 below).

The `budget_baseline` / `budget_target` matrices in dvc.yaml train target_only and the chosen
strategy on nested, label-stratified subsets of the labeled target train set
(`finetune_target --labels N`), each with label_budget.seeds, at the learning rate the arm chose at the full
budget, selecting its epoch on a validation split cut in proportion to N; the full budget is the headline
pair over its training seeds (models/trained/<arm> and <arm>_seeds), already scored by evaluate. The curve's x
is train + validation labels. This stage scores the rest and answers the practitioner's question: how many
target labels does the transfer save, and how sure is that? (transfer/analysis/label_budget.py.) At each size
the transfer's gain over target_only comes with its 95% interval (a bootstrap over the test examples and the
seeds), and labels saved with its own interval: "established" only where all of it saves labels. A point
model that predicts one class on all of its validation split is named in `warnings`.
Writes metrics/label_budget.json, metrics/plots/label_budget.csv (the DVC plot) and the trainings' wall
times, metrics/budget_timing.json.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from transfer.analysis.label_budget import labels_saved, labels_saved_interval
from transfer.analysis.significance import rows_gain_interval
from transfer.core.artifacts import load_dataset_output, read_csv, read_json, write_csv, write_json
from transfer.core.modeling import TRAINING_REPORT
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.core.switches import not_run_record, switched_off
from transfer.tasks.registry import task_for
from transfer.training.label_subsets import original_rows, validation_labels

BUDGET, PREDICTIONS, TUNING = Path("models/budget"), Path("data/predictions"), "tuning.json"
CURVES = {"target_only": "baseline", "transfer": "target"}  # curve -> headline arm (its evaluate rows)
PREFIX = {"target_only": "baseline", "transfer": "chosen"}  # curve -> budget folder prefix


def main() -> None:
    params = load_params()
    task = task_for(params)
    config = params.label_budget
    if not config.enabled:
        write_json("metrics/label_budget.json", {**not_run_record("label_budget"), "measured": False,
                                                 "note": switched_off("label_budget"), "warnings": []})
        write_json("metrics/budget_timing.json", {})
        write_csv("metrics/plots/label_budget.csv", [], fieldnames=["labels", "train_labels", *CURVES,
                                                                    *(f"{curve}_std" for curve in CURVES)])
        print(f"label_budget: not run: {switched_off('label_budget')}")
        return
    metric, metric_name = task.primary, task.metrics[task.primary]
    headline = read_json("metrics/eval.json")
    target = load_dataset_output("data/tokenized/target")
    full_budget = len(original_rows(target["train"]))
    validation_size = len(original_rows(target["validation"]))

    def total(labels: int) -> int:  # the x of the curve: train + the validation labels that point selected on
        return labels + validation_labels(validation_size, labels, full_budget)

    full = total(full_budget)
    scores: dict[str, dict[int, list[float]]] = {curve: {} for curve in CURVES}
    rows: dict[str, dict[int, list[list[dict]]]] = {curve: {} for curve in CURVES}
    for curve, arm in CURVES.items():
        scores[curve][full] = [result[metric] for result in headline[arm]["seeds"].values()]
        rows[curve][full] = [read_csv(PREDICTIONS / f"{arm}-{seed}.csv") for seed in headline[arm]["seeds"]]
    # Sizes at or above the labeled set: their budget stages trained nothing (finetune_target --labels).
    dropped = sorted(size for size in config.sizes if size >= full_budget)
    sizes = [size for size in config.sizes if size < full_budget]
    if not sizes:
        write_unmeasured(headline, full_budget, full, dropped, metric)
        return
    timing, warnings = {}, []
    for curve, prefix in PREFIX.items():
        for size in sizes:
            scores[curve][total(size)], rows[curve][total(size)] = [], []
            for seed in config.seeds:
                model_dir = BUDGET / f"{prefix}-{size}-{seed}"
                timing[f"{curve}@{size} labels-{seed}"] = read_json(model_dir / TRAINING_REPORT)["wall_time_s"]
                result, example_rows = task.score(model_dir, target, params)
                stuck = read_json(model_dir / TUNING).get("predicts_one_class")
                if stuck:  # a point over a model that never learned measures nothing about the transfer
                    warnings.append(f"{curve} at {size} train labels (seed {seed}) predicts '{stuck}' for every "
                                    f"validation example: it did not learn")
                scores[curve][total(size)].append(result[metric])
                rows[curve][total(size)].append(example_rows)
                print(f"label_budget: {curve} with {size} train + {total(size) - size} validation labels (seed "
                      f"{seed}): {metric_name} {result[metric]:.4f}")

    means = {curve: {n: statistics.mean(v) for n, v in points.items()} for curve, points in scores.items()}
    spreads = {curve: {n: statistics.stdev(v) if len(v) > 1 else 0.0 for n, v in points.items()}
               for curve, points in scores.items()}
    saved = labels_saved(means["target_only"], means["transfer"], full, metric, metric_name)
    scorers = {curve: {n: [task.resampled_score(r, params) for r in per_seed] for n, per_seed in points.items()}
               for curve, points in rows.items()}
    saved |= labels_saved_interval(scorers["target_only"], scorers["transfer"], full, task.test_size(target),
                                   resamples=params.evaluate.bootstrap_resamples, seed=params.seed)
    report = {"strategy": headline["strategy"], "pretrain_domain": headline["pretrain_domain"],
              "full_budget": full_budget, "labels": "train + validation labels (validation cut in proportion)",
              "train_labels": {str(total(n)): n for n in [*sizes, full_budget]},
              "seeds": {str(n): len(v) for n, v in sorted(scores["transfer"].items())},
              "curve": {curve: {str(n): round(f, 4) for n, f in sorted(points.items())}
                        for curve, points in means.items()},
              "curve_std": {curve: {str(n): round(f, 4) for n, f in sorted(points.items())}
                            for curve, points in spreads.items()},
              "gain_points": {str(n): round(task.points * (means["transfer"][n] - means["target_only"][n]), 2)
                              for n in sorted(means["transfer"])},
              "gain_ci95": {str(n): rows_gain_interval(task, params, rows["transfer"][n], rows["target_only"][n],
                                                       f"label_budget: the {n}-label transfer model")
                            for n in sorted(rows["transfer"])},
              **saved, "warnings": warnings}
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
              [{"labels": n, "train_labels": report["train_labels"][str(n)],
                **{curve: round(means[curve][n], 4) for curve in CURVES},
                **{f"{curve}_std": round(spreads[curve][n], 4) for curve in CURVES}}
               for n in sorted(means["target_only"])])
    print(f"label_budget: {saved_words(saved, full, metric, metric_name, headline['strategy'])}")
    for warning in warnings:
        print(f"label_budget: WARNING: {warning}")


def write_unmeasured(headline: dict, full_budget: int, full: int, dropped: list[int], metric: str) -> None:
    """No size below the labeled set: no curve and labels saved not measured, said so rather than left out;
    the plot keeps the full-budget point (the headline pair)."""
    asked = f"label_budget.sizes {dropped} are not below" if dropped else "label_budget.sizes is [] for"
    note = (f"{asked} the {full_budget} labeled target train examples: no label-budget curve, labels saved not "
            f"measured (e.g. dvc exp run -S 'label_budget.sizes=[100]'; docs/pipeline.md)")
    write_json("metrics/label_budget.json", {"strategy": headline["strategy"], "pretrain_domain":
                                             headline["pretrain_domain"], "full_budget": full_budget,
                                             "measured": False, "note": note, "warnings": []})
    write_json("metrics/budget_timing.json", {})
    write_csv("metrics/plots/label_budget.csv",
              [{"labels": full, "train_labels": full_budget,
                **{curve: round(headline[arm][metric], 4) for curve, arm in CURVES.items()},
                **{f"{curve}_std": round(headline[arm].get(f"{metric}_std", 0.0), 4)
                   for curve, arm in CURVES.items()}}])
    print(f"label_budget: {note}")


def saved_words(saved: dict, full: int, metric: str, metric_name: str, strategy: str) -> str:
    """What the curve says about labels saved, with its interval, or that it is not established."""
    low, high = saved["labels_saved_ci95"]
    if saved["labels_saved"] is None:
        return f"{saved['note']} (95% CI of labels saved {low:.0f} to {high:.0f})"
    verdict = "established" if saved["labels_saved_established"] else "not established at these seeds"
    return (f"target_only needs {full} labels for {metric_name} {saved[f'quality_{metric}']:.4f}; "
            f"{strategy} reaches it with {saved['transfer_labels_needed']:.0f}"
            f"{' or fewer' if saved['labels_saved_is_lower_bound'] else ''}: {saved['labels_saved']:.0f} labels saved "
            f"(95% CI {low:.0f} to {high:.0f}: {verdict})")


if __name__ == "__main__":
    run_stage(main)
